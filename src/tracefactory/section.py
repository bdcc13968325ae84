"""``Section``: the base of every typed params section.

It lives apart from ``tracefactory.config`` so that a stage package can define its own section
(``tracefactory.config`` imports those to assemble ``Params``) without an import cycle.
"""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A params section: immutable, and unknown keys are errors (a typo fails loudly at load)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
