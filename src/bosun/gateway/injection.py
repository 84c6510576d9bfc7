"""Prompt-injection screening: a score, a verdict and the reasons for one piece of text.

Screening is a *signal* for policy (block, flag, escalate, tighten taint), never the only
defence: taint gating and scopes hold even when a screen misses an attack.

How a text is scored:

1. **Normalise.** Invisible characters (zero-width, bidi controls, Unicode tag characters that
   smuggle ASCII) are counted and removed; NFKC folds full-width and "mathematical" letters;
   casefold; runs of whitespace collapse.
2. **Windows.** The text is cut into segments (sentences, lines, ``|`` fields) and every run of
   consecutive segments up to `WINDOW_WORDS` words is scored by a linear model: learned weights
   for word unigrams, bigrams and five-letter prefixes (the prefixes carry German compounds and
   inflections), normalised by the square root of the feature count, plus hand-made structural
   rules (`RULES`). The text's score is the best window's, so a short attack planted in a long
   benign email is not diluted.
3. **Hidden and encoded content.** CSS-hidden HTML, comments, tag characters, base64 and hex
   blobs that decode to text, and rot13 text that reads as an override are scored as well, with
   a boost: instructions nobody was meant to see are worse than visible ones.

The weights and the default thresholds come from ``scripts/train_injection.py``, which fits on
the shared injection data and chooses the thresholds on out-of-fold scores (see its docstring).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import math
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from bosun.errors import UserError

__all__ = ["InjectionScreen", "Screening"]

MODEL_PATH = Path(__file__).with_name("_injection_model.json")
"""The shipped weights and thresholds, written by ``scripts/train_injection.py``."""

WINDOW_WORDS = 40
"""A window grows segment by segment until it holds this many words."""

MIN_NORM = 16
"""Windows with fewer features are scaled as if they had this many: three words are weak
evidence either way."""

_MAX_SEGMENT_WORDS = 32
_PIECE_WORDS = 24
# Decoding every long token of a huge input would let one request buy a lot of CPU.
_MAX_BLOBS = 16
_HIDDEN_BOOST = 1.5
_ENCODED_BOOST = 1.0
_TAG_CHARS_LOGIT = 3.0

Verdict = Literal["clean", "suspicious", "injection"]


@dataclass(frozen=True)
class Screening:
    """What a screen found in one text."""

    score: float
    """Estimated chance (0..1) that the text carries an injection."""
    verdict: Verdict
    """``score`` against the screen's thresholds."""
    signals: tuple[str, ...]
    """Human-readable reasons, e.g. ``"hidden text: zero-width characters"``."""


@dataclass(frozen=True)
class Rule:
    """A hand-made structural feature; its weight is learned, with `prior` as a floor."""

    name: str
    """The model's feature name (``R:<name>``)."""
    reason: str
    """What a match means, for `Screening.signals`."""
    pattern: re.Pattern[str]
    """Matched against the normalised (NFKC, casefolded) text."""
    prior: float = 0.0
    """The least weight the rule counts for: patterns the training data barely shows (chat
    template markers, exfiltrating image links) still count."""


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


