"""Spend as the journal records it: each model call's cost, tokens and time are columns of its
step, so totals are sums over ``steps`` joined to ``runs``; there is no second ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from bosun.data._repo import Repository
from bosun.data.schema import runs, steps

__all__ = ["SpendGroup", "SpendRow", "SpendRows"]

SpendGroup = Literal["agent", "tenant", "day", "run"]
"""What a spend report groups by: agent, tenant (``""`` for none), UTC day or run id."""

_PRICED = ("model_response", "plan", "thread_context")
_WITH_RUN = steps.join(runs, runs.c.id == steps.c.run_id)


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of a spend report."""

    key: str
    """The agent, tenant, day (``YYYY-MM-DD``) or run id."""
    cost_usd: Decimal
    """Summed cost of the group's model calls (unpriced calls count as zero)."""
    input_tokens: int
    """Summed input tokens."""
    output_tokens: int
    """Summed output tokens."""
    model_calls: int
    """Model calls (and plans)."""
    runs: int
    """Distinct runs."""


class SpendRows(Repository):
    """Reads spend from the journal."""

    def spent(self, scope: str, name: str, start: float, end: float) -> Decimal:
        """What the runs of agent `name` (`scope` ``agent``) or else of tenant `name` spent in
        steps created in [start, end)."""
        column = runs.c.agent if scope == "agent" else runs.c.tenant
        query = (
            sa.select(sa.func.coalesce(sa.func.sum(steps.c.cost_usd), 0))
            .select_from(_WITH_RUN)
            .where(steps.c.created_at >= start, steps.c.created_at < end, column == name)
        )
        with self._read() as conn:
            return Decimal(str(conn.execute(query).scalar_one()))

    def report(
        self, *, since: float, until: float | None, by: SpendGroup, limit: int
    ) -> list[SpendRow]:
        """Spend, tokens and model calls between `since` and `until`, grouped `by`; largest
        spend first."""
        key = {
            "agent": runs.c.agent,
            "tenant": sa.func.coalesce(runs.c.tenant, ""),
            "day": self._day(),
            "run": runs.c.id,
        }[by]
        cost = sa.func.coalesce(sa.func.sum(steps.c.cost_usd), 0)
        query = (
            sa.select(
                key.label("key"),
                cost.label("cost_usd"),
                sa.func.coalesce(sa.func.sum(steps.c.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(steps.c.output_tokens), 0).label("output_tokens"),
                sa.func.count(steps.c.seq).label("model_calls"),
                sa.func.count(sa.distinct(steps.c.run_id)).label("runs"),
            )
            .select_from(_WITH_RUN)
            .where(
                steps.c.kind.in_(_PRICED),
                # a thread context is a model call only when a summarizer wrote a summary
                sa.or_(steps.c.kind != "thread_context", steps.c.model.is_not(None)),
                steps.c.created_at >= since,
            )
            .group_by(key)
            .order_by(cost.desc(), key)
            .limit(limit)
        )
        if until is not None:
            query = query.where(steps.c.created_at < until)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            SpendRow(
                key=r.key,
                cost_usd=Decimal(str(r.cost_usd)),
                input_tokens=int(r.input_tokens),
                output_tokens=int(r.output_tokens),
                model_calls=int(r.model_calls),
                runs=int(r.runs),
            )
            for r in rows
        ]

    def _day(self) -> Any:
        """A step's UTC day as ``YYYY-MM-DD``."""
        if self._postgres:
            return sa.func.to_char(sa.func.to_timestamp(steps.c.created_at), "YYYY-MM-DD")
        return sa.func.date(steps.c.created_at, "unixepoch")
