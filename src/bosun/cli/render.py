"""How the commands print: statuses, costs, ages, text cut to a width, copyable commands.

Everything here is meant to read in an 80-column terminal: text is cut at a word boundary
with an ellipsis, never mid-word, and a command a person will copy is printed on a line of
its own that Rich does not break (the terminal wraps it for display; a copy is whole).
"""

from __future__ import annotations

import time
from decimal import Decimal

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["age", "clip", "command_hint", "cost_text", "error", "shorten", "status_markup", "table"]

ELLIPSIS = "…"


def status_markup(status: str) -> str:
    """A run or step status, coloured by what it means."""
    colour = {"completed": "green", "ok": "green", "failed": "red", "escalated": "yellow"}.get(
        status, "cyan" if status.startswith("waiting") else "red" if status else "white"
    )
    return f"[{colour}]{escape(status)}[/{colour}]"


def cost_text(cost: Decimal | None) -> str:
    """A cost in dollars, or ``unknown`` for a run on an unpriced model."""
    return "unknown" if cost is None else f"${cost:.6f}"


def age(since: float, *, now: float | None = None) -> str:
    """How long ago `since` (Unix time) was, in the largest whole unit: ``42s``, ``5m``,
    ``3h``, ``2d``."""
    seconds = max(0.0, (time.time() if now is None else now) - since)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def shorten(text: str, width: int) -> str:
    """`text` on one line in at most `width` characters: whitespace collapsed, and when it
    does not fit, cut after the last whole word that does, with an ellipsis. Only a single
    word longer than `width` is cut inside the word."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    if width < 2:
        return ELLIPSIS[:width]
    head = flat[: width - 1]
    if flat[width - 1] != " " and " " in head:
        head = head[: head.rindex(" ")]  # drop the word the cut would split
    return head.rstrip(" .,;:") + ELLIPSIS


def clip(text: str, limit: int) -> str:
    """`text` with its line breaks, cut after the last whole word within `limit` characters
    (with an ellipsis) when it is longer."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace():
        cut = max(head.rfind(" "), head.rfind("\n"))
        head = head[:cut] if cut > 0 else head
    return head.rstrip() + ELLIPSIS


def table(*columns: str) -> Table:
    """A table without vertical rules: two spaces between columns, a rule under the header.
    Lighter than a boxed table by three characters a column, which 80 columns need."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for name in columns:
        grid.add_column(name)
    return grid


def command_hint(console: Console, label: str, command: str) -> None:
    """`label`, then `command` indented on a line of its own, never broken by Rich (a path
    wider than the terminal is wrapped by the terminal, so copying the line copies it
    whole)."""
    console.print(f"{label}:", highlight=False)
    console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)


def error(console: Console, message: str) -> None:
    """One red ``error:`` line (not wrapped: a script greps it, a person reads it whole)."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
