"""The errors posedive raises for things a user can fix, each with an exit code and a hint.

Every error a user can act on (a bad recipe field, an unreadable source file, a release built by
another recipe, a refused Hub push, a missing optional package) is a ``PosediveError``: the command
line prints its message and hint and exits with its ``exit_code``, without a traceback. Anything
else that escapes a command is a bug and keeps its traceback.

The classes also derive from the built-in exception a caller would expect (``ValueError`` for bad
input, ``FileNotFoundError`` for a missing file, ``PermissionError`` for a refused token), so code
that catches those keeps working.
"""

from __future__ import annotations


class PosediveError(Exception):
    """Base of every user-facing posedive error.

    ``hint`` says what to do about it (a command to run, a field to change); the CLI prints it
    under the message. ``exit_code`` is the process exit status the CLI uses.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(PosediveError, ValueError):
    """A value given by the user (command-line option, argument, config) cannot be used."""


class ConfigError(InputError):
    """A configuration file (recipe, training config, ...) cannot be used; the message names the file,
    the field and what was expected."""


class RecipeError(ConfigError):
    """A recipe that cannot be used; the message names the file, the field and what was expected."""


class SourceError(InputError):
    """A source dataset that cannot be read; the message names the folder or file."""


class PlanError(InputError):
    """The plan cannot be made (no identities, no poses) or a part specification is wrong."""


class PathNotFound(PosediveError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class PathExists(PosediveError, FileExistsError):
    """A file or folder posedive would create already exists (it never overwrites what it did not write)."""


class OutputError(PosediveError, OSError):
    """A file posedive was asked to write could not be written (a full disk, a folder without write
    permission, a file name whose extension the writer does not know)."""


class StorageAccessError(PosediveError, OSError):
    """A release location at a URL could not be read: no credentials, credentials refused, an endpoint
    that cannot be reached, or a URL fsspec cannot open."""


class FormatError(PosediveError, ValueError):
    """A file on disk was written in a format (or format version) this posedive cannot read."""


class ReleaseError(PosediveError, ValueError):
    """A release folder that is incomplete, inconsistent, or would be overwritten."""


class CheckpointError(PosediveError, ValueError):
    """Model weights that cannot be loaded or converted: missing, unexpected or misshapen keys, or a
    condition contract that does not match the recipe."""


class StageUnavailable(PosediveError, RuntimeError):
    """A stage of the pipeline cannot be loaded; the message names it and what is missing."""

    exit_code = 3


class MissingDependency(StageUnavailable, ImportError):
    """An optional package or system library is not installed; the hint names what to install."""


class HubError(PosediveError, RuntimeError):
    """The Hub refused or failed a request; the message names the repo and the hint what to do."""


class HubAuthError(HubError, PermissionError):
    """No token, a bad token, or a token without write access to the repo."""


class LockError(PosediveError, RuntimeError):
    """Another build holds the release folder (or the part of it) this build wants."""

    exit_code = 4
