"""Where every `tenet` command prints. Rich markup is off: user text and error texts print
exactly as written (a rule like `[a-z0-9][a-z0-9-]{0,11}`, a value in square brackets), and our
own styling is a style given beside the text (`styled`, `line`), never markup inside a string."""
from __future__ import annotations

import sys
from typing import NoReturn, Union

import typer
from rich.console import Console
from rich.text import Text

Part = Union[str, tuple[str, str]]  # plain text, or (text, rich style)


def console(stderr: bool = False, fit: bool = False) -> Console:
    """A console that prints text as written: no markup, no highlighting, and lines left whole
    (soft wrap) so a piped message is never broken where rich would wrap it. `fit`: tables
    piped are 200 wide, never truncating MACs and IPs."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True,
                   width=200 if fit and not stream.isatty() else None)


def styled(text: str, style: str) -> Text:
    return Text(text, style=style)


def line(*parts: Part) -> Text:
    """One line of plain and styled parts, each printed as written."""
    return Text.assemble(*parts)


def cells(*values: object) -> list[Text]:
    """A table row whose every cell is printed as written (a Table renders str cells as markup
    unless its console's markup is off; these are safe on any console)."""
    return [v if isinstance(v, Text) else Text(str(v)) for v in values]


out = console(fit=True)
err = console(stderr=True)


def progress(message: str) -> None:
    err.print(line(("•", "dim"), " ", message))


def fail(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit 1."""
    err.print(line(("error:", "red"), " ", message))
    raise typer.Exit(1)
