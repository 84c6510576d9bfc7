"""``bosun kb ...``: the knowledge base from a terminal (add files, list, search, remove,
and what changed since a corpus version).

Without ``--tenant`` documents go to the global corpus, which every tenant reads; with it,
to that tenant's corpus only. `bosun kb add` reports each file on its own line and exits 1
when any failed (the others are ingested all the same).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bosun.cli.options import DbOption, open_store
from bosun.cli.render import age, error, shorten, table
from bosun.config import load_settings
from bosun.data.documents import DocumentRows
from bosun.data.store import Store
from bosun.errors import BosunError
from bosun.knowledge.base import KnowledgeBase
from bosun.knowledge.search import Mode
from bosun.trust import Trust

__all__ = ["kb_app"]

console = Console()
kb_app = typer.Typer(no_args_is_help=True, help="The knowledge base: documents and search.")

TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="The tenant's corpus (default: the global one)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _kb(store: Store) -> KnowledgeBase:
    return KnowledgeBase.from_settings(store, load_settings().knowledge)


@kb_app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files: txt, md, html, pdf, eml.")],
    tenant: TenantOption = None,
    trust: Annotated[
        Trust,
        typer.Option(help="The label the text keeps when retrieved (see docs/architecture.md)."),
    ] = Trust.UNTRUSTED,
    title: Annotated[str | None, typer.Option(help="Title (one file only).")] = None,
    db: DbOption = None,
) -> None:
    """Ingest files; the same file again is a no-op, a changed file replaces its old
    version."""
    if title is not None and len(paths) != 1:
        raise typer.BadParameter("--title names one file's title: give one file")
    store = open_store(db)
    try:
        results = _kb(store).add_files(paths, tenant=tenant, trust=trust, title=title)
    finally:
        store.close()
    failed = 0
    for path, result in zip(paths, results, strict=True):
        if result.document is None:
            failed += 1
            error(console, f"{path}: {result.error}")
            continue
        doc = result.document
        console.print(
            f"{escape(str(path))}: [green]{result.status}[/green] {doc.id} v{doc.version}, "
            f"{doc.chunks} chunk{'' if doc.chunks == 1 else 's'}, {doc.trust.value}",
            highlight=False,
            soft_wrap=True,  # one line per file, for a person and for grep
        )
        for note in result.notes:
            console.print(f"  note: {escape(note)}", highlight=False)
    if failed:
        raise typer.Exit(1)


@kb_app.command("list")
def list_documents(
    tenant: TenantOption = None, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """The documents a tenant reads (its own and the global ones), newest first."""
    store = open_store(db)
    try:
        docs = _kb(store).documents(tenant=tenant)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in docs], indent=2))
        return
    if not docs:
        console.print("No documents.")
        return
    grid = table("id", "title", "tenant", "v", "chunks", "trust", "updated")
    for doc in docs:
        grid.add_row(
            doc.id,
            escape(shorten(doc.title, 30)),
            escape(doc.tenant or "(global)"),
            str(doc.version),
            str(doc.chunks),
            doc.trust.value,
            age(doc.updated_at),
        )
    console.print(grid)


@kb_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    tenant: TenantOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The best chunks for a query, with citations and scores."""
    if mode not in ("hybrid", "keyword", "vector"):
        raise typer.BadParameter("--mode is hybrid, keyword or vector")
    chosen: Mode = mode  # type: ignore[assignment]
    store = open_store(db)
    try:
        result = _kb(store).search(query, tenant=tenant, limit=limit, mode=chosen)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(2) from exc
    finally:
        store.close()
    if as_json:
        body = {
            "query": result.query,
            "corpus_version": result.corpus_version,
            "hits": [asdict(h) for h in result.hits],
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    if not result.hits:
        console.print("No matches.")
    for n, hit in enumerate(result.hits, start=1):
        s = hit.scores
        scores = f"fused {s.fused:.4f}"
        scores += f", keyword #{s.keyword_rank}" if s.keyword_rank else ""
        scores += f", vector #{s.vector_rank} ({s.vector:.2f})" if s.vector is not None else ""
        console.print(
            f"[bold]{n}. {escape(hit.citation.label())}[/bold]  [dim]{hit.trust.value}; "
            f"{scores}[/dim]",
            highlight=False,
        )
        console.print(f"   {escape(shorten(hit.text, 300))}", highlight=False)
    console.print(
        f"[dim]corpus version {result.corpus_version}; embed {result.embed_ms:.1f} ms, "
        f"search {result.search_ms:.1f} ms[/dim]",
        highlight=False,
    )


@kb_app.command("remove")
def remove(
    document: Annotated[str, typer.Argument(help="The document id (see bosun kb list).")],
    tenant: TenantOption = None,
    db: DbOption = None,
) -> None:
    """Delete a document and its chunks."""
    store = open_store(db)
    try:
        removed = _kb(store).remove(document, tenant=tenant)
    finally:
        store.close()
    if not removed:
        where = f"tenant {tenant!r}" if tenant else "the global corpus"
        error(console, f"no document {document} in {where}")
        raise typer.Exit(1)
    console.print(f"removed {document}")


@kb_app.command("changes")
def changes(
    since: Annotated[
        int,
        typer.Option(
            "--since",
            min=0,
            help="A corpus version: a run's corpus_version, or one bosun kb search printed.",
        ),
    ],
    tenant: TenantOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Documents added, replaced or removed after a corpus version, oldest first: what
    changed in the knowledge base since an answer was drawn from it."""
    store = open_store(db)
    try:
        found = DocumentRows(store).changes(tenant=tenant or "", since=since)
    except BosunError as exc:
        error(console, str(exc))
        raise typer.Exit(2) from exc
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(asdict(found), indent=2))
        return
    if found.current == since:
        console.print(f"Nothing changed: {since} is the current corpus version.")
        return
    count = found.current - since
    console.print(
        f"corpus version {since} -> {found.current}: {count} change{'' if count == 1 else 's'}",
        highlight=False,
    )
    if found.changes:
        grid = table("change", "title", "v", "document", "tenant", "when")
        for c in found.changes:
            grid.add_row(
                c.change,
                escape(shorten(c.title, 30)),
                str(c.version),
                c.document_id,
                escape(c.tenant or "(global)"),
                age(c.at),
            )
        console.print(grid)
    if found.unrecorded:
        many = found.unrecorded != 1
        console.print(
            f"{found.unrecorded} earlier change{'s' if many else ''} "
            f"{'predate' if many else 'predates'} the change log (migration 0012): not listed.",
            highlight=False,
        )
