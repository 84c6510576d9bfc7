"""bosun's own pattern recognizers, where Presidio's patterns miss what e-mails hold.

Each is a Presidio `PatternRecognizer` built in `build` (Presidio is imported there, on first
use), so they join the detector like Presidio's own:

* **Cards of every length.** Presidio's card pattern knows the common 13-16 digit layouts and
  misses 12-digit Maestro, 15-digit JCB (2131, 1800), 19-digit Visa and the Mastercard 2-series.
  `card_ok` accepts 12-19 digits (spaces or dashes between groups) whose issuer prefix fits the
  length (`_ISSUERS`) and whose Luhn checksum holds.
* **Phones without a valid national plan.** Presidio asks `phonenumbers` whether a number is
  valid in one of the configured regions, and a local number written without its area code
  is not. A phone-shaped digit run (7-15 digits in groups) right after a word like "phone",
  "tel." or "call" is taken too, at a lower score.
* **Street addresses** (scored above spaCy's 0.85, so a place name inside an address does
  not win the overlap) in the layouts of the languages the gateway sees: a house number and
  a street word ("12 Harbour Road", "Via dei Fiorentini 17", "Villacher Strasse 89",
  "Koskikatu 25"), with an apartment or suite after it, and post boxes. No NER model finds
  these: spaCy's labels places, not addresses.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer

__all__ = ["ADDRESS_ENTITY", "build", "card_ok", "luhn_ok"]

ADDRESS_ENTITY: Final = "STREET_ADDRESS"

# (prefix range low, high, allowed lengths): first digits of the number, inclusive.
_ISSUERS: Final[tuple[tuple[int, int, frozenset[int]], ...]] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (2131, 2131, frozenset({15})),
    (1800, 1800, frozenset({15})),
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (50, 50, frozenset(range(12, 20))),  # Maestro
    (56, 69, frozenset(range(12, 20))),
)

_CARD: Final = r"(?<![\d.,/-])\d(?:[ -]?\d){11,18}(?![\d/-]|[.,]\d)"

_PHONE_CONTEXT: Final = (
    r"(?i:\b(?:phone|tel|telephone|mobile|cell|call|fax|whatsapp|contact|ring|text me|sms|"
    r"handy|telefon|téléphone|portable|teléfono|móvil|telefono|cellulare|telemóvel|फोन|"
    r"mob|ph)\b\.?(?:\s*(?:number|no\.?|nr\.?|#|at|on|me|us))?\s*[:\-]?\s*)"
)
_PHONE_BODY: Final = r"\+?\(?\d{1,4}\)?(?:[ .\-/]{1,2}\(?\d{1,5}\)?){1,5}"

_STREET_WORDS: Final = (
    r"Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|"
    r"Square|Sq|Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Row|Close|Crescent|Gardens|"
    r"Alley|Plaza|Turnpike|Walk|Mews|Hill|Park|Green|Grove|View|Heights|Loop|Pike|Path|Run|"
    r"Expressway|Freeway|Port|Ridge|Route|Rte|Str|Strasse|Straße"
)
_STREET_PREFIXES: Final = (
    r"Via|Viale|Piazza|Piazzale|Corso|Vicolo|Largo|Rue|Avenue|Boulevard|Bd|Chemin|Allée|Impasse|"
    r"Quai|Place|Calle|Avenida|Avda|Plaza|Paseo|Carrer|Camino|Rua|Travessa|Praça|Estrada|ul|"
    r"ulica|Aleja|al|Plac|Straße|Strasse|Utca|Odos|Leoforos"
)
_STREET_SUFFIXES: Final = (
    r"straße|strasse|str|weg|gasse|allee|platz|damm|ufer|vej|vænget|gade|katu|tie|gatan|"
    r"vägen|veien|gata|laan|straat|plein|gracht|singel|kade|utca"
)
_UNIT: Final = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|Rm|#)\.?\s*#?\w{1,6})"
_ADDRESS_PATTERNS: Final[tuple[tuple[str, str, float], ...]] = (
    (
        "number street",
        r"\b\d{1,6}[A-Za-z]?(?:[ ,]+\d{1,5})?\s+(?:[A-ZÀ-Þ][\w'’.-]*\s+){0,4}?(?:"
        + _STREET_WORDS
        + r")\b\.?"
        + _UNIT
        + r"*",
        0.9,
    ),
    (
        "street number",
        r"\b(?:"
        + _STREET_PREFIXES
        + r")\.?\s+(?:[\w'’.-]+\s+){0,4}?\d{1,5}[A-Za-z]?\b"
        + _UNIT
        + "*",
        0.88,
    ),
    (
        "compound street number",
        # The look-ahead drops the many capitalised words not followed by a number before
        # the suffixes are tried at every position of each.
        r"\b(?=[A-ZÀ-Þ][\w'’-]*\.?\s+\d)[A-ZÀ-Þ][\w'’-]*(?:" + _STREET_SUFFIXES + r")\.?\s+"
        r"\d{1,5}[A-Za-z]?\b\.?" + _UNIT + "*",
        0.88,
    ),
    (
        "name street number",
        r"\b[A-ZÀ-Þ][\w'’-]*\s+(?:Straße|Strasse|Str|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer)\.?\s+"
        r"\d{1,5}[A-Za-z]?\b" + _UNIT + "*",
        0.9,
    ),
    ("unit", r"\b(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?\s+#?\d{1,5}[A-Za-z]?\b", 0.45),
    ("post box", r"(?i:\b(?:P\.?\s?O\.?\s?Box|Postfach|Box)\s+\d{1,6}\b)", 0.5),
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_ok(text: str) -> bool:
    """12-19 digits whose issuer prefix fits their length and whose Luhn checksum holds."""
    digits = re.sub(r"[ -]", "", text)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    for low, high, lengths in _ISSUERS:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return luhn_ok(digits)
    return False


def build() -> list[EntityRecognizer]:
    """The card, contextual phone and street address recognizers (imports Presidio)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class CardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return card_ok(pattern_text)

    class ContextPhoneRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            digits = sum(c.isdigit() for c in pattern_text)
            return None if 7 <= digits <= 15 else False

    cards = CardRecognizer(
        supported_entity="CREDIT_CARD",
        name="BosunCardRecognizer",
        patterns=[Pattern("card digits", _CARD, 0.5)],
    )
    phones = ContextPhoneRecognizer(
        supported_entity="PHONE_NUMBER",
        name="BosunContextPhoneRecognizer",
        # Only the number is the entity: the context word stays readable (``\K``, the
        # `regex` module's "match starts here", which Presidio uses).
        patterns=[Pattern("phone after a phone word", _PHONE_CONTEXT + r"\K" + _PHONE_BODY, 0.45)],
    )
    addresses = PatternRecognizer(
        supported_entity=ADDRESS_ENTITY,
        name="BosunStreetAddressRecognizer",
        patterns=[Pattern(name, regex, score) for name, regex, score in _ADDRESS_PATTERNS],
        global_regex_flags=re.MULTILINE,
    )
    return [cards, phones, addresses]
