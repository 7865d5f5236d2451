"""Errors the platform reports to people: the message says what is wrong and how to fix it, the exit status says
what kind of failure it was, so scripts can tell them apart (documented in the README)."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses of every ``smartcity`` command; the values of ``sysexits.h`` where one fits."""

    OK = 0
    FAILURE = 1
    """The command failed; its one-line message says why."""
    USAGE = 2
    """Unknown command, option or argument (click's own)."""
    DEGRADED = 3
    """`status`: the platform runs, but a service is down or cannot be reached."""
    DOWN = 4
    """`status`: no service of the platform runs."""
    UNAVAILABLE = 69
    """A service the command needs (the Kafka broker, an AWS endpoint) cannot be reached."""
    INTERNAL = 70
    """An unexpected error: a bug; `smartcity -v …` shows its traceback."""
    CONFIG = 78
    """A setting is invalid, unknown or inconsistent."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT)."""


class PlatformError(Exception):
    """A failure with a message fit for the terminal; the CLI prints it and exits with :attr:`exit_code`."""

    exit_code = ExitCode.FAILURE


class ConfigError(PlatformError):
    """A setting is missing or has a value that is not allowed."""

    exit_code = ExitCode.CONFIG


class UnavailableError(PlatformError):
    """A service the command needs cannot be reached."""

    exit_code = ExitCode.UNAVAILABLE


class JavaError(PlatformError):
    """No usable Java runtime (17 or newer) was found."""


class BrokerError(PlatformError):
    """The local Kafka broker could not be started, reached or stopped."""


class BrokerUnreachable(BrokerError, UnavailableError):
    """No Kafka broker answers at the configured address."""