_W = r"(?:\w+\W+){0,5}?"  # a few words in between
RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        "instruction aimed at the assistant",
        _rx(
            r"\b(?:ignore|disregard|forget|overlook|drop|abandon|bypass|override|neglect|"
            r"set aside)\b\W+" + _W + r"(?:instructions?|prompts?|rules|directives?|directions|"
            r"guidelines|commands|orders|tasks?|assignments|context|constraints|restrictions|"
            r"programming|guardrails|everything)\b"
            r"|\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*|verwirf)\b\W+" + _W + r"(?:"
            r"anweisung\w*|instruktion\w*|befehl\w*|regeln|aufgaben?|aufträge|vorgaben|alles)"
            r"|\babweichend (?:zu|von) (?:den )?(?:vorherigen|bisherigen)"
            r"|\b(?:oubliez|ignorez|olvida|olvide|olvidar|ignora|dimentica)\b\W+" + _W + r"(?:"
            r"instructions|instrucciones|istruzioni|todo|tout)"
            r"|\b(?:забуд\w*|игнорир\w*)\W+" + _W + r"(?:инструкц\w*|правил\w*|вс[её])"
            r"|\b(?:ignore|disregard|disregarding|forget)\b\W+(?:\w+\W+){0,2}?(?:above|the "
            r"(?:provided |given )?(?:documents|articles))\b"
        ),
        prior=2.0,
    ),
    Rule(
        "new_task",
        "new instructions announced",
        _rx(
            r"\b(?:new|updated|additional|revised|real|actual|secret|hidden) (?:important )?"
            r"(?:instructions?|tasks?|directives?|orders)\b|\byour (?:new |real |actual )?task "
            r"(?:is|now)\b|\bfrom now on\b|\bnow (?:focus|concentrate) on\b"
            r"|\bneuen? (?:anweisungen|aufgabe)|\bnun folgen\b|\bvon nun an\b|\bab jetzt\b"
        ),
    ),
    Rule(
        "role_marker",
        "chat-template or role marker",
        _rx(
            r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|^#{2,} ?(?:instruction|system|response)"
            r"|^(?:system|assistant|human)\s*:|</?(?:system|instructions?)>"
            r"|</(?:email|data|document|context)>|\bend of (?:email|document|context|input)\b"
        ),
        prior=2.0,
    ),
    Rule(
        "persona",
        "role-play wrapper",
        _rx(
            r"\byou are now\b|\byou(?: a|')re (?:no longer|not) (?:an? )?(?:ai|assistant|"
            r"chatbot|language model)|\b(?:act|behave) as (?:an?|my|the) \w+|\bpretend (?:to be|"
            r"you|that you)|\brole-?play|\bstay in (?:character|role|your role)|\bimagine you"
            r"(?: are|'re)\b|\bdu bist (?:jetzt|nun)\b|\b(?:jetzt|nun) bist du\b|\bstell dir "
            r"vor,? du bist\b|\btu so,? als\b|\b(?:sie|du) als \w+ fungier|\bin (?:deiner|ihrer)"
            r" rolle\b"
        ),
    ),
    Rule(
        "jailbreak",
        "jailbreak wrapper",
        _rx(
            r"\bdo anything now\b|\bdan (?:mode|ai)\b|\byou are (?:now )?dan\b|\bdeveloper mode"
            r"|\bdev mode\b|\bjailbr[eo]a?k|\bno[- ]limits? ai\b|\bwithout (?:any )?(?:"
            r"restrictions|limitations|filters?|censorship|guidelines)\b|\bunrestricted\b"
            r"|\bgod mode\b|\b(?:admin(?:istrator)?|root) (?:mode|privileges|access)\b"
            r"|\b(?:debug|test|maintenance) mode\b|\bexperimental (?:features|procedure|mode)\b"
            r"|\bunlock (?:hidden|all|your)\b|\bentwicklermodus\b|\bohne (?:einschränkungen|"
            r"beschränkungen)"
        ),
        prior=1.5,
    ),
    Rule(
        "to_model",
        "text addressed to the model",
        _rx(
            r"\b(?:in|to|into|at the (?:end|beginning|start) of) your (?:response|reply|answer|"
            r"output|summary)s?\b|\b(?:your|the) system prompt\b|\bprompt[- _]?texte?\b"
            r"|\b(?:chatgpt|gpt-?\d\w*|llm|language model|ai model|ai assistant|as an ai)\b"
            r"|\b(?:hey|dear|note to the) (?:ai|assistant|gpt|bot|model)\b|\bin (?:deiner|ihrer)"
            r" antwort\b|\bdeine (?:anweisungen|prompts?)\b"
        ),
    ),
    Rule(
        "prompt_leak",
        "asks for the system prompt",
        _rx(
            r"\b(?:show|reveal|print|display|output|repeat|tell me|give me|what (?:is|are|was))"
            r"\b\W+" + _W + r"(?:system prompt|(?:your|the) (?:initial |original |hidden )?"
            r"(?:instructions|prompt)\b|prompt[- ]?texte?|(?:written|said) (?:above|at the "
            r"beginning))|\b(?:zeige?|verrate|gib)\b\W+" + _W + r"(?:prompt|anweisungen)"
        ),
        prior=1.5,
    ),
    Rule(
        "exfiltration",
        "request to send data out",
        _rx(
            r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|bcc)\b[^.!?\n]{0,80}?"
            r"(?:[\w.+-]+@[\w-]+\.[a-z]{2,}|https?://)|\b(?:password|api[ _-]?key|token|"
            r"credentials)\b[^.!?\n]{0,60}\b(?:send|forward|post|upload|include)\b"
        ),
    ),
    Rule(
        "image_exfil",
        "markdown image link that carries data out",
        _rx(r"!\[[^\]\n]*\]\(\s*(?:https?:)?//[^)\s]*[?&][^)\s]*="),
        prior=3.0,
    ),
    Rule(
        "script",
        "script or HTML event handler",
        _rx(r"<script\b|\bjavascript:|\bon(?:error|load|click|mouseover)\s*=|<iframe\b"),
        prior=2.0,
    ),
    Rule(
        "coercion",
        "pressure to comply",
        _rx(
            r"\bit(?: i|')s (?:crucial|very important|imperative|essential|vital|critical) "
            r"(?:that )?you\b|\byou (?:must|have to|need to) (?:always |now |also )?(?:include|"
            r"add|insert|say|respond|reply|answer|output|print|ignore|obey|comply)\b|\bdo not "
            r"(?:tell|mention|reveal|inform) (?:the )?(?:user|anyone)\b|\bno matter what\b"
            r"|\bregardless of (?:any |the |your )?(?:previous|prior|instructions|rules)"
        ),
    ),
    Rule(
        "output_control",
        "dictates the output",
        _rx(
            r"\b(?:only|just) (?:say|output|print|write|reply|respond)\b|\b(?:say|output|print|"
            r"respond with|reply with|answer with)\s*[:\"'“]|\brepeat after me\b|\bnothing else"
            r"\b|\b(?:sage|schreibe?|antworte) (?:nur|einfach|mit)\b"
        ),
    ),
    Rule(
        "attention",
        "attention-grabbing wrapper",
        _rx(
            r"\*{2,}[^*\n]{2,60}\*{2,}|^(?:attention|achtung|stop|stopp|urgent|important|"
            r"emergency|priority task)\b\W|\bsystem (?:message|notice|override|alert)\b"
        ),
    ),
)


