"""One exception hierarchy for everything that depends on input, config or environment.

Internal invariants use ``assert``; anything a user can cause raises one of these, with a message
that names what is wrong (the key, the column, the shard, the path) and what would be right. The
CLI prints any of them as one ``error:`` line and exits non-zero; anything else is a bug and keeps
its traceback. Third-party errors that a user can cause (pydantic's ``ValidationError``, the Hub
client's, ``datasets``') are caught where they arise and re-raised as one of these ``from`` them.
"""


class TracefactoryError(Exception):
    """Base of every error tracefactory raises on purpose."""


class ConfigError(TracefactoryError):
    """A parameter is missing, has the wrong type, or a value outside what is allowed."""


class SchemaError(TracefactoryError):
    """A table does not match its contract in ``schemas/``."""


class ShardError(TracefactoryError):
    """A shard could not be produced, written or read."""


class StageInputError(TracefactoryError):
    """A stage's input table is missing or incomplete (its producing stage has not finished)."""


class TrainingError(TracefactoryError):
    """Training cannot go on (the loss became NaN or infinite)."""


class TableLockedError(TracefactoryError):
    """Another process is writing the table (one writer per table at a time)."""


class HubError(TracefactoryError):
    """The Hub cannot be used: no token, a rejected token, or no connection."""


class GraderError(TracefactoryError):
    """The grader's worker processes cannot start (math-verify not importable in a spawned
    process, or a memory limit below what it needs)."""
