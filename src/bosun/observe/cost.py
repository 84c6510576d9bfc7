"""Cost control: spend by run, agent, tenant and day; caps enforced before each model call;
alerts when 80% and 100% of a cap are reached.

Spend is read from the journal (each model call's cost is a column of its step), so there is
no second ledger to drift from it. `CostGuard` is the runtime's `SpendGuard`:

```
before a model call:  projected = spent + estimate (the run's mean cost per call so far)
                      per run:           run's spend        + estimate > cap -> escalate
                      per agent and day: agent's spend today + estimate > cap -> escalate
                      per tenant and day: likewise
after a model call:   the cost is added to this process's running totals; crossing a
                      threshold (80%, 100%) raises an alert (stored once, then notified)
```

Across processes, each guard re-reads the day's totals from the store every `refresh_s`
seconds and adds its own charges in between, so several workers together can overshoot a
daily cap by at most what they spend within one refresh interval. Days are UTC days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from bosun.data.spend import SpendGroup, SpendRows
from bosun.data.store import Store
from bosun.observe.alerts import Alert, Notifier, raise_alert
from bosun.runtime.state import RunState

__all__ = ["CostCaps", "CostGuard", "spend_report"]

_ZERO = Decimal(0)


@dataclass(frozen=True, kw_only=True)
class CostCaps:
    """Spend caps in USD; None or absent means no cap."""

    per_run_usd: Decimal | None = None
    """One run's spend (projected before each call, unlike `Budget.max_cost_usd`)."""
    per_agent_day_usd: Mapping[str, Decimal] = field(default_factory=dict)
    """An agent's spend per UTC day, by agent name; ``"*"`` for agents not named."""
    per_tenant_day_usd: Mapping[str, Decimal] = field(default_factory=dict)
    """A tenant's spend per UTC day, by tenant; ``"*"`` for tenants not named."""
    alert_at: Sequence[float] = (0.8, 1.0)
    """Shares of a cap at which an alert is raised."""


@dataclass
class _Total:
    stored: Decimal
    local: Decimal
    read_at: float


class CostGuard:
    """Enforces `CostCaps` for a runtime (``Runtime(spend=CostGuard(store, caps))``)."""

    def __init__(
        self,
        store: Store,
        caps: CostCaps,
        *,
        notify: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        refresh_s: float = 5.0,
    ) -> None:
        self.store = store
        self.caps = caps
        self._notify = notify
        self._clock = clock
        self._refresh_s = refresh_s
        self._totals: dict[tuple[str, str, str], _Total] = {}
        self._spend = SpendRows(store)

    # --- the runtime's hooks ------------------------------------------------------------------

    async def before_model_call(self, state: RunState) -> str | None:
        """Why the next call would break a cap, or None."""
        estimate = state.cost_usd / state.model_calls if state.model_calls else _ZERO
        cap = self.caps.per_run_usd
        if cap is not None and _over(state.cost_usd, estimate, cap):
            return (
                f"run cost cap reached: ${state.cost_usd:.4f} spent, next call ~${estimate:.4f},"
                f" cap ${cap}"
            )
        for scope, name, day_cap in self._day_caps(state):
            spent = await self._spent(scope, name)
            if _over(spent, estimate, day_cap):
                await self._alert(scope, name, spent, day_cap, 1.0)
                return (
                    f"daily cost cap of {scope} {name!r} reached: ${spent:.4f} of ${day_cap} "
                    "spent today (UTC)"
                )
        return None

    async def charged(self, state: RunState, cost_usd: Decimal) -> None:
        """Add a call's cost to today's totals; alert on crossing a threshold."""
        for scope, name, cap in self._day_caps(state):
            total = await self._total(scope, name)
            before = total.stored + total.local
            total.local += cost_usd
            after = before + cost_usd
            for share in self.caps.alert_at:
                if before < cap * Decimal(str(share)) <= after:
                    await self._alert(scope, name, after, cap, share)

    # --- totals -------------------------------------------------------------------------------

    def _day_caps(self, state: RunState) -> list[tuple[str, str, Decimal]]:
        found = []
        for scope, name, caps in (
            ("agent", state.agent, self.caps.per_agent_day_usd),
            ("tenant", state.tenant, self.caps.per_tenant_day_usd),
        ):
            if name is None:
                continue
            cap = caps.get(name, caps.get("*"))
            if cap is not None:
                found.append((scope, name, cap))
        return found

    async def _spent(self, scope: str, name: str) -> Decimal:
        total = await self._total(scope, name)
        return total.stored + total.local

    async def _total(self, scope: str, name: str) -> _Total:
        now = self._clock()
        day = _day(now)
        key = (scope, name, day)
        total = self._totals.get(key)
        if total is None or now - total.read_at >= self._refresh_s:
            start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
            stored = await asyncio.to_thread(self._spend.spent, scope, name, start, start + 86400)
            total = _Total(stored=stored, local=_ZERO, read_at=now)
            self._totals = {k: v for k, v in self._totals.items() if k[2] == day}
            self._totals[key] = total
        return total

    async def _alert(
        self, scope: str, name: str, spent: Decimal, cap: Decimal, share: float
    ) -> None:
        day = _day(self._clock())
        percent = round(share * 100)
        alert = Alert(
            kind="cost_cap",
            subject=f"{scope}:{name}",
            severity="critical" if share >= 1 else "warning",
            message=f"{scope} {name!r} has spent ${spent:.4f} today, {percent}% of its "
            f"${cap} daily cap",
            evidence={"day": day, "spent_usd": str(spent), "cap_usd": str(cap), "share": share},
            dedupe_key=f"cost:{scope}:{name}:{day}:{percent}",
        )
        new = await asyncio.to_thread(raise_alert, self.store, alert, now=self._clock())
        if new and self._notify is not None:
            await self._notify(alert)


def _over(spent: Decimal, estimate: Decimal, cap: Decimal) -> bool:
    # Before the first priced call the estimate is zero: stop only at the cap itself.
    return spent >= cap if estimate == 0 else spent + estimate > cap


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def spend_report(
    store: Store,
    *,
    since: float,
    until: float | None = None,
    by: SpendGroup = "agent",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Spend, tokens and model calls between `since` and `until`, grouped `by` agent,
    tenant, UTC day or run; largest spend first."""
    rows = SpendRows(store).report(since=since, until=until, by=by, limit=limit)
    return [{by: r.key, **{k: v for k, v in asdict(r).items() if k != "key"}} for r in rows]
