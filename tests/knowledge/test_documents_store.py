"""The documents repository on each backend: versions replace whole, failures leave nothing,
tenants never see each other's chunks, the corpus version moves with every change, and the
changes after a corpus version can be listed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bosun.data.documents import DocumentRows, NewChunk, NewDocument
from bosun.data.store import Store
from bosun.data.vectors import VectorIndex
from bosun.errors import StoreError, UserError

DIM = 8


def vector(seed: int) -> bytes:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return (v / np.linalg.norm(v)).tobytes()


def doc(source: str, text: str, *, tenant: str = "acme", embedder: str = "test:8") -> NewDocument:
    return NewDocument(
        tenant=tenant,
        source=source,
        title=source,
        media_type="text/plain",
        trust="untrusted",
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        chars=len(text),
        embedder=embedder,
        chunking="tokens=512,overlap=64",
    )


def chunks(text: str, seed: int = 0) -> list[NewChunk]:
    words = text.split(". ")
    out, pos = [], 0
    for i, part in enumerate(words):
        start = text.index(part, pos)
        out.append(
            NewChunk(
                seq=i,
                start_char=start,
                end_char=start + len(part),
                context="",
                text=part,
                embedding=vector(seed + i),
            )
        )
        pos = start + len(part)
    return out


@pytest.fixture
def rows(store: Store) -> DocumentRows:
    return DocumentRows(store)


def index(rows: DocumentRows, embedder: str = "test:8") -> VectorIndex:
    return rows.vector_index(embedder=embedder, dimensions=DIM)


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        tables = ["kb_documents", "kb_chunks"]
        return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in tables}


def test_put_adds_then_ignores_the_same_text_then_replaces_a_new_version(
    rows: DocumentRows, store: Store
) -> None:
    first = rows.put(
        doc("faq", "refunds take five days. shipping is free"),
        chunks("refunds take five days. shipping is free"),
        index=index(rows),
    )
    again = rows.put(doc("faq", "refunds take five days. shipping is free"), [], index=index(rows))
    text = "refunds take ten days. shipping costs five euros. returns within a month"
    second = rows.put(doc("faq", text), chunks(text, seed=10), index=index(rows))

    assert (first.status, again.status, second.status) == ("added", "unchanged", "updated")
    assert second.document.id == first.document.id
    assert (first.document.version, second.document.version) == (1, 2)
    assert counts(store) == {"kb_documents": 1, "kb_chunks": 3}
    assert rows.keyword("free", tenant="acme", k=10) == []  # the old version's words are gone
    (hit,) = rows.keyword("month", tenant="acme", k=10)
    assert rows.chunks([hit[0]], tenant="acme")[hit[0]].version == 2


def test_a_new_embedder_reindexes_without_a_new_version(rows: DocumentRows) -> None:
    text = "refunds take five days"
    rows.put(doc("faq", text), chunks(text), index=index(rows))
    other = doc("faq", text, embedder="other:8")

    outcome = rows.put(other, chunks(text, seed=5), index=index(rows, "other:8"))

    assert (outcome.status, outcome.document.version) == ("reindexed", 1)
    assert index(rows).search(np.frombuffer(vector(0), np.float32), tenants=["acme"], k=5) == []
    assert (
        len(
            index(rows, "other:8").search(
                np.frombuffer(vector(5), np.float32), tenants=["acme"], k=5
            )
        )
        == 1
    )


class Exploding:
    """A vector index that fails while the document's rows are being written."""

    kind = "exploding"

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        raise StoreError("the index refused the vectors")

    def remove(self, conn: Connection, chunk_ids: Sequence[int]) -> None:
        pass

    def search(self, query: object, *, tenants: Sequence[str], k: int) -> list[tuple[int, float]]:
        return []


def test_a_failure_mid_write_leaves_nothing_of_the_new_document(
    rows: DocumentRows, store: Store
) -> None:
    with pytest.raises(StoreError):
        rows.put(
            doc("faq", "refunds take five days"),
            chunks("refunds take five days"),
            index=Exploding(),
        )

    assert counts(store) == {"kb_documents": 0, "kb_chunks": 0}
    assert rows.keyword("refunds", tenant="acme", k=10) == []
    assert rows.corpus_version(tenant="acme") == 0


def test_a_failed_replacement_keeps_the_old_version_whole(rows: DocumentRows, store: Store) -> None:
    old = "refunds take five days. shipping is free"
    rows.put(doc("faq", old), chunks(old), index=index(rows))
    version = rows.corpus_version(tenant="acme")

    with pytest.raises(StoreError):
        rows.put(doc("faq", "all new text"), chunks("all new text"), index=Exploding())

    assert counts(store) == {"kb_documents": 1, "kb_chunks": 2}
    assert len(rows.keyword("free", tenant="acme", k=10)) == 1
    assert rows.find(tenant="acme", source="faq").version == 1  # type: ignore[union-attr]
    assert rows.corpus_version(tenant="acme") == version


def test_a_tenant_never_reads_another_tenants_chunks(rows: DocumentRows) -> None:
    for tenant, seed in (("acme", 0), ("globex", 100), ("", 200)):
        text = f"refund policy of {tenant or 'everyone'}"
        rows.put(doc("policy", text, tenant=tenant), chunks(text, seed), index=index(rows))
    globex_ids = [i for i, _ in rows.keyword("globex", tenant="globex", k=10)]

    acme_keyword = {
        rows.chunks([i], tenant="acme")[i].tenant
        for i, _ in rows.keyword("refund", tenant="acme", k=10)
    }
    probe = np.frombuffer(vector(100), np.float32)  # globex's own vector
    acme_vector = index(rows).search(probe, tenants=["acme", ""], k=10)

    assert acme_keyword == {"acme", ""}
    assert globex_ids and not set(globex_ids) & {i for i, _ in acme_vector}
    assert rows.chunks(globex_ids, tenant="acme") == {}  # read back through the filter too
    assert rows.chunks(globex_ids, tenant="globex") != {}
    assert {d.tenant for d in rows.documents(tenant="acme")} == {"acme", ""}
    assert {d.tenant for d in rows.documents(tenant="")} == {""}
    assert rows.get(rows.find(tenant="globex", source="policy").id, tenant="acme") is None  # type: ignore[union-attr]


