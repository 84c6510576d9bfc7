"""The ``bosun`` command line (Typer + Rich): one module per plane's commands.

``main.py`` is the app and the run commands; ``service.py`` serve, worker, keys and inbox;
``prompts.py`` prompts and eval; ``observe.py`` costs, alerts, online and shadow;
``drift.py``; ``trace.py``; ``demo.py``; ``options.py`` the options they share.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    # Lazily, so that importing one command module does not build the whole app.
    if name == "app":
        from bosun.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
