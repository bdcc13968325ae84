"""How the command line reports a usage mistake: one line naming it, one line saying where help is.

Typer parses the command line with its own copy of click, whose errors print a usage block and
(outside standalone mode) a traceback. ``usage_error_lines`` turns each into at most two lines,
with a "did you mean" wherever click knows the candidates.
"""

from __future__ import annotations

from typer._click.exceptions import (
    BadParameter,
    ClickException,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)


def usage_error_lines(error: ClickException) -> list[str] | None:
    """The lines to print for ``error``; None when click's own output is what the user asked for
    (``tracefactory`` alone prints the help)."""
    if isinstance(error, NoArgsIsHelpError):
        return None
    if isinstance(error, NoSuchOption) and error.possibilities:
        message = f"{error.message}; did you mean {' or '.join(sorted(error.possibilities))}?"
    elif isinstance(error, BadParameter):
        message = error.format_message().replace("Value error, ", "")  # pydantic's prefix
    else:
        message = error.format_message()
    lines = [f"error: {message}"]
    if isinstance(error, UsageError) and error.ctx is not None:
        lines.append(f"(see: {error.ctx.command_path} --help)")
    return lines