# A rule's regex runs only on segments holding one of its words, or on the whole text when
# one of its marks occurs: scanning 10 KB with a dozen alternations costs ~4 ms, checking a set
# of tokens a few microseconds.
_GATE_WORDS = {
    "override": "ignore ignoring disregard disregarding forget overlook drop abandon bypass "
    "override neglect set ignoriere ignorieren ignoriert ignorier vergiss vergessen missachte "
    "missachten verwirf abweichend oubliez ignorez olvida olvide olvidar ignora dimentica "
    "забудь забудьте забыть игнорируй игнорируйте игнорировать",
    "new_task": "instruction instructions task tasks directive directives orders now "
    "anweisungen aufgabe folgen",
    "role_marker": "end system assistant human",
    "persona": "now longer act behave pretend roleplay role play stay imagine bist tu fungieren "
    "fungiere deiner ihrer",
    "jailbreak": "anything dan developer dev jailbreak jailbroken limit limits without "
    "unrestricted god admin administrator root debug test maintenance experimental unlock "
    "entwicklermodus ohne",
    "to_model": "response reply answer output summary responses replies answers outputs "
    "summaries system prompt prompt_text prompttext prompttexte chatgpt llm language ai model "
    "assistant bot antwort anweisungen prompts",
    "prompt_leak": "prompt instructions above written said beginning anweisungen",
    "exfiltration": "send forward post upload transmit leak exfiltrate bcc password api apikey "
    "api_key token credentials",
    "coercion": "crucial imperative essential vital critical must need tell mention matter "
    "regardless",
    "output_control": "say output print respond repeat nothing sage schreib schreibe antworte",
    "attention": "attention achtung stop stopp urgent important emergency priority system",
}
_GATE_MARKS = {
    "role_marker": ("<|", "[inst", "<<sys", "##", "</"),
    "to_model": ("gpt",),
    "image_exfil": ("![",),
    "script": ("<script", "javascript:", "onerror", "onload", "onclick", "onmouseover", "<iframe"),
    "attention": ("**",),
}
_GATES = {
    r.name: (frozenset(_GATE_WORDS.get(r.name, "").split()), _GATE_MARKS.get(r.name, ()))
    for r in RULES
}

