"""A run without the third-party datasets, PostgreSQL or Temporal skips what needs them and says
so in one line each; under CI it fails instead. Runs pytest on real tests of this suite, in a
subprocess, with the parts taken away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from third_party import ENV, missing

ROOT = Path(__file__).resolve().parents[1]
DATASET_TEST = "tests/gateway/test_injection.py::test_held_out_quality_gate"
PG_ONLY_TEST = (
    "tests/data/test_store.py::test_the_write_connection_recovers_after_the_server_drops_it"
)
BOTH_BACKENDS_TEST = "tests/data/test_store.py::test_open_migrates_to_head"
TEMPORAL_TEST = (
    "tests/temporal/test_temporal_failures.py::test_runs_resume_when_temporal_comes_back"
)
PLUGINS_OFF = [
    a for p in ("cacheprovider", "schemathesis", "hypothesispytest") for a in ("-p", f"no:{p}")
]
"""Plugins these tests do not use; schemathesis alone (it imports hypothesis) takes seconds."""


def _pytest(env: dict[str, str], *tests: str) -> subprocess.CompletedProcess[str]:
    taken = ("CI", "BOSUN_TEST_PG_URL", "BOSUN_TEST_TEMPORAL_ADDRESS")
    base = {k: v for k, v in os.environ.items() if k not in taken}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *PLUGINS_OFF, *tests],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_without_datasets_or_postgresql_the_run_passes_and_counts_the_skips(
    tmp_path: Path,
) -> None:
    absent = tmp_path / "no-data"
    run = _pytest({ENV: str(absent)}, DATASET_TEST, PG_ONLY_TEST, BOTH_BACKENDS_TEST)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert _lines(out, "datasets:") == [
        f"datasets: 1 test skipped: {ENV}={absent} not found (set {ENV} to the third-party data)"
    ]
    assert _lines(out, "postgresql:") == [
        "postgresql: 1 test skipped, 1 test ran on SQLite only: BOSUN_TEST_PG_URL not set "
        "(scripts/pg-test-cluster.sh starts one)"
    ]
    # The -ra lines point at the skipped tests and give each its reason.
    skipped = _lines(out, "SKIPPED")
    assert any(
        "tests/gateway/test_injection.py" in s and f"{ENV}={absent} not found" in s for s in skipped
    ), skipped
    assert any(
        "tests/data/test_store.py" in s
        and "BOSUN_TEST_PG_URL not set: PostgreSQL tests skipped (scripts/pg-test-cluster.sh "
        "starts one)"
        in s
        for s in skipped
    ), skipped
    assert "empty parameter set" not in out
    assert "1 passed, 2 skipped" in out


def test_under_ci_a_missing_dataset_fails_the_run(tmp_path: Path) -> None:
    absent = tmp_path / "no-data"
    # Never connected to: only the PostgreSQL check at start-up reads it.
    pg = "postgresql+psycopg://postgres@127.0.0.1:9/unused"
    run = _pytest({"CI": "true", ENV: str(absent), "BOSUN_TEST_PG_URL": pg}, DATASET_TEST)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "CI is set, so missing datasets fail the run" in out
    assert _lines(out, "datasets:") == [
        f"datasets: 1 test failed: {ENV}={absent} not found (set {ENV} to the third-party data)"
    ]
    assert "skipped" not in out.splitlines()[-1]


def test_under_ci_missing_postgresql_fails_the_run(tmp_path: Path) -> None:
    run = _pytest({"CI": "true", ENV: str(tmp_path)}, BOTH_BACKENDS_TEST)
    out = run.stdout + run.stderr
    assert run.returncode not in (0, 5), out
    assert "CI is set but BOSUN_TEST_PG_URL is not" in out
    assert "scripts/pg-test-cluster.sh start" in out


def test_without_temporal_its_tests_are_skipped_and_counted_and_fail_under_ci(
    tmp_path: Path,
) -> None:
    run = _pytest({ENV: str(tmp_path)}, TEMPORAL_TEST)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    reason = (
        "BOSUN_TEST_TEMPORAL_ADDRESS not set: Temporal tests skipped (scripts/temporal-dev.sh "
        "starts one)"
    )
    assert _lines(out, "temporal:") == [f"temporal: 1 test skipped: {reason}"]
    pg = "postgresql+psycopg://postgres@127.0.0.1:9/unused"  # only checked at start-up
    run = _pytest({"CI": "true", ENV: str(tmp_path), "BOSUN_TEST_PG_URL": pg}, TEMPORAL_TEST)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "CI is set, so missing temporal fail the run" in out


def test_a_data_dir_without_a_needed_part_names_the_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "injection").mkdir()
    monkeypatch.setenv(ENV, str(tmp_path))
    assert missing() is None
    assert missing("injection") is None
    assert missing("injection", "agents/agentdojo") == (
        f"{ENV}={tmp_path} has no agents/agentdojo (set {ENV} to the third-party data)"
    )
    monkeypatch.setenv(ENV, str(tmp_path / "elsewhere"))
    assert missing("injection") == (
        f"{ENV}={tmp_path / 'elsewhere'} not found (set {ENV} to the third-party data)"
    )
