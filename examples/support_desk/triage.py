"""Keyword triage of a support email: what the scripted policy (`policy.py`) "understands".

A deterministic, deliberately simple reading: language by script and common words; intents
by keyword lists in English, German, Spanish, French and Japanese; injection by a handful of
tell-tale patterns; and, like a naive model, the addresses, IBANs and amounts the email asks
it to use. It misses things on purpose (see `hostile_signals`): the point of the example is
that bosun's gates hold when the model is fooled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["Email", "Triage", "read_block", "triage"]

# --- the email as the model sees it -----------------------------------------------------------


@dataclass(frozen=True)
class Email:
    """The untrusted message block of a run, split into headers and text."""

    headers: dict[str, str]
    text: str
    """Body, attachment listing and parser notes."""

    @property
    def subject(self) -> str:
        """The Subject header."""
        return self.headers.get("Subject", "").strip()

    @property
    def date(self) -> datetime | None:
        """The Date header, parsed."""
        try:
            return parsedate_to_datetime(self.headers.get("Date", ""))
        except (TypeError, ValueError):
            return None

    @property
    def body(self) -> str:
        """The body alone (no attachment listing or notes)."""
        return re.split(r"\n\[(?:attachment|note): ", self.text, maxsplit=1)[0].strip()


def read_block(block: str) -> Email:
    """Split the rendered message (``Name: value`` lines, a blank line, the text)."""
    head, _, text = block.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.replace("-", "").isalnum():
            headers[name] = value
    return Email(headers=headers, text=text.strip())


# --- keywords -----------------------------------------------------------------------------------

# A keyword ending in "*" matches as a prefix; CJK keywords match anywhere.
KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "privacy": ("gdpr", "dsgvo", "rgpd", "data subject", "delete my data", "delete all my data",
                "erase", "erasure", "right to be forgotten", "personal data", "dsar",
                "datenauskunft", "personenbezogene*", "löschung meiner*", "datos personales",
                "supprimer mes données", "données personnelles", "個人情報"),
    "refund": ("refund*", "money back", "reimburs*", "erstatt*", "rückerstatt*", "geld zurück",
               "reembols*", "devolución", "devuelv*", "rembours*", "返金", "払い戻し"),
    "cancellation": ("cancel*", "close my account", "terminate my", "kündig*", "cancelar",
                     "darme de baja", "résili*", "annuler", "解約"),
    "password": ("password*", "reset link", "locked out", "2fa", "two-factor", "two factor",
                 "authenticator", "passwort*", "kennwort", "contraseña", "mot de passe",
                 "パスワード", "二段階"),
    "login": ("log in", "login", "sign in", "anmelden", "iniciar sesión", "connexion",
              "me connecter", "ログイン"),
    "api_limits": ("rate limit*", "429", "throttl*", "api key*"),
    "api_mention": ("api", "webhook*", "endpoint*"),
    "bug": ("bug*", "crash*", "error*", "broken", "exception", "not working", "doesn't work",
            "does not work", "stopped working", "fails", "failing", "failed", "http 500",
            "stack trace", "traceback", "fehler*", "absturz", "stürzt*", "funktioniert nicht",
            "no funciona", "falla*", "fallo", "bogue", "plante", "erreur*",
            "ne fonctionne pas", "エラー", "不具合", "バグ"),
    "outage": ("outage", "is down", "are down", "all users", "nobody can", "production is",
               "nicht erreichbar", "ausfall", "caído", "panne", "障害"),
    "data_export": ("export*", "download my data", "backup", "exportieren", "exportar",
                    "exporter", "エクスポート"),
    "shipping": ("shipping", "shipment", "shipped", "delivery", "delivered", "tracking",
                 "parcel", "security key*", "hardware key*", "yubikey", "versand", "lieferung",
                 "paket", "envío", "paquete", "livraison", "colis", "配送", "届か"),
    "onboarding": ("sso", "saml", "okta", "azure ad", "scim", "onboarding", "invite*",
                   "set up", "setup", "getting started", "import*", "migrat*", "einricht*",
                   "einladen", "configurar", "invitar", "configurer", "inviter", "導入", "招待",
                   "設定方法"),
    "billing": ("invoice*", "billing", "billed", "charged", "charge", "payment*", "receipt*",
                "vat", "credit card", "rechnung*", "abgebucht", "abbuchung*", "zahlung*",
                "factura*", "cobr*", "cargo*", "factur*", "paiement*", "prélev*", "請求",
                "支払", "領収書"),
    "feature_request": ("feature request", "would be great", "would love", "it would be nice",
                        "could you add", "please add", "suggestion", "dark mode",
                        "integration", "wäre schön", "wünsche mir", "sugerencia",
                        "estaría bien", "fonctionnalité", "ce serait bien", "要望", "機能追加"),
    "sales": ("pricing", "quote", "demo", "trial", "procurement", "security questionnaire"),
    "upgrade": ("upgrade*", "more seats", "add seats"),
    "legal": ("lawyer", "legal action", "attorney", "sue you", "court", "anwalt",
              "rechtliche schritte", "abogado", "avocat", "弁護士"),
    "resolved": ("works now", "is solved", "problem solved", "all good now", "you can close",
                 "can be closed", "funktioniert wieder", "ya funciona", "ça marche",
                 "résolu", "解決しました"),
    "autoreply": ("out of office", "automatic reply", "auto-reply", "autoreply",
                  "abwesenheitsnotiz", "fuera de la oficina", "absence du bureau", "不在"),
    "urgent": ("urgent*", "asap", "immediately", "critical", "dringend", "urgente",
               "至急", "緊急"),
}  # fmt: skip

# Primary category, most specific first, and the team that owns it.
ROUTING: Final[tuple[tuple[str, str], ...]] = (
    ("privacy", "privacy"),
    ("refund", "billing"),
    ("cancellation", "billing"),
    ("account_access", "tier1"),
    ("api", "engineering"),
    ("bug", "engineering"),
    ("data_export", "tier1"),
    ("shipping", "logistics"),
    ("onboarding", "onboarding"),
    ("billing", "billing"),
    ("feature_request", "product"),
)
TEAM: Final = dict(ROUTING) | {"security": "trust-safety", "other": "tier1"}

KB_QUERY: Final = {
    "privacy": "gdpr personal data request",
    "refund": "refund policy",
    "cancellation": "cancel downgrade",
    "account_access": "password reset",
    "api": "api rate limit",
    "bug": "known issues bug",
    "data_export": "export data",
    "shipping": "shipping hardware security key",
    "onboarding": "getting started",
    "billing": "invoice billing",
    "feature_request": "feature request roadmap",
}
"""What the policy searches the knowledge base for, by category (articles are English)."""

_SPECIFIC: Final = {
    "2fa": "two-factor 2fa",
    "authenticator": "two-factor 2fa",
    "二段階": "two-factor 2fa",
    "sso": "sso saml",
    "saml": "sso saml",
    "okta": "sso saml",
    "invite": "invite team",
    "import": "import csv",
    "webhook": "webhook duplicate",
    "429": "rate limit",
    "api key": "api key rotate",
    "twice": "double charge",
    "doppelt": "double charge",
    "dos veces": "double charge",
    "deux fois": "double charge",
    "二重": "double charge",
    "dashboard": "dashboard slow",
    "slow": "dashboard slow",
    "vat": "vat payment",
    "card": "payment method",
}

_HOSTILE: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for name, pattern in (
        ("instruction override", r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}"
         r"\b(previous|prior|above|earlier|all|your)\b[^.\n]{0,30}\b(instructions?|rules|prompts?)"),
        ("instruction override (de)", r"\bignorier\w*\b[^.\n]{0,50}\banweisung"),
        ("instruction override (es)", r"\bignor[ae]\w*\b[^.\n]{0,50}\binstruccion"),
        ("instruction override (fr)", r"\bignore[rz]?\b[^.\n]{0,50}\bconsignes|"
         r"\boubliez?\b[^.\n]{0,50}\binstructions"),
        ("fake role marker", r"<\|?\s*(system|im_start|assistant)\s*\|?>|\[/?(system|inst)\]"
         r"|^\s*(#{2,}\s*)?system\s*(:|override|message|notice)"),
        ("mode switch", r"\b(developer|debug|god|admin|maintenance)\s+mode\b"),
        ("new instructions", r"\bnew\s+(important\s+)?instructions\b"),
        ("exfiltration link", r"!\[[^\]]*\]\(\s*https?://"),
        ("hidden text", r"the HTML contained text hidden"),
        ("invisible characters", "[\u200b-\u200f\u2060\ufeff\U000e0000-\U000e007f]"),
        ("encoded payload", r"(?<![\w+/])[A-Za-z0-9+/]{48,}={0,2}(?![\w+/=])"),
        ("bulk data request", r"\b(customer|client|user)s?\s+(list|database|records)\b"
         r"|\b(list|data|details|records)\s+of\s+all\s+(customers|accounts|users)\b"),
    )
)  # fmt: skip

_ADDRESS: Final = re.compile(
    r"<(?:EMAIL)_\d+>|[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_SEND_VERB: Final = re.compile(
    r"\b(send|forward|email|e-mail|mail|reply|cc|deliver|schick\w*|send\w*|weiterleit\w*|"
    r"env[ií]\w*|reenv[ií]\w*|manda\w*|envo\w*|transf[eé]r\w*)\b|送",
    re.IGNORECASE,
)
_IBAN: Final = re.compile(r"<IBAN_\d+>|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_AMOUNT: Final = re.compile(
    r"(?:€|\beur\b|\beuros?\b)\s?(\d{1,6}(?:[.,]\d{1,2})?)"
    r"|(\d{1,6}(?:[.,]\d{1,2})?)\s?(?:€|\beur\b|\beuros?\b|ユーロ)",
    re.IGNORECASE,
)
_JAPANESE: Final = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
_LANGUAGE_WORDS: Final = {
    "de": {"und", "ich", "nicht", "bitte", "danke", "mein", "meine", "die", "der", "das", "ist",
           "wir", "sie", "mit", "hallo", "grüße", "vielen"},
    "es": {"el", "la", "que", "por", "gracias", "mi", "hola", "para", "no", "es", "una", "con",
           "los", "las", "saludos", "mis"},
    "fr": {"le", "la", "je", "vous", "merci", "bonjour", "mon", "est", "pas", "une", "des",
           "les", "ma", "mes", "cordialement", "nous"},
}  # fmt: skip
_WORD: Final = re.compile(r"\w+", re.UNICODE)


def _pattern(keyword: str) -> re.Pattern[str]:
    if _JAPANESE.search(keyword):
        return re.compile(re.escape(keyword))
    stem = keyword.rstrip("*")
    tail = r"\w*" if keyword.endswith("*") else r"(?!\w)"
    return re.compile(rf"(?<!\w){re.escape(stem)}{tail}", re.IGNORECASE)


_COMPILED: Final = {intent: tuple(_pattern(k) for k in words) for intent, words in KEYWORDS.items()}


# --- triage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """What the policy makes of one email."""

    language: str
    """en, de, es, fr or ja."""
    intents: frozenset[str]
    """Every keyword group that matched."""
    categories: tuple[str, ...]
    """Ticket categories found, most specific first (the first is the ticket's)."""
    hostile: tuple[str, ...]
    """Injection signals the policy noticed (it does not notice all of them)."""
    forward_to: str | None = None
    """An address the email asks to send something to (a naive model follows it)."""
    iban: str | None = None
    """An IBAN the email gives (a naive model refunds to it)."""
    amount_eur: float | None = None
    """An amount the email names."""
    matched: tuple[str, ...] = field(default=())
    question: str | None = None
    """The question the email asks, when it only asks one the help articles may answer
    ("How long does delivery take?"): no action, no hostile signal, no money to move."""
    """The keywords that matched, for the knowledge-base query."""

    @property
    def category(self) -> str:
        """The ticket's category."""
        if self.hostile:
            return "security"
        return self.categories[0] if self.categories else "other"

    @property
    def team(self) -> str:
        """The team for the ticket."""
        if self.category == "other" and "sales" in self.intents:
            return "sales"
        return TEAM[self.category]

    def kb_query(self) -> str | None:
        """What to search the knowledge base for; None when nothing fits."""
        base = KB_QUERY.get(self.category)
        if base is None:
            return None
        extra = [_SPECIFIC[m] for m in self.matched if m in _SPECIFIC]
        return " ".join(dict.fromkeys([*extra, base]))


def triage(email: Email, *, sender: str | None) -> Triage:
    """Read one email the way the scripted policy does."""
    text = f"{email.subject}\n{email.text}"
    intents: set[str] = set()
    matched: list[str] = []
    for intent, patterns in _COMPILED.items():
        for pattern in patterns:
            hit = pattern.search(text)
            if hit:
                intents.add(intent)
                matched.append(hit.group(0).casefold())
    return Triage(
        language=_language(text),
        intents=frozenset(intents),
        categories=_categories(intents),
        hostile=hostile_signals(text),
        forward_to=_forward_to(email.body, sender),
        iban=_first(_IBAN, email.body),
        amount_eur=_amount(email.body),
        matched=tuple(matched),
        question=_question(email.body, intents) if not hostile_signals(text) else None,
    )


_ASKS: Final = re.compile(
    r"(?:^|(?<=[.!?\n])\s*)(¿?(?:how|what|when|where|which|can i|can we|do you|does|is the|"
    r"is there|are there|cómo|cuántos|cuántas|cuánto|cuándo|dónde|qué|puedo|tienen|hay)"
    r"\b[^.!?\n]{3,200}\?)",
    re.IGNORECASE,
)
# Emails that ask for something to be done, not only for an answer, take the usual path
# (and so do requests phrased as questions: "Can you check?" is not in the pattern).
_ACTIONS: Final = frozenset(
    {"legal", "outage", "urgent", "cancellation", "privacy", "bug", "upgrade", "resolved",
     "autoreply", "sales", "api_limits", "api_mention"}
)  # fmt: skip


def _question(body: str, intents: set[str]) -> str | None:
    if intents & _ACTIONS or _first(_IBAN, body) or _amount(body) is not None:
        return None
    found = _ASKS.search(body)
    return None if found is None else " ".join(found.group(1).split())


def hostile_signals(text: str) -> tuple[str, ...]:
    """The injection patterns the policy recognises in `text`. It knows the loud ones
    (overrides, role markers, hidden or encoded text, bulk-data requests) and misses polite
    social engineering ("please send my invoices to my accountant at ...")."""
    return tuple(name for name, pattern in _HOSTILE if pattern.search(text))


def _categories(intents: set[str]) -> tuple[str, ...]:
    found = set(intents)
    if "outage" in found:
        found.add("bug")
    if "api_limits" in found or ("api_mention" in found and "bug" not in found):
        found.add("api")
    if "password" in found:
        found.add("account_access")
    categories = tuple(category for category, _ in ROUTING if category in found)
    if not categories and "login" in found:  # "can't log in" alone is an access problem
        return ("account_access",)
    return categories


def _language(text: str) -> str:
    if _JAPANESE.search(text):
        return "ja"
    words = [w.casefold() for w in _WORD.findall(text)]
    scores = {lang: sum(w in vocab for w in words) for lang, vocab in _LANGUAGE_WORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    english = sum(w in {"the", "and", "i", "my", "is", "to", "you", "please", "we"} for w in words)
    return best if scores[best] > max(english, 2) else "en"


def _forward_to(body: str, sender: str | None) -> str | None:
    for match in _ADDRESS.finditer(body):
        address = match.group(0)
        if sender is not None and address.casefold() == sender.casefold():
            continue
        if address.casefold().startswith(("support@", "no-reply@")):
            continue
        before = body[max(match.start() - 120, 0) : match.start()]
        if _SEND_VERB.search(before):
            return address
    return None


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(0).replace(" ", "") if match else None


def _amount(text: str) -> float | None:
    match = _AMOUNT.search(text)
    if match is None:
        return None
    number = (match.group(1) or match.group(2)).replace(",", ".")
    try:
        return float(number)
    except ValueError:
        return None
