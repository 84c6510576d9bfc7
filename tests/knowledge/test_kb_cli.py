"""``bosun kb`` end to end in the Typer runner, on the store `db_url` names."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bosun.cli.main import app

runner = CliRunner()


def test_add_list_search_remove(tmp_path: Path, db_url: str) -> None:
    good = tmp_path / "returns.md"
    good.write_text("# Returns\n\nReturns are accepted within thirty days.\n")
    bad = tmp_path / "blob.bin"
    bad.write_bytes(b"\0\1\2")
    db = ["--db", db_url]

    added = runner.invoke(app, ["kb", "add", str(good), str(bad), "--tenant", "acme", *db])
    again = runner.invoke(app, ["kb", "add", str(good), "--tenant", "acme", *db])
    listed = runner.invoke(app, ["kb", "list", "--tenant", "acme", "--json", *db])
    other = runner.invoke(app, ["kb", "list", "--tenant", "globex", "--json", *db])
    found = runner.invoke(
        app, ["kb", "search", "how long to return", "--tenant", "acme", "--json", *db]
    )

    assert added.exit_code == 1, added.output  # one file failed; the other went in
    assert "returns.md: added doc_" in added.output
    assert "blob.bin is a binary file" in added.output
    assert "unchanged" in again.output and again.exit_code == 0
    (doc,) = json.loads(listed.output)
    assert (doc["title"], doc["tenant"], doc["trust"]) == ("Returns", "acme", "untrusted")
    assert json.loads(other.output) == []
    hits = json.loads(found.output)["hits"]
    assert hits[0]["citation"]["document_id"] == doc["id"]
    assert hits[0]["trust"] == "untrusted"

    removed = runner.invoke(app, ["kb", "remove", doc["id"], "--tenant", "acme", *db])
    missing = runner.invoke(app, ["kb", "remove", doc["id"], "--tenant", "acme", *db])

    assert removed.exit_code == 0 and "removed" in removed.output
    assert missing.exit_code == 1


def test_title_needs_exactly_one_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kb", "add", "a.txt", "b.txt", "--title", "T"])

    assert result.exit_code == 2
    assert "--title names one file's title" in result.output


def test_changes_since_a_corpus_version(tmp_path: Path, db_url: str) -> None:
    returns = tmp_path / "returns.md"
    returns.write_text("# Returns\n\nReturns are accepted within thirty days.\n")
    promo = tmp_path / "promo.md"
    promo.write_text("# Spring promotion\n\nTwo months free on annual plans.\n")
    db = ["--db", db_url, "--tenant", "acme"]
    assert runner.invoke(app, ["kb", "add", str(returns), *db]).exit_code == 0
    searched = runner.invoke(app, ["kb", "search", "returns", "--json", *db])
    answered = json.loads(searched.output)["corpus_version"]  # what an answer records

    returns.write_text("# Returns\n\nReturns are accepted within fourteen days.\n")
    assert runner.invoke(app, ["kb", "add", str(returns), str(promo), *db]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["kb", "list", "--json", *db]).output)
    (promo_id,) = [d["id"] for d in listed if d["title"] == "Spring promotion"]
    assert runner.invoke(app, ["kb", "remove", promo_id, *db]).exit_code == 0

    shown = runner.invoke(app, ["kb", "changes", "--since", str(answered), *db])
    as_json = runner.invoke(app, ["kb", "changes", "--since", str(answered), "--json", *db])
    now = runner.invoke(app, ["kb", "changes", "--since", str(answered + 3), *db])
    ahead = runner.invoke(app, ["kb", "changes", "--since", str(answered + 4), *db])

    assert shown.exit_code == 0, shown.output
    assert f"corpus version {answered} -> {answered + 3}: 3 changes" in shown.output
    body = json.loads(as_json.output)
    assert [(c["change"], c["title"], c["version"]) for c in body["changes"]] == [
        ("updated", "Returns", 2),
        ("added", "Spring promotion", 1),
        ("removed", "Spring promotion", 1),
    ]
    assert body["unrecorded"] == 0
    assert "Nothing changed" in now.output and now.exit_code == 0
    assert ahead.exit_code == 2 and "ahead of the current one" in ahead.output
