"""``bosun router train | evaluate``: the learned router on labelled traffic.

The traffic is a CSV of ``text,category`` (banking77's layout), found at ``--data`` or under
``$BOSUN_DATA_DIR/intents/banking77-train.csv``; ``intent_tiers.yaml`` gives each category
the tier it needs. Training needs scikit-learn (``pip install 'bosun[train]'``); the router
at run time does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bosun.cli.render import error
from bosun.economy.learned import MODEL_PATH, TIERS_PATH, IntentRouter
from bosun.economy.training import RouterReport, evaluate, load_traffic, train, write
from bosun.errors import BosunError

__all__ = ["router_app"]

console = Console()
router_app = typer.Typer(help="The learned router: train and evaluate.", no_args_is_help=True)

Data = Annotated[
    Path | None,
    typer.Option(
        help="Labelled traffic (CSV text,category). Default: "
        "$BOSUN_DATA_DIR/intents/banking77-train.csv."
    ),
]
Tiers = Annotated[Path, typer.Option(help="Category -> tier mapping (YAML).")]


def _data(data: Path | None) -> Path:
    if data is not None:
        return data
    from bosun.config import load_settings

    root = load_settings().data_dir
    if root is None:
        error(console, "no --data given and BOSUN_DATA_DIR is not set")
        raise typer.Exit(2)
    return root / "intents" / "banking77-train.csv"


@router_app.command("train")
def train_command(
    data: Data = None,
    tiers: Tiers = TIERS_PATH,
    out: Annotated[Path, typer.Option(help="Where to write the weights.")] = MODEL_PATH,
) -> None:
    """Fit the router on the training split and write its weights, then evaluate them."""
    try:
        names, examples = load_traffic(_data(data), tiers)
        model = train(names, examples)
        write(model, out)
        report = evaluate(IntentRouter.load(out), examples)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    console.print(f"wrote {out} ({model['meta']['features']} features)")
    _print(report)


@router_app.command("evaluate")
def evaluate_command(
    data: Data = None,
    tiers: Tiers = TIERS_PATH,
    model: Annotated[Path, typer.Option(help="The weights to evaluate.")] = MODEL_PATH,
) -> None:
    """Accuracy and cost of the router on the held-out split."""
    try:
        _, examples = load_traffic(_data(data), tiers)
        report = evaluate(IntentRouter.load(model), examples)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(1) from exc
    _print(report)


def _print(report: RouterReport) -> None:
    console.print(
        f"held out: {report.examples} messages\n"
        f"accuracy: {report.accuracy:.3f}  under-routed: {report.under_routed:.3f}  "
        f"over-routed: {report.over_routed:.3f}\n"
        f"cost vs always-balanced: {report.cost_vs_balanced:.3f} "
        f"(perfect router: {report.oracle_vs_balanced:.3f})"
    )
    for tier, (n, recall) in report.per_tier.items():
        console.print(f"  {tier:<9} {n:>5} needed, recall {recall:.3f}")
