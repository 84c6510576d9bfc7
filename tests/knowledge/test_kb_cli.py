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
