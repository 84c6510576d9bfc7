"""What every ``bosun`` command that reads the store shares: the ``--db`` option, and run
ids given in full or abbreviated.

Run ids are 12 hex digits of milliseconds then 16 random ones (`bosun.runtime.new_run_id`),
so runs started close together share a long prefix. A narrow terminal shows each id by the
shortest prefix no other run in the store shares (like git's abbreviated hashes), and every
command that takes a run accepts such a prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

import typer

from bosun.config import load_settings
from bosun.data.store import RunRow, Store
from bosun.errors import RunNotFound, UserError

__all__ = ["MIN_PREFIX", "DbOption", "abbreviate", "open_store", "resolve_run"]

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: BOSUN_DATABASE_URL or BOSUN_HOME)."),
]

MIN_PREFIX = 8
"""The shortest abbreviation shown or accepted (8 hex digits: a run's minute, roughly)."""

_HEX = re.compile(r"[0-9a-f]+")


def open_store(db: str | None) -> Store:
    """The store `db` names, else the configured one (migrated on open)."""
    return Store.open(db or load_settings().resolved_database_url)


def resolve_run(store: Store, ref: str) -> RunRow:
    """The run `ref` names: its full id, or a prefix of it that no other run shares.
    `RunNotFound` when none matches; `UserError` when several do."""
    try:
        return store.get_run(ref)
    except RunNotFound:
        if len(ref) < MIN_PREFIX or not _HEX.fullmatch(ref):
            raise
    matches = _starting_with(store, ref)
    if not matches:
        raise RunNotFound(f"no run with id {ref!r} or starting with it")
    if len(matches) > 1:
        first, second = matches[0].id, matches[1].id
        raise UserError(f"{ref!r} starts several runs' ids ({first}, {second}, ...): give more")
    return matches[0]


def abbreviate(store: Store, run_ids: Iterable[str]) -> dict[str, str]:
    """Each id's shortest prefix (at least `MIN_PREFIX`) that no other run in the store
    shares, all cut to the same length so they line up."""
    ids = list(run_ids)
    length = MIN_PREFIX
    for run_id in filter(_HEX.fullmatch, ids):
        while length < len(run_id) and len(_starting_with(store, run_id[:length])) > 1:
            length += 1
    # An id bosun did not make (not hex) is shown whole: prefixes are looked up as hex.
    return {i: i[:length] if _HEX.fullmatch(i) else i for i in ids}


def _starting_with(store: Store, prefix: str) -> list[RunRow]:
    """Up to two runs whose id starts with the hex `prefix`. Ids sort as hex strings, and
    ``prefix + "g"`` sorts after every hex id starting with `prefix`: the newest runs
    before it are those, if there are any (one indexed range read)."""
    rows = store.list_runs(before=prefix + "g", limit=2)
    return [row for row in rows if row.id.startswith(prefix)]
