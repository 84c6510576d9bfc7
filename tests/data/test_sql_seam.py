"""SQL lives in bosun.data: no module elsewhere imports a database library or the tables.

The import-linter contract ``sql-in-data`` says the same for the packages it names; this
reads every file under src/bosun, so an import inside a function, a new package or a new
top-level module cannot slip past it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
BOSUN = SRC / "bosun"
DATA = BOSUN / "data"
FORBIDDEN = ("sqlalchemy", "alembic", "psycopg", "bosun.data.schema")


def _module_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, module: str, *, package: bool) -> set[str]:
    """Every module `source` imports, wherever the import statement is."""
    found: set[str] = set()
    here = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _forbidden(names: set[str]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}


def test_no_module_outside_data_imports_sql() -> None:
    offenders = {}
    for path in sorted(BOSUN.rglob("*.py")):
        if path.is_relative_to(DATA):
            continue
        module = _module_of(path)
        names = _imports(path.read_text(), module, package=path.name == "__init__.py")
        bad = _forbidden(names)
        if bad:
            offenders[str(path.relative_to(SRC))] = sorted(bad)
    assert offenders == {}, "move these queries into a bosun.data repository"


def test_the_check_sees_imports_wherever_they_are() -> None:
    """The walk finds imports inside functions, aliased, from-imports and relative ones:
    the test above is not passing vacuously."""
    source = (
        "def f():\n    import sqlalchemy as sa\n"
        "from sqlalchemy.dialects import postgresql\n"
        "from bosun.data import schema\n"
        "from ..data.schema import runs\n"
        "import psycopg\n"
    )
    names = _imports(source, "bosun.observe.cost", package=False)
    assert _forbidden(names) == {
        "sqlalchemy",
        "sqlalchemy.dialects",
        "sqlalchemy.dialects.postgresql",
        "bosun.data.schema",
        "bosun.data.schema.runs",
        "psycopg",
    }
    allowed = _imports("from bosun.data.store import Store\n", "bosun.cli.x", package=False)
    assert _forbidden(allowed) == set()


def test_the_contract_names_every_package_beside_data() -> None:
    """lint-imports checks only the packages the contract lists: a new one must be added."""
    config = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    contract = next(
        c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "sql-in-data"
    )
    top_level = {
        f"bosun.{p.stem if p.is_file() else p.name}"
        for p in BOSUN.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert set(contract["source_modules"]) == top_level - {"bosun.data"}
    assert set(contract["forbidden_modules"]) == set(FORBIDDEN)
