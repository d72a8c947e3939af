"""The exceptions bulksync raises, split into terminal and transient failures.

A terminal error (bad spec, bad data, missing permission, unknown field) fails the task at once
without retries; its message names the file / field / row and says what to do. A transient error
(timeouts, connection resets, HTTP 429/503, deadlocks) is retried by Airflow with backoff.
"""

from __future__ import annotations


class BulksyncError(Exception):
    """Base class of every error bulksync raises on purpose."""

    terminal: bool = True


class TerminalError(BulksyncError):
    """An error that retrying cannot fix: the task fails at once."""

    terminal = True


class TransientError(BulksyncError):
    """An error that may go away by itself: the task is retried with backoff."""

    terminal = False


class SpecError(TerminalError):
    """One or more pipeline specs are invalid.

    Attributes:
        problems: ``(file, field path, message)`` triples, one per problem found.
    """

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"{file}: {path}: {msg}" if path else f"{file}: {msg}" for file, path, msg in problems]
        head = "invalid pipeline spec" if len(problems) == 1 else f"{len(problems)} problems in pipeline specs"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


class ConfigurationError(TerminalError):
    """A connection, variable or option outside the spec is missing or wrong."""


class SourceConnectionError(TransientError):
    """A source or target system could not be reached (names the connection id and host)."""


class DataError(TerminalError):
    """Input data does not match what the spec declares (names file, line, column and value)."""


class TargetSchemaError(TerminalError):
    """The target table cannot take the staged data as declared (names table and columns)."""


class StagingError(TerminalError):
    """A staging partition is missing, uncommitted or corrupt."""


class StagingSpaceError(TransientError):
    """The staging volume is full (names the dataset and the path); retried once space is freed."""


class StorageAccessError(ConfigurationError):
    """An object store refused the credentials of a connection, or a container does not exist
    (names the account, the container and the connection id; never the secret)."""


class FileRejectedError(DataError):
    """One input file cannot be loaded; file sources quarantine it and go on with the others.

    Attributes:
        reason: a short machine-readable code (``checksum_mismatch``, ``bad_value`` …), written to
            the file's ``.reason.json`` and the file ledger.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LandingFileChangedError(TransientError):
    """A file of a landing zone changed or vanished while it was being read (its ETag no longer matches);
    nothing of it was passed on and the retry reads it again."""
