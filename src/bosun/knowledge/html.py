"""HTML to the text a reader would see, for inbound email (`bosun.gateway.email`) and for
HTML documents in the knowledge base.

The renderer keeps the text a person would see and drops what they would not (scripts,
styles, elements hidden with ``display:none``/``hidden``, zero-size text), and reports that
it dropped something, since hiding text from the reader is an injection technique. It lives
here, below both the gateway and the runtime, so that both read HTML the same way.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0", re.I
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
)
_VOID_TAGS = frozenset({"br", "img", "hr", "meta", "link", "input", "wbr", "col", "source"})
_HEADINGS = {f"h{n}": "#" * n + " " for n in range(1, 7)}


class _Text(HTMLParser):
    def __init__(self, *, headings: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = False
        self._headings = headings
        # Open elements: (tag, "skip" for non-prose like <style>, "hide" for prose hidden
        # from the reader, "" otherwise).
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.out.append("\n")
        if tag in _VOID_TAGS:
            return
        values = dict(attrs)
        kind = ""
        if tag in _SKIP_TAGS:
            kind = "skip"
        elif (
            "hidden" in values
            or values.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(values.get("style") or "")
        ):
            kind = "hide"
        self._open.append((tag, kind))
        if self._headings and tag in _HEADINGS and not any(k for _, k in self._open):
            self.out.append(_HEADINGS[tag])  # a Markdown heading: the chunker keeps it

    def handle_endtag(self, tag: str) -> None:
        # Close back to the matching element; a stray end tag closes nothing.
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        kinds = {kind for _, kind in self._open}
        if "hide" in kinds and "skip" not in kinds and data.strip():
            self.hidden = True
        if kinds - {""}:
            return
        self.out.append(data)


def html_to_text(html: str, *, headings: bool = False) -> tuple[str, bool]:
    """The text a reader would see, and whether the HTML hid any text from them. With
    `headings`, ``<h1>``..``<h6>`` start lines with Markdown's ``#``..``######``."""
    parser = _Text(headings=headings)
    parser.feed(html)
    parser.close()
    text = "".join(parser.out)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n\s*(\n\s*)+", "\n\n", text)
    text = re.sub(r"\n (?=\S)", "\n", text) if headings else text
    return text.strip(), parser.hidden
