"""``bosun drift``: each agent and prompt version against its baseline, and drift alerts."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bosun.cli.options import DbOption, open_store
from bosun.observe.alerts import list_alerts

if TYPE_CHECKING:  # scipy takes a second to import: only `bosun drift` pays for it
    from bosun.drift.detector import DriftConfig, DriftReport, MetricResult

__all__ = ["drift_command"]

console = Console()

_STYLE = {
    "ok": "green",
    "drift": "bold red",
    "insufficient data": "yellow",
    "no baseline": "yellow",
}


def drift_command(
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent.")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    window: Annotated[
        int, typer.Option(help="Current window: the latest this many finished runs.")
    ] = 200,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Store automatic baselines and raise alerts for drift found (for a periodic "
            "job); by default only show.",
        ),
    ] = False,
) -> None:
    """Behaviour drift per agent and prompt version: baseline against the current window,
    each metric's test, statistic, threshold and verdict, and the drift alerts raised."""
    store = open_store(db)
    try:
        from bosun.drift.detector import DriftConfig, check_drift

        config = DriftConfig(window_runs=window, baseline_runs=window)
        reports = check_drift(store, agent, config=config, record=record)
        alerts = [
            a
            for a in list_alerts(store, kind="drift", limit=200)
            if agent is None or str(a["subject"]).startswith(f"{agent}/")
        ]
    finally:
        store.close()
    if as_json:
        body = {"reports": [r.to_json() for r in reports], "alerts": alerts}
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    if not reports:
        console.print("No finished runs yet.")
    for report in reports:
        _print_report(report, config)
    _print_alerts(alerts[:20])


def _print_report(report: DriftReport, config: DriftConfig) -> None:
    version = report.prompt_version or "(unversioned)"
    style = _STYLE.get(report.status, "")
    console.print(
        f"\n[bold]{report.agent}[/bold] {version}: [{style}]{report.status}[/{style}] "
        f"({report.runs} finished runs)"
    )
    if report.baseline is None:
        console.print(
            f"  no baseline yet: taken from its first {config.baseline_runs} finished runs "
            "once it has them, or set one with bosun.drift.detector.set_baseline"
        )
        return
    base = report.baseline.stats["window"]
    console.print(f"  baseline: {base['runs']} runs, {_span(base)}")
    if report.window is not None:
        console.print(f"  current:  {report.window['runs']} runs, {_span(report.window)}")
    table = Table()
    for column in ("metric", "baseline", "current", "test", "statistic", "p", "effect"):
        table.add_column(column)
    table.add_column("threshold")
    table.add_column("verdict")
    for m in report.metrics:
        table.add_row(
            m.name,
            _side(m, m.baseline),
            _side(m, m.current),
            m.test,
            _number(m.statistic),
            _number(m.p_value),
            "" if m.effect is None else f"{m.effect_name} {m.effect:.3f}",
            m.threshold,
            f"[{_STYLE.get(m.verdict, '')}]{m.verdict}[/]",
        )
    console.print(table)


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        console.print("\nNo drift alerts.")
        return
    table = Table(title="drift alerts (newest first)")
    for column in ("raised", "subject", "severity", "message"):
        table.add_column(column)
    for alert in alerts:
        table.add_row(
            _when(alert["created_at"]), alert["subject"], alert["severity"], alert["message"]
        )
    console.print(table)


def _side(metric: MetricResult, side: dict[str, Any]) -> str:
    if metric.name == "tool_mix":
        top = sorted(side["shares"].items(), key=lambda kv: -kv[1])[:3]
        return f"{side['calls']} calls: " + ", ".join(f"{t} {s:.0%}" for t, s in top)
    if "rate" in side:
        rate = side["rate"]
        return f"{side['count']}/{side['n']}" + ("" if rate is None else f" ({rate:.1%})")
    if not side["n"]:
        return "n=0"
    return f"n={side['n']} mean {side['mean']:g} p50 {side['p50']:g}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _span(window: dict[str, Any]) -> str:
    if window.get("from") is None:
        return "none yet"
    return f"{_when(window['from'])} .. {_when(window['to'])}"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
