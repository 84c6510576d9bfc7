"""Where the third-party datasets are (AgentDojo, BIPIA, deepset, spikee, banking77, presidio
synthetic PII): ``BOSUN_DATA_DIR``, else ``../shared/data`` beside the repository.

Read here only, by the tests, bench/ and scripts/; bosun itself never reads them. The data
is not part of the repository, so a checkout without it must say what is missing rather than
fail on a file path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "BOSUN_DATA_DIR"
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
"""``../shared/data`` beside the repository: where the team's machines keep the datasets."""
HINT = f"set {ENV} to the third-party data"


def data_dir() -> Path:
    """The datasets' directory as configured; it may not exist."""
    return Path(os.environ.get(ENV) or DEFAULT)


def missing(*parts: str) -> str | None:
    """Why the datasets (or the named parts of them) cannot be read, or None when they can."""
    root = data_dir()
    if not root.is_dir():
        return f"{ENV}={root} not found ({HINT})"
    absent = [p for p in parts if not (root / p).exists()]
    if absent:
        return f"{ENV}={root} has no {', '.join(absent)} ({HINT})"
    return None


def require(*parts: str) -> Path:
    """The datasets' directory, or exit with the reason when it (or a named part) is absent."""
    reason = missing(*parts)
    if reason is not None:
        sys.exit(f"{Path(sys.argv[0]).name} needs the third-party datasets: {reason}")
    return data_dir()
