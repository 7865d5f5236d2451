"""Errors the platform reports to people: the message says what is wrong and how to fix it."""


class PlatformError(Exception):
    """A failure with a message fit for the terminal; the CLI prints it and exits non-zero."""


class ConfigError(PlatformError):
    """A setting is missing or has a value that is not allowed."""


class JavaError(PlatformError):
    """No usable Java runtime (17 or newer) was found."""


class BrokerError(PlatformError):
    """The local Kafka broker could not be started, reached or stopped."""
