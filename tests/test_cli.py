"""The CLI end to end in a subprocess-free Typer runner, on the default SQLite store."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bosun.cli import app
from bosun.config import load_settings
from bosun.data.store import Store

runner = CliRunner()


@pytest.fixture
def agent_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_agents.py").write_text(
        textwrap.dedent(
            '''
            import bosun
            from bosun.testing import ScriptedModel, call, reply

            @bosun.tool
            def shout(text: str) -> str:
                """Upper-case the text."""
                return text.upper()

            agent = bosun.Agent(
                name="shouter",
                tools=[shout],
                model=ScriptedModel([call("shout", {"text": "hi"}), reply("HI")]),
            )
            not_an_agent = 42
            '''
        )
    )
    monkeypatch.chdir(tmp_path)
    return "my_agents"


def test_run_prints_outcome_and_steps_then_runs_show_it(agent_module: str) -> None:
    result = runner.invoke(app, ["run", f"{agent_module}:agent", "say hi"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    assert "shout" in result.output
    assert "tool_result" in result.output
    listed = runner.invoke(app, ["runs", "list"])
    assert "shouter" in listed.output
    store = Store.open(load_settings().resolved_database_url)
    (run,) = store.list_runs()
    store.close()
    assert run.id in listed.output
    run_id = run.id
    shown = runner.invoke(app, ["runs", "show", run_id])
    assert shown.exit_code == 0, shown.output
    assert "HI" in shown.output


def test_run_rejects_bad_targets(agent_module: str) -> None:
    assert runner.invoke(app, ["run", "nomodule", "x"]).exit_code == 2
    assert (
        "not a bosun.Agent"
        in runner.invoke(app, ["run", f"{agent_module}:not_an_agent", "x"]).output
    )
    assert runner.invoke(app, ["run", "does_not_exist:agent", "x"]).exit_code == 2


def test_runs_show_unknown_id_is_a_clear_error() -> None:
    result = runner.invoke(app, ["runs", "show", "nope"])
    assert result.exit_code == 1
    assert "no run with id 'nope'" in result.output


def test_audit_verify_reports_ok_then_the_broken_row(bosun_home: Path) -> None:
    demo = runner.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    assert "audit chain: ok" in demo.output
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "audit chain ok" in ok.output
    db = sqlite3.connect(bosun_home / "bosun.db")
    db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 3")
    db.commit()
    db.close()
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "broken at row 3" in broken.output


def test_demo_summary(bosun_home: Path) -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scripted policy" in out
    assert "runs: 10" in out
    assert "waiting_approval: 2" in out
    assert "escalated: 1" in out
    assert "retries: 1" in out
