"""Deprecated: the spine's modules moved by purpose in 0.2.

Observation beside the runtime is `bosun.observe` (metrics, cost, alerts, logs, tracing);
the layers above it are `bosun.evals` (offline and online evaluation, shadow runs),
`bosun.prompts` (the registry and templates) and `bosun.drift`. Importing an old
``bosun.spine.X`` module still works and warns once with its new name; it will be removed in
0.3.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__: list[str] = []

MOVED = {
    "alerts": "bosun.observe.alerts",
    "cost": "bosun.observe.cost",
    "drift": "bosun.drift.detector",
    "drift_baselines": "bosun.drift.baselines",
    "drift_features": "bosun.drift.features",
    "drift_stats": "bosun.drift.stats",
    "eval_checks": "bosun.evals.checks",
    "eval_dataset": "bosun.evals.dataset",
    "eval_gate": "bosun.evals.gate",
    "eval_report": "bosun.evals.report",
    "eval_sandbox": "bosun.evals.sandbox",
    "evals": "bosun.evals.runner",
    "logs": "bosun.observe.logs",
    "metrics": "bosun.observe.metrics",
    "online": "bosun.evals.online",
    "prompt_template": "bosun.prompts.template",
    "prompts": "bosun.prompts.registry",
    "shadow": "bosun.evals.shadow",
    "trace_build": "bosun.observe.span_builder",
    "trace_export": "bosun.observe.export",
    "trace_spans": "bosun.observe.spans",
    "tracing": "bosun.observe.tracing",
}
"""Old module name under ``bosun.spine`` -> where it lives now."""


class _Alias(MetaPathFinder, Loader):
    """Resolves ``bosun.spine.<old>`` to the module's new home, with a DeprecationWarning."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> ModuleSpec | None:
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        return ModuleSpec(fullname, self)

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # a plain module, filled below

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__.rpartition(".")[2]]
        warnings.warn(
            f"{module.__name__} moved to {new}; the old name goes in bosun 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        target = importlib.import_module(new)
        module.__dict__.update(
            (k, v) for k, v in vars(target).items() if not k.startswith("__") or k == "__all__"
        )


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())
