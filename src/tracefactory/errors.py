"""One exception hierarchy for everything that depends on input, config or environment.

Internal invariants use ``assert``; anything a user can cause raises one of these, with a message
that names what is wrong (the key, the column, the shard, the path) and what would be right.
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
