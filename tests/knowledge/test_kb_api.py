"""The knowledge base through the REST API (a real server): scopes, tenants, trust, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from files import encrypted_pdf

from bosun.config import load_settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.knowledge import KnowledgeBase
from bosun.knowledge.chunking import Chunker
from bosun.knowledge.embeddings import MiniLmEmbedder
from bosun.runtime import Runtime
from bosun.service.app import create_app
from servers import serve

ROLES = {"ed": ("acme", "kb_editor"), "vic": ("acme", "viewer"), "gus": ("globex", "kb_editor")}
ROLES |= {"ada": ("acme", "admin"), "mo": ("acme", "monitor")}


@dataclass
class Client:
    url: str
    keys: dict[str, str]
    store: Store

    def call(self, who: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def upload(self, who: str, name: str, data: bytes, **params: str) -> httpx.Response:
        return self.call(
            who, "POST", "/v1/kb/documents", params={"filename": name, **params}, content=data
        )

    def search(self, who: str, q: str) -> httpx.Response:
        return self.call(who, "GET", "/v1/kb/search", params={"q": q})


@pytest.fixture
def client(db_url: str, embedder: MiniLmEmbedder, chunker: Chunker) -> Iterator[Client]:
    store = Store.open(db_url)
    api_keys = ApiKeys(store, roles=Roles.builtin())
    keys = {
        who: api_keys.create(who, tenant=tenant, roles=[role]).key
        for who, (tenant, role) in ROLES.items()
    }
    gateway = Gateway(runtime=Runtime(store=store, settings=load_settings()), keys=api_keys)
    app = create_app(gateway, store=store)
    app.state.knowledge = KnowledgeBase(store, embedder=embedder, chunker=chunker)
    with serve(app) as url:
        yield Client(url, keys, store)
    store.close()


def test_an_editor_uploads_and_a_viewer_of_the_tenant_finds_it_with_a_citation(
    client: Client,
) -> None:
    text = b"# Returns\n\nReturns are accepted within thirty days of delivery."
    added = client.upload("ed", "returns.md", text)
    again = client.upload("ed", "returns.md", text)
    found = client.search("vic", "how long can I return an item")

    assert added.status_code == 201, added.text
    assert added.json()["status"] == "added"
    doc = added.json()["document"]
    assert (doc["tenant"], doc["title"], doc["trust"], doc["version"]) == (
        "acme",
        "Returns",
        "untrusted",
        1,
    )
    assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    assert found.status_code == 200
    body = found.json()
    hit = body["hits"][0]
    assert hit["citation"]["document_id"] == doc["id"]
    assert text.decode()[hit["citation"]["start"] : hit["citation"]["end"]] == hit["text"]
    assert hit["trust"] == "untrusted"
    assert set(hit["scores"]) == {
        "fused",
        "keyword",
        "keyword_rank",
        "vector",
        "vector_rank",
        "rerank",
    }
    assert body["corpus_version"] == 1


def test_another_tenant_neither_finds_nor_deletes_the_document(client: Client) -> None:
    doc = client.upload("ed", "secret.txt", b"Acme's discount code is ORCA-42.").json()["document"]

    found = client.search("gus", "discount code")
    listed = client.call("gus", "GET", "/v1/kb/documents")
    deleted = client.call("gus", "DELETE", f"/v1/kb/documents/{doc['id']}")

    assert found.status_code == 200 and found.json()["hits"] == []
    assert listed.json() == []
    assert deleted.status_code == 404
    assert client.call("ed", "DELETE", f"/v1/kb/documents/{doc['id']}").status_code == 204
    assert client.search("ed", "discount code").json()["hits"] == []


def test_scopes_decide_who_may_write_and_read(client: Client) -> None:
    by_viewer = client.upload("vic", "a.txt", b"text")
    by_monitor = client.search("mo", "text")

    assert by_viewer.status_code == 403
    assert "kb:write" in by_viewer.json()["detail"]
    assert by_monitor.status_code == 403
    assert "kb:read" in by_monitor.json()["detail"]


def test_only_an_admin_may_label_uploaded_text_trusted(client: Client) -> None:
    refused = client.upload("ed", "a.txt", b"We never refund.", trust="trusted")
    as_user = client.upload("ed", "b.txt", b"We always refund.", trust="user")
    by_admin = client.upload("ada", "c.txt", b"Refunds in five days.", trust="trusted")

    assert refused.status_code == 403
    assert as_user.json()["document"]["trust"] == "user"
    assert by_admin.json()["document"]["trust"] == "trusted"


def test_a_bad_file_is_a_problem_with_its_reason(client: Client) -> None:
    locked = client.upload("ed", "locked.pdf", encrypted_pdf("x"))
    binary = client.upload("ed", "blob.bin", b"\0\1\2\3")
    empty = client.upload("ed", "empty.txt", b"")

    assert locked.status_code == 400
    assert locked.headers["content-type"] == "application/problem+json"
    assert locked.json()["detail"] == (
        "locked.pdf is an encrypted PDF that needs a password: decrypt it first"
    )
    assert binary.status_code == 415
    assert empty.status_code == 400
    assert client.call("ed", "GET", "/v1/kb/documents").json() == []
