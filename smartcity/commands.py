"""What every component's commands share: settings loaded when the command runs, and failures reported as one
message with a non-zero exit status instead of a traceback.

Each component defines its own click commands next to its code; the ``smartcity`` command assembles them.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click

from smartcity import aws_errors
from smartcity.errors import ExitCode, PlatformError
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
        logging.getLogger("py4j").setLevel(logging.WARNING)  # "Closing down clientserver connection", per batch


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
    """A console script's entry point: run ``command`` and exit with a status of :class:`ExitCode`.

    Whatever goes wrong reaches the user as one line on stderr: a platform error's own message, an AWS client's
    explained, anything else named as a bug (its traceback with ``-v``). Ctrl-C ends with 130 and no traceback.
    """
    # Started from a non-interactive shell in the background, SIGINT arrives ignored; handle it explicitly, so
    # Ctrl-C / SIGINT stops us and the processes we start (exec resets handled signals to their default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        status = command(standalone_mode=False)
    except click.ClickException as exc:  # usage errors: click's message, its status (2)
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except PlatformError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:
        _fail(*describe_failure(exc))
    sys.exit(status if isinstance(status, int) else ExitCode.OK)


def _fail(message: str, code: int) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def describe_failure(error: Exception) -> tuple[str, ExitCode]:
    """One line and an exit status for ``error``: a platform error's own, an AWS client's explained (also when a
    library wrapped it), else a bug report (the traceback printed first with ``-v``)."""
    if isinstance(error, PlatformError):
        return str(error), error.exit_code
    cause: BaseException | None = error
    while cause is not None:
        if (message := aws_errors.explain(cause)) is not None:
            return message, aws_errors.exit_code(cause)
        cause = cause.__cause__ or cause.__context__
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(error)
    first_line = (str(error).splitlines() or [""])[0]
    return (
        f"unexpected {type(error).__name__}: {first_line} (a bug: please report it with the output of "
        "`smartcity -v` and the same command)",
        ExitCode.INTERNAL,
    )
