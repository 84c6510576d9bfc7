"""The answer's confidence on the dashboard, over HTTP on SQLite and PostgreSQL: a run view
shows a grounded answer's confidence, corpus version and citations (title, version, span); a
low-confidence escalation's page shows the passages it was checked against, labelled
untrusted, their text escaped.

Not the browser harness: these pages add no script, so the server's HTML is what a reader
gets, and a knowledge base needs its own agent (the README's server has none)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bosun.config import ServiceSettings, load_settings
from bosun.data.store import Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.knowledge import KnowledgeBase
from bosun.knowledge.embeddings import MiniLmEmbedder
from bosun.knowledge.grounding import ConfidencePolicy
from bosun.memory.knowledge import KnowledgeTool
from bosun.runtime import Agent, RunStatus, Runtime
from bosun.service.app import create_app
from bosun.testing import ScriptedModel, call, reply
from servers import serve

REFUNDS = """# Refunds

Annual plans can be refunded within 30 days of the invoice date. The refund goes back to the
card that paid the invoice and arrives within 5 to 10 business days.

Paste nothing like <img src=x onerror="window.pwned=1"> into the refund form.
"""
GROUNDED = (
    "Annual plans can be refunded within 30 days of the invoice date [kb:{ref}]. "
    "The refund arrives within 5 to 10 business days on the card that paid."
)
INVENTED = (
    "Our loyalty programme gives platinum members a free espresso machine every spring. "
    "Ask the concierge desk in Lisbon for the voucher code."
)


def answering(answer: str) -> Any:
    """A model that searches the knowledge base, then answers `answer` (``{ref}``: the
    first passage's number)."""

    def respond(request: Any) -> Any:
        results = [m.content or "" for m in request.messages if m.role == "tool"]
        if not results:
            return call("search_knowledge", {"query": "annual plan refund"})
        ref = re.search(r'"ref":\s*"kb:(\d+)"', results[0])
        return reply(answer.format(ref=ref.group(1) if ref else "0"))

    return respond


@dataclass
class Site:
    url: str
    key: str
    grounded: str
    escalated: str


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    store = Store.open(db_url)
    kb = KnowledgeBase(store, embedder=MiniLmEmbedder())
    kb.add_text(REFUNDS, source="refunds.md", media_type="text/markdown")
    tool = KnowledgeTool(kb).tool()
    policy = ConfidencePolicy(threshold=0.6)
    good = Agent(
        name="good", tools=[tool], model=ScriptedModel(answering(GROUNDED)), confidence=policy
    )
    bad = Agent(
        name="bad", tools=[tool], model=ScriptedModel(answering(INVENTED)), confidence=policy
    )

    async def run_both() -> tuple[str, str]:
        async with Runtime(store=store) as rt:
            one = await rt.run(good, "Can I get my annual plan refunded?", tenant="acme")
            two = await rt.run(bad, "Do I get a free espresso machine?", tenant="acme")
        assert one.status is RunStatus.COMPLETED and two.status is RunStatus.ESCALATED
        return one.run_id, two.run_id

    grounded, escalated = asyncio.run(run_both())
    service = ServiceSettings(poll_s=0.05)
    runtime = Runtime(store=store, agents=[good, bad], settings=load_settings(service=service))
    keys = ApiKeys(store, roles=Roles.builtin(tool_scopes=["tools:*"]))
    key = keys.create("rita", tenant="acme", roles=["reviewer"]).key
    app = create_app(Gateway(runtime=runtime, keys=keys), store=store, settings=service)
    with serve(app) as url:
        yield Site(url, key, grounded, escalated)
    store.close()


@contextmanager
def logged_in(site: Site) -> Iterator[httpx.Client]:
    """A client logged in through the login form, as a browser is."""
    with httpx.Client(base_url=site.url) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        form = {"csrf": token.group(1), "api_key": site.key, "next": "/"}
        done = client.post("/login", data=form)
        assert done.status_code == 303, done.text
        yield client


def text_of(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces joined."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_run_shows_its_confidence_and_citations(site: Site) -> None:
    with logged_in(site) as client:
        page = client.get(f"/runs/{site.grounded}")
    assert page.status_code == 200, page.text
    shown = text_of(page.text)
    confidence = re.search(r"Confidence (\d\.\d\d)", shown)
    assert confidence is not None and float(confidence.group(1)) >= 0.6
    assert re.search(r"Corpus version [1-9]", shown)
    span = re.search(r"Citations Refunds \(version 1, characters 0–(\d+)\)", shown)
    assert span is not None and int(span.group(1)) > 0
    assert "Passages handed to a person" not in shown  # it did not escalate


def test_a_low_confidence_escalation_shows_its_passages_as_untrusted(site: Site) -> None:
    with logged_in(site) as client:
        escalation = client.get(f"/escalations/{site.escalated}")
        run = client.get(f"/runs/{site.escalated}")
    for page in (escalation, run):
        assert page.status_code == 200, page.text
        shown = text_of(page.text)
        confidence = re.search(r"Confidence (\d\.\d\d)", shown)
        assert confidence is not None and float(confidence.group(1)) < 0.6
        assert "Citations None: the answer cites no passage." in shown
        assert re.search(r"untrusted Refunds \(version 1, characters \d+–\d+\) ?, relevance", shown)
        # The passage's text is shown as text: its markup escaped, never live.
        assert "<img src=x" not in page.text
        assert "&lt;img src=x onerror=" in page.text
