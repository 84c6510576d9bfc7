"""What a run of a thread starts from, read from the store and journaled as one entry.

Before its first model call, a run with a thread reads the thread's summary and the finished
runs after it (each folded from its journal: input parts with labels, answer, whether it
was tainted), folds the turns that no longer fit the window into a new summary
(`bosun.memory`), stores that summary under a compare-and-set, and journals the result as a
``thread_context`` entry: summary version and text, the window's turns, new vault entries,
the summarizer's usage. `RunState` folds that entry into the messages, so a resumed run has
the same context without reading the thread again.

PII: each earlier run masked its text with its own placeholders (``<EMAIL_1>`` there may be
another address here). Their text is revealed with their vault and masked again into this
run's, so placeholders never cross runs; the stored summary keeps the placeholders of the
run that wrote it, with their encrypted originals beside it (`bosun.data.threads`).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bosun.data.store import Store
from bosun.data.threads import ThreadRow, ThreadRows
from bosun.memory.summary import Summarizer, Summary, Turn, fold
from bosun.memory.threads import ThreadMemory, split_window
from bosun.memory.verbatim import Kept
from bosun.runtime.state import Entry, RunState
from bosun.runtime.taint import mask
from bosun.tools.privacy import Privacy, VaultEntry, placeholders_in, reveal_placeholders
from bosun.trust import Content, Trust

__all__ = ["ThreadContexts"]

_ATTEMPTS = 3


class ThreadContexts:
    """Builds the ``thread_context`` entry of a run, over one store."""

    def __init__(self, store: Store, *, privacy: Privacy | None = None) -> None:
        self.store = store
        self.rows = ThreadRows(store)
        self.privacy = privacy

    async def build(
        self, state: RunState, memory: ThreadMemory, summarizer: Summarizer
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The entry's payload and its step columns (the summarizer's model, tokens, cost)."""
        assert state.thread is not None
        for attempt in range(_ATTEMPTS):
            row = await asyncio.to_thread(self.rows.get, tenant=state.tenant, thread=state.thread)
            ids = await asyncio.to_thread(
                self.rows.turn_runs,
                tenant=state.tenant,
                thread=state.thread,
                before=state.run_id,
                after=None if row is None else row.through,
            )
            new: list[VaultEntry] = []
            previous, turns = await asyncio.to_thread(self._read, state, row, ids, new)
            folding, window = split_window(
                turns, window_turns=memory.window_turns, window_tokens=memory.window_tokens
            )
            payload: dict[str, Any] = {
                "thread": state.thread,
                "folded": [t.run_id for t in folding],
            }
            columns: dict[str, Any] = {}
            summary = previous
            if folding:
                summary, draft = await fold(summarizer, previous, folding)
                stored = self._row(state, summary, new)
                won = await asyncio.to_thread(
                    self.rows.replace_summary,
                    stored,
                    expected_version=None if row is None else row.version,
                )
                if not won and attempt < _ATTEMPTS - 1:
                    continue  # another run of the thread folded first: start from its summary
                payload.update(usage=draft.usage, cost_usd=draft.cost_usd)
                columns = {
                    "model": draft.model,
                    "input_tokens": draft.usage.input_tokens,
                    "output_tokens": draft.usage.output_tokens,
                    "cost_usd": draft.cost_usd,
                }
            payload["summary"] = None if summary is None else _summary_json(summary)
            payload["window"] = [t.to_json() for t in window]
            if new:
                payload["vault"] = [e.to_json() for e in new]
            return payload, columns
        raise AssertionError("unreachable: the last attempt always returns")

    # --- reading, in a worker thread (journals and PII masking) -------------------------

    def _read(
        self, state: RunState, row: ThreadRow | None, ids: list[str], new: list[VaultEntry]
    ) -> tuple[Summary | None, list[Turn]]:
        previous = None
        if row is not None:
            vault = _vault(json.loads(row.vault))
            rebase = self._rebaser(state, row.source_run, vault, new)
            previous = Summary(
                text=rebase(row.summary),
                kept=tuple(
                    Kept(k.kind, rebase(k.text))
                    for k in (Kept.from_json(item) for item in json.loads(row.kept))
                ),
                trust=Trust(row.trust),
                turns=row.turns,
                through=row.through,
                version=row.version,
            )
        return previous, [self._turn(state, run_id, new) for run_id in ids]

    def _turn(self, state: RunState, run_id: str, new: list[VaultEntry]) -> Turn:
        run, journal = self.store.load(run_id)
        earlier = RunState(run_id=run_id, agent=run.agent)
        started: dict[str, Any] = {}
        for step in journal:
            payload = json.loads(step.payload)
            if step.kind == "run_started":
                started = payload
            earlier.apply(Entry(step.seq, step.kind, payload))
        rebase = self._rebaser(state, run_id, earlier.vault, new)
        raw = started.get("parts") or [{"text": started.get("input", run.input)}]
        parts = tuple(
            Content(
                text=rebase(p["text"]),
                trust=Trust(p.get("trust", Trust.USER)),
                source=p.get("source", "user"),
            )
            for p in raw
        )
        return Turn(
            run_id=run_id,
            parts=parts,
            answer=rebase(_answer(run.status, earlier)),
            status=run.status,
            tainted=bool(earlier.taint),
        )

    def _rebaser(
        self, state: RunState, source_run: str, vault: dict[str, VaultEntry], new: list[VaultEntry]
    ) -> Any:
        privacy = self.privacy

        def rebase(text: str) -> str:
            if privacy is None or not vault or not placeholders_in(text):
                return text
            entities = {e.entity for e in vault.values()}
            revealed = reveal_placeholders(
                text, vault, entities, lambda entry: privacy.reveal(source_run, entry)
            )
            masked: str = mask(privacy, state.run_id, revealed, state.vault, new)
            return masked

        return rebase

    def _row(self, state: RunState, summary: Summary, new: list[VaultEntry]) -> ThreadRow:
        assert state.thread is not None
        vault = {**state.vault, **{e.placeholder: e for e in new}}
        texts = [summary.text, *(k.text for k in summary.kept)]
        used = {p for text in texts for p in placeholders_in(text)}
        return ThreadRow(
            tenant=state.tenant or "",
            id=state.thread,
            version=summary.version,
            summary=summary.text,
            kept=json.dumps([k.to_json() for k in summary.kept], ensure_ascii=False),
            trust=summary.trust.value,
            turns=summary.turns,
            through=summary.through,
            source_run=state.run_id,
            vault=json.dumps([vault[p].to_json() for p in sorted(used) if p in vault]),
            updated_at=time.time(),
        )


def _answer(status: str, run: RunState) -> str:
    if status == "completed":
        return run.output or ""
    if status == "escalated" and run.handoff is not None:
        return f"(escalated to a person: {run.handoff.reason})"
    return f"(the run ended {status}{': ' + run.error if run.error else ''})"


def _vault(items: list[dict[str, Any]]) -> dict[str, VaultEntry]:
    entries = (VaultEntry.from_json(item) for item in items)
    return {e.placeholder: e for e in entries}


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "version": summary.version,
        "text": summary.text,
        "trust": summary.trust.value,
        "turns": summary.turns,
        "through": summary.through,
    }
