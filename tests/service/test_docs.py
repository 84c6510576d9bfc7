"""/docs and /redoc work without the internet: every script, stylesheet and icon they load is
served by bosun itself, and the schema they render is still there."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from api_harness import make_app

from bosun.config import ServiceSettings
from servers import serve

EXPECTED_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
    "icon": ("image/",),
}


class _Assets(HTMLParser):
    """The URLs a page loads: ``<script src>`` and ``<link href>`` (stylesheets, icons)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.found.append(("script", values["src"] or ""))
        if tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").lower()
            kind = "stylesheet" if "stylesheet" in rel else "icon" if "icon" in rel else rel
            self.found.append((kind, values["href"] or ""))
        if tag == "img" and values.get("src"):
            self.found.append(("icon", values["src"] or ""))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("docs") / "bosun.db"
    app, store, _ = make_app(f"sqlite:///{db}", ServiceSettings())
    with serve(app) as base:
        yield base
    store.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets(url: str, page: str) -> None:
    response = httpx.get(url + page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(response.text)
    kinds = {kind for kind, _ in parser.found}
    assert "script" in kinds, parser.found  # the page does load its viewer

    origin = urlsplit(url).netloc
    for kind, ref in parser.found:
        absolute = urljoin(url + page, ref)
        assert urlsplit(absolute).netloc == origin, f"{page} loads {ref} from elsewhere"
        asset = httpx.get(absolute)
        assert asset.status_code == 200, ref
        assert asset.headers["content-type"].startswith(EXPECTED_TYPES[kind]), (ref, kind)
        assert len(asset.content) > 1000, ref  # a real bundle, not an empty placeholder

    # The page script fetches the schema; nothing in the page names another host.
    for host in ("cdn.jsdelivr.net", "unpkg.com", "fonts.googleapis.com", "tiangolo.com"):
        assert host not in response.text


def test_the_schema_the_pages_render_is_served(url: str) -> None:
    schema = httpx.get(url + "/openapi.json").json()
    assert "/v1/runs" in schema["paths"]
    assert not any(path.startswith(("/docs", "/redoc", "/static")) for path in schema["paths"])


def test_swagger_ui_does_not_call_the_online_validator(url: str) -> None:
    # Swagger UI sends the schema to validator.swagger.io unless told not to.
    assert '"validatorUrl": null' in httpx.get(url + "/docs").text
