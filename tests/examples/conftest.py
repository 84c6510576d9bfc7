"""The examples live at the repository root (``examples/``), outside the installed package:
put the root on ``sys.path`` so ``import examples.support_desk`` works from any directory."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
