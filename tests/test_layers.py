"""The allowed-import table holds: planes point one way (pyproject's import-linter contracts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_RUN = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, str(config), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_every_contract_is_kept() -> None:
    out = _lint(ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_the_checker_sees_real_imports(tmp_path: Path) -> None:
    """The same checker with two planes swapped reports the breach, naming the import:
    the contracts above are not kept vacuously."""
    config = tmp_path / "swapped.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "bosun"\n\n'
        '[[tool.importlinter.contracts]]\nid = "swapped"\nname = "runtime above service"\n'
        'type = "layers"\nlayers = ["bosun.runtime", "bosun.service"]\n'
    )
    out = _lint(config)
    assert out.returncode != 0
    assert "BROKEN" in out.stdout
    assert "bosun.service.worker -> bosun.runtime" in out.stdout