_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]+")
_SPACES = re.compile(r"[^\S\n]+")
_ODD_SPACES = ("  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028")
_NEWLINES = re.compile(r" ?\n[\s]*")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n|\|")
_TOKEN = re.compile(r"\w+")
_HIDDEN_HTML = re.compile(
    r"<(\w+)[^>]*?style\s*=\s*[\"'][^\"']*?(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])|color\s*:\s*(?:#fff"
    r"(?:fff)?|white|transparent)\b)[^>]*>(.{0,4000}?)</\1\s*>"
    r"|<!--(.{0,4000}?)-->",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]{0,200}>")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){16,}")
_ROT13_CUES = ("ignore", "instruction", "disregard", "forget", "prompt", "you are now", "jailbreak")
_STRONG = tuple(r for r in RULES if r.name in {"override", "jailbreak", "prompt_leak", "persona"})


def normalize(text: str) -> tuple[str, list[str], list[str]]:
    """The text the model reads, the hidden-text signals, and any smuggled ASCII."""
    signals: list[str] = []
    smuggled: list[str] = []
    if _TAG_CHARS.search(text):
        signals.append("hidden text: Unicode tag characters")
        smuggled = [
            "".join(chr(ord(c) - 0xE0000) for c in m.group(0)) for m in _TAG_CHARS.finditer(text)
        ]
        text = _TAG_CHARS.sub("", text)
    if _INVISIBLE.search(text):
        signals.append("hidden text: zero-width characters")
        text = _INVISIBLE.sub("", text)
    if _BIDI.search(text):
        signals.append("hidden text: bidirectional control characters")
        text = _BIDI.sub("", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    # The substitutions scan every character; most texts need neither.
    if any(ws in text for ws in _ODD_SPACES):
        text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES.sub("\n", text)
    text = text.strip()
    return text, signals, smuggled


def segments(norm: str) -> list[tuple[int, int, list[str]]]:
    """Cut normalised text into (start, end, tokens); long segments into pieces."""
    out: list[tuple[int, int, list[str]]] = []
    start = 0
    bounds = [m.start() for m in _SPLIT.finditer(norm)]
    bounds.append(len(norm))
    for end in bounds:
        if end > start:
            tokens = _TOKEN.findall(norm, start, end)
            if len(tokens) <= _MAX_SEGMENT_WORDS:
                if tokens:
                    out.append((start, end, tokens))
            else:
                found = list(_TOKEN.finditer(norm, start, end))
                for i in range(0, len(found), _PIECE_WORDS):
                    piece = found[i : i + _PIECE_WORDS]
                    stop = found[i + _PIECE_WORDS].start() if i + _PIECE_WORDS < len(found) else end
                    out.append((piece[0].start(), stop, [m.group(0) for m in piece]))
        start = end + 1
    return out


def token_features(tokens: list[str]) -> list[str]:
    """Unigrams, bigrams (``"a b"``) and five-letter prefixes of long words (``"anwei*"``)."""
    feats = list(tokens)
    feats.extend([t[:5] + "*" for t in tokens if len(t) > 6])
    feats.extend([a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)])
    return feats


