"""What every component's commands share: settings loaded when the command runs, and failures reported as one
message with a non-zero exit status instead of a traceback.

Each component defines its own click commands next to its code; the ``smartcity`` command assembles them.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from smartcity import aws_errors
from smartcity.errors import PlatformError
from smartcity.services import Service
from smartcity.settings import load_settings


def with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the validated settings as the first argument, loaded when the command runs, so ``--help`` works even
    with a bad configuration."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(load_settings(), *args, **kwargs)

    return wrapper


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        logging.getLogger("librdkafka").setLevel(logging.CRITICAL)
        logging.getLogger("botocore").setLevel(logging.WARNING)  # where credentials and endpoints came from
        logging.getLogger("alembic").setLevel(logging.WARNING)  # Dagster's instance checking its schema


def start_service(service: Service, label: str, where: str = "") -> None:
    """`… start` of a component's service: start it unless it runs, wait until ready, say so."""
    started = service.start()
    state = "already running" if started.already_running else "started"
    click.echo(f"{label} {state} (pid {started.pid}){where}; log: {service.log_file}")


def stop_service(service: Service, label: str) -> None:
    """`… stop` of a component's service: its graceful stop, then its process group; say what it was."""
    pid = service.stop()
    click.echo(f"{label} was not running" if pid is None else f"{label} stopped (pid {pid})")


def run(command: click.Command) -> NoReturn:
    """A console script's entry point: run ``command``; a platform error, or an AWS client's, becomes one message
    and exit status 1."""
    # Started from a non-interactive shell in the background, SIGINT arrives ignored; handle it explicitly, so
    # Ctrl-C / SIGINT stops us and the processes we start (exec resets handled signals to their default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        command(standalone_mode=True)
    except PlatformError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except Exception as exc:
        if (message := aws_errors.explain(exc)) is None:
            raise
        click.secho(f"error: {message}", fg="red", err=True)
        sys.exit(1)
    sys.exit(0)
