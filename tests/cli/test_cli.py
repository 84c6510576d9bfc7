"""The CLI end to end in a subprocess-free Typer runner, on the default SQLite store."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bosun.cli.main import app
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


def test_run_prints_the_text_as_it_comes_before_the_outcome(
    agent_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, agent_module, raising=False)  # a fresh scripted model
    streamed = runner.invoke(app, ["run", f"{agent_module}:agent", "say hi"])
    assert streamed.exit_code == 0, streamed.output
    assert streamed.output.startswith("HI\n"), streamed.output


def test_run_no_stream_prints_the_outcome_only(
    agent_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, agent_module, raising=False)  # a fresh scripted model
    quiet = runner.invoke(app, ["run", f"{agent_module}:agent", "say hi", "--no-stream"])
    assert quiet.exit_code == 0 and not quiet.output.startswith("HI"), quiet.output
    assert "HI" in quiet.output  # in the outcome


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


def test_audit_verify_reports_ok_then_the_broken_row(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = runner.invoke(app, ["demo", "--data", str(data)])
    assert demo.exit_code == 0, demo.output
    assert "audit chain: ok" in demo.output
    db = f"sqlite:///{data / 'bosun.db'}"
    ok = runner.invoke(app, ["audit", "verify", "--db", db])
    assert ok.exit_code == 0 and "audit chain ok" in ok.output
    conn = sqlite3.connect(data / "bosun.db")
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 3")
    conn.commit()
    conn.close()
    broken = runner.invoke(app, ["audit", "verify", "--db", db])
    assert broken.exit_code == 1
    assert "broken at row 3" in broken.output


def test_demo_summary(bosun_home: Path) -> None:
    result = runner.invoke(app, ["demo"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scripted policy" in out
    assert "support_desk@1.0.0: golden gate passed (53/53) -> production" in out
    assert "emails: 76" in out and "failed" not in out
    assert "replies sent: 0   refunds issued: 0" in out
    assert "awaiting approval" in out and "escalated to a person" in out
    for hostile in ("hostile-01", "hostile-03", "hostile-11"):
        assert hostile in out.split("injections caught")[1]
    assert "PII redacted before the model saw it" in out and "IBAN_CODE" in out
    # the questions answered from the help articles: confidence and citations, or a person
    knowledge = out.split("knowledge base: 30 help articles (en, es)")[1].split("PII")[0]
    assert "1.00 completed, cites Shipping of hardware security keys v1" in knowledge
    assert "q-es-03" in knowledge and "low confidence: to a person with" in knowledge
    assert "audit chain: ok" in out and "open a trace:\n  bosun trace " in out
    (data,) = [p for p in bosun_home.iterdir() if p.name.startswith("demo-")]
    again = runner.invoke(app, ["demo", "--data", str(data)])
    assert again.exit_code == 1 and "not empty" in again.output


def test_help_texts_have_no_line_breaks_mid_paragraph() -> None:
    # Typer's Rich help keeps a docstring's line breaks: each paragraph must be one line.
    groups = [app]
    while groups:
        group = groups.pop()
        groups.extend(g.typer_instance for g in group.registered_groups if g.typer_instance)
        for command in group.registered_commands:
            assert command.help, command.callback
            for paragraph in command.help.split("\n\n"):
                assert "\n" not in paragraph, command.help
    listing = runner.invoke(app, ["--help"], terminal_width=80).output
    assert "hand back what is in flight" in listing  # worker's help, once split in two


def test_serve_and_worker_help_show_their_defaults() -> None:
    """Options whose defaults come from settings say which setting and what it defaults to."""
    serve_help = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "service.host = 127.0.0.1" in serve_help
    assert "service.port = 8080" in serve_help
    assert "[default: embedded-worker]" in serve_help
    worker_help = runner.invoke(app, ["worker", "--help"], env={"COLUMNS": "200"}).output
    assert "service.concurrency = 16" in worker_help