def rule_hits(norm: str, segs: list[tuple[int, int, list[str]]]) -> list[list[tuple[str, str]]]:
    """For each segment, the rules matching in it, with the matched text."""
    hits: list[list[tuple[str, str]]] = [[] for _ in segs]
    present: set[str] = set()
    for _, _, tokens in segs:
        present.update(tokens)
    starts = [s for s, _, _ in segs]
    for rule in RULES:
        words, marks = _GATES[rule.name]
        if any(mark in norm for mark in marks):
            for m in rule.pattern.finditer(norm):
                k = bisect_right(starts, m.start()) - 1
                if k >= 0:
                    hits[k].append((rule.name, m.group(0)))
        elif not words.isdisjoint(present):
            for k, (start, end, tokens) in enumerate(segs):
                if not words.isdisjoint(tokens):
                    hits[k].extend(
                        (rule.name, m.group(0)) for m in rule.pattern.finditer(norm, start, end)
                    )
    return hits


@dataclass(frozen=True)
class _Model:
    bias: float
    weights: dict[str, float]
    rules: dict[str, float]
    suspicious_at: float
    injection_at: float


@lru_cache(maxsize=4)
def _load(path: Path) -> _Model:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        learned: dict[str, float] = data["rules"]
        return _Model(
            bias=float(data["bias"]),
            weights={k: float(v) for k, v in data["weights"].items()},
            rules={r.name: max(float(learned.get(r.name, 0.0)), r.prior) for r in RULES},
            suspicious_at=float(data["thresholds"]["suspicious_at"]),
            injection_at=float(data["thresholds"]["injection_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the injection model {path}: {exc}") from exc


@dataclass(frozen=True)
class _Best:
    logit: float
    snippet: str
    hits: tuple[tuple[str, str], ...]


class InjectionScreen:
    """Scores text for prompt injection. Thread-safe; construct once and reuse."""

    def __init__(
        self,
        *,
        suspicious_at: float | None = None,
        injection_at: float | None = None,
        model_path: Path | None = None,
    ) -> None:
        """Thresholds default to the calibrated ones shipped with the model."""
        self._model = _load(model_path or MODEL_PATH)
        self.suspicious_at = self._model.suspicious_at if suspicious_at is None else suspicious_at
        """A score at or above this is ``suspicious``: flag it, tighten taint."""
        self.injection_at = self._model.injection_at if injection_at is None else injection_at
        """A score at or above this is ``injection``: block or escalate."""
        if not 0.0 < self.suspicious_at <= self.injection_at <= 1.0:
            raise UserError(
                "InjectionScreen needs 0 < suspicious_at <= injection_at <= 1, got "
                f"suspicious_at={self.suspicious_at}, injection_at={self.injection_at}"
            )

    def screen(self, text: str) -> Screening:
        """Score one text: an input, an email body, a retrieved document, a tool result."""
        norm, signals, smuggled = normalize(text)
        best = self._score(norm)
        logit = best.logit
        if smuggled:
            logit = max(
                logit, _TAG_CHARS_LOGIT, self._score(normalize(" ".join(smuggled))[0]).logit
            )
        hidden = self._hidden(text, signals)
        encoded = self._encoded(text, norm, signals)
        logit = max(logit, hidden, encoded)
        score = 1.0 / (1.0 + math.exp(-logit))
        reasons = [f"{_REASONS[name]}: '{_clip(snippet)}'" for name, snippet in best.hits]
        if not best.hits and score >= self.suspicious_at and logit == best.logit:
            reasons.append(f"phrasing like known injections: '{_clip(best.snippet)}'")
        verdict: Verdict = "clean"
        if score >= self.injection_at:
            verdict = "injection"
        elif score >= self.suspicious_at:
            verdict = "suspicious"
        return Screening(score=score, verdict=verdict, signals=tuple(_dedupe(reasons + signals)))

    def _score(self, norm: str) -> _Best:
        """The best window's logit, over every run of segments up to `WINDOW_WORDS` words."""
        model = self._model
        segs = segments(norm)
        if not segs:
            return _Best(model.bias, "", ())
        get = model.weights.get
        sums: list[float] = []
        counts: list[int] = []
        for _, _, tokens in segs:
            feats = token_features(tokens)
            sums.append(sum(map(get, feats, repeat(0.0))))
            counts.append(len(feats))
        hits = rule_hits(norm, segs)
        best = (-math.inf, 0, 0)
        for i in range(len(segs)):
            total, n, words = 0.0, 0, 0
            seen: dict[str, float] = {}
            for j in range(i, len(segs)):
                words += len(segs[j][2])
                if words > WINDOW_WORDS and j > i:
                    break
                total += sums[j]
                n += counts[j]
                for name, _ in hits[j]:
                    seen[name] = model.rules[name]
                logit = model.bias + total / math.sqrt(max(n, MIN_NORM)) + sum(seen.values())
                if logit > best[0]:
                    best = (logit, i, j)
        logit, i, j = best
        window_hits = tuple(h for k in range(i, j + 1) for h in hits[k])
        return _Best(logit, norm[segs[i][0] : segs[j][1]], window_hits)

    def _hidden(self, text: str, signals: list[str]) -> float:
        """Score CSS-hidden HTML and comments, boosted; -inf when there is none."""
        found = [m.group(2) or m.group(3) or "" for m in _HIDDEN_HTML.finditer(text)]
        if not found:
            return -math.inf
        signals.append("hidden text: HTML hidden by style or comment")
        content = _TAG.sub(" ", " \n".join(found[:_MAX_BLOBS]))
        return self._score(normalize(content)[0]).logit + _HIDDEN_BOOST

    def _encoded(self, text: str, norm: str, signals: list[str]) -> float:
        """Score base64, hex and rot13 payloads that decode to text; -inf when there is none."""
        decoded: list[tuple[str, str]] = []
        # Regex-scanning all of a long text for blobs costs more than splitting it on spaces.
        for word in [w for w in text.split() if len(w) >= 24][: 4 * _MAX_BLOBS]:
            m = _HEX.search(word)
            plain = _printable(binascii.unhexlify(m.group(0))) if m else None
            if plain:
                decoded.append(("hex", plain))
            elif (m := _BASE64.search(word)) and (plain := _b64_text(m.group(0))):
                decoded.append(("base64", plain))
            if len(decoded) >= _MAX_BLOBS:
                break
        rot = codecs.encode(norm, "rot13")
        if (
            any(cue in rot for cue in _ROT13_CUES)
            and any(r.pattern.search(rot) for r in _STRONG)
            and not any(r.pattern.search(norm) for r in _STRONG)
        ):
            decoded.append(("rot13", rot))
        best = -math.inf
        for kind, plain in decoded:
            logit = self._score(normalize(plain)[0]).logit
            prob = 1.0 / (1.0 + math.exp(-logit))
            what = "instructions" if prob >= self.suspicious_at else "text"
            signals.append(f"encoded payload: {kind} decodes to {what}")
            best = max(best, logit + _ENCODED_BOOST)
        return best


_REASONS = {r.name: r.reason for r in RULES}


def _b64_text(blob: str) -> str | None:
    try:
        raw = base64.b64decode(
            blob + "=" * (-len(blob) % 4), altchars=b"-_" if "-" in blob else None
        )
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _printable(raw: bytes) -> str | None:
    """Decoded bytes as text if they read like words, else None (hashes, ids, binary)."""
    try:
        plain = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c == " " for c in plain)
    if plain.count(" ") < 2 or letters < 0.8 * len(plain):
        return None
    return plain


def _clip(snippet: str, limit: int = 60) -> str:
    snippet = snippet.replace("\n", " ").strip()
    return snippet if len(snippet) <= limit else snippet[: limit - 1] + "…"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