def test_remove_takes_a_tenants_own_document_only(rows: DocumentRows, store: Store) -> None:
    text = "shared knowledge"
    global_doc = rows.put(doc("g", text, tenant=""), chunks(text), index=index(rows)).document
    acme_doc = rows.put(doc("a", text), chunks(text, 3), index=index(rows)).document

    assert not rows.remove(global_doc.id, tenant="acme")
    assert not rows.remove(acme_doc.id, tenant="globex")
    assert rows.remove(acme_doc.id, tenant="acme")
    assert not rows.remove(acme_doc.id, tenant="acme")
    assert counts(store) == {"kb_documents": 1, "kb_chunks": 1}
    assert [
        i
        for i, _ in index(rows).search(np.frombuffer(vector(3), np.float32), tenants=["acme"], k=5)
    ] == []


def test_the_corpus_version_moves_with_every_change_a_tenant_can_see(rows: DocumentRows) -> None:
    def versions() -> tuple[int, int, int]:
        return tuple(rows.corpus_version(tenant=t) for t in ("acme", "globex", ""))  # type: ignore[return-value]

    start = versions()
    rows.put(doc("a", "one"), chunks("one"), index=index(rows))
    after_acme = versions()
    rows.put(doc("a", "one"), chunks("one"), index=index(rows))  # unchanged
    after_noop = versions()
    rows.put(doc("g", "two", tenant=""), chunks("two"), index=index(rows))
    after_global = versions()

    assert start == (0, 0, 0)
    assert after_acme == (1, 0, 0)
    assert after_noop == after_acme
    assert after_global == (2, 1, 1)


def test_the_changes_after_a_corpus_version_are_listed_in_order(
    rows: DocumentRows, store: Store
) -> None:
    rows.put(
        doc("faq", "refunds take five days"), chunks("refunds take five days"), index=index(rows)
    )
    rows.put(doc("g", "shipping is free", tenant=""), chunks("shipping is free"), index=index(rows))
    answered = rows.corpus_version(tenant="acme")  # an answer drawn from here
    rows.put(
        doc("faq", "refunds take ten days"), chunks("refunds take ten days"), index=index(rows)
    )
    rows.put(doc("faq", "refunds take ten days"), [], index=index(rows))  # unchanged: no change
    rows.put(doc("x", "globex only", tenant="globex"), chunks("globex only"), index=index(rows))
    other = rows.put(
        doc("faq", "refunds take ten days", embedder="o:8"), [], index=index(rows, "o:8")
    )
    gone = rows.put(doc("g2", "old promo", tenant=""), chunks("old promo"), index=index(rows))
    assert rows.remove(gone.document.id, tenant="")

    found = rows.changes(tenant="acme", since=answered)

    assert (found.since, found.current, found.unrecorded) == (2, 6, 0)
    assert [(c.tenant, c.change, c.source, c.version) for c in found.changes] == [
        ("acme", "updated", "faq", 2),
        ("acme", "reindexed", "faq", 2),
        ("", "added", "g2", 1),
        ("", "removed", "g2", 1),
    ]  # globex's document is not acme's business
    assert found.changes[0].document_id == other.document.id
    assert rows.changes(tenant="acme", since=6).changes == []
    assert [c.source for c in rows.changes(tenant="globex", since=0).changes] == [
        "g",
        "x",
        "g2",
        "g2",
    ]
    with pytest.raises(UserError, match="ahead of the current one"):
        rows.changes(tenant="acme", since=7)

    # Changes made before the log existed are counted, not invented.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM kb_changes WHERE tenant = 'acme'")
    older = rows.changes(tenant="acme", since=0)
    assert [c.change for c in older.changes] == ["added", "added", "removed"]
    assert older.unrecorded == 3


def test_vectors_written_before_the_index_existed_are_backfilled(db_url: str, backend: str) -> None:
    """Chunks stored while the vector extension was unavailable (the scan) are in the index
    made later. On SQLite, where an engine without sqlite-vec loaded stands for a Python that
    cannot load it."""
    if backend != "sqlite":
        pytest.skip("SQLite only")
    plain = Store(sa.create_engine(db_url))
    plain.migrate()
    before = DocumentRows(plain)
    scan = before.vector_index(embedder="test:8", dimensions=DIM)
    before.put(doc("faq", "refunds take five days"), chunks("refunds take five days"), index=scan)
    plain.close()

    store = Store.open(db_url)
    after = DocumentRows(store)
    vec = after.vector_index(embedder="test:8", dimensions=DIM)
    hits = vec.search(np.frombuffer(vector(0), np.float32), tenants=["acme"], k=5)
    store.close()

    assert (scan.kind, vec.kind) == ("scan", "sqlite-vec")
    assert len(hits) == 1 and hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_the_vector_index_is_the_one_the_backend_offers(rows: DocumentRows, backend: str) -> None:
    expected = {"sqlite": "sqlite-vec", "postgresql": "scan", "pgvector": "pgvector"}[backend]

    assert index(rows).kind == expected
