"""PII detection: each entity type, its near misses, overlaps, hostile text, offline use."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bosun.errors import ConfigError, MissingDependency
from bosun.gateway import ner
from bosun.gateway.pii import PLACEHOLDER_NAMES, WITH_NER, PiiDetector, PiiSpan


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def found(detector: PiiDetector, text: str) -> list[tuple[str, str]]:
    return [(span.entity, span.text) for span in detector.detect(text)]


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("EMAIL_ADDRESS", "jane.doe+billing@example.com"),
        ("EMAIL_ADDRESS", "o.brien@mail.example.co.uk"),
        ("PHONE_NUMBER", "+1 (415) 555-0132"),
        ("PHONE_NUMBER", "020 7946 0958"),
        ("PHONE_NUMBER", "+49 30 901820"),
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("CREDIT_CARD", "5500-0000-0000-0004"),
        ("CREDIT_CARD", "378282246310005"),
        ("IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
        ("IBAN_CODE", "GB82WEST12345698765432"),
        ("IBAN_CODE", "FR1420041010050500013M02606"),
        ("US_SSN", "536-22-1234"),
        ("IP_ADDRESS", "192.168.10.20"),
        ("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
        ("SECRET", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
        ("SECRET", "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6h"),
        ("SECRET", "AKIAIOSFODNN7EXAMPLE"),
        ("SECRET", "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3d"),
        ("SECRET", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
        ("SECRET", "xoxb-1234567890-0987654321-AbCdEfGhIjKl"),
        ("SECRET", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("SECRET", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        (
            "SECRET",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        (
            "SECRET",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
            "-----END RSA PRIVATE KEY-----",
        ),
    ],
)
def test_each_entity_is_found_in_a_sentence(detector: PiiDetector, entity: str, value: str) -> None:
    text = f"Hi team,\nplease use {value} for this.\nThanks"
    assert found(detector, text) == [(entity, value)]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "iban DE88 3704 0044 0532 0130 00",  # wrong check digits
        "iban GB82WEST1234569876543",  # right shape, one digit short: checksum fails
        "ssn 000-12-3456",  # area 000 is never issued
        "ssn 123-45-6789",  # the published sample number
        "address 999.168.1.1",  # not an IPv4 address
        "release 1.2.3.4.5 is out",  # part of a longer dotted number
        "build v1.2.3.4 is out",  # glued to a letter
        "mail jane@example.notarealtld",  # no such public suffix
        "mail jane@localhost",
        "key sk-short",  # too short to be an OpenAI key
        "AKIAIOSFODNN7EXAMPL",  # 15 characters after AKIA
        "order 12345, total 99.50",
    ],
)
def test_near_misses_are_not_pii(detector: PiiDetector, text: str) -> None:
    assert found(detector, text) == []


def test_an_invalid_ssn_shape_can_still_be_a_phone(detector: PiiDetector) -> None:
    # Area 666 is never issued, so no SSN; the same nine digits are a valid Spanish mobile
    # number (6xx xx xx xx), and Spain is among the phone regions.
    assert found(detector, "ssn 666-12-3456") == [("PHONE_NUMBER", "666-12-3456")]


def test_a_bare_dotted_quad_is_an_ip_even_when_it_is_a_version(detector: PiiDetector) -> None:
    # Without context a version number of four parts cannot be told from an address; masking
    # a version costs less than leaking an address, so it is reported.
    assert found(detector, "upgrade to 1.2.3.4 today") == [("IP_ADDRESS", "1.2.3.4")]


def test_assignments_mask_the_value_and_keep_the_key_name(detector: PiiDetector) -> None:
    text = 'password = "hunter2hunter", API_KEY: abcdef123456; Authorization: Bearer ' + "a" * 24
    assert found(detector, text) == [
        ("SECRET", "hunter2hunter"),
        ("SECRET", "abcdef123456"),
        ("SECRET", "a" * 24),
    ]


def test_spans_point_into_the_text_in_order(detector: PiiDetector) -> None:
    text = "ip 10.0.0.1, mail a@example.org, card 4111111111111111, ssn 536-22-1234"
    spans = detector.detect(text)
    assert [s.entity for s in spans] == ["IP_ADDRESS", "EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN"]
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert 0.0 < span.score <= 1.0


def test_overlapping_detections_keep_the_more_certain(detector: PiiDetector) -> None:
    # The card's digits also look like a phone number to a lenient reader; a Luhn-checked card
    # (score 1.0) wins over a phone (0.4), and one span is reported.
    spans = detector.detect("pay with 4111-1111-1111-1111 now")
    assert [(s.entity, s.text, s.score) for s in spans] == [
        ("CREDIT_CARD", "4111-1111-1111-1111", 1.0)
    ]


def test_only_the_configured_entities_are_reported() -> None:
    only_email = PiiDetector(entities=["EMAIL_ADDRESS"])
    text = "a@example.org 4111111111111111 536-22-1234"
    assert found(only_email, text) == [("EMAIL_ADDRESS", "a@example.org")]


def test_min_score_drops_weaker_detections() -> None:
    strict = PiiDetector(min_score=0.5)
    assert found(strict, "call +1 (415) 555-0132 or mail a@example.org") == [
        ("EMAIL_ADDRESS", "a@example.org")
    ]


def test_unknown_types_and_bad_scores_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="SHOE_SIZE"):
        PiiDetector(entities=["EMAIL_ADDRESS", "SHOE_SIZE"])
    with pytest.raises(ConfigError, match="min_score"):
        PiiDetector(min_score=1.5)


def test_names_without_the_ner_extra_say_which_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ner, "installed", lambda: False)
    assert "PERSON" in PiiDetector.SUPPORTED
    with pytest.raises(MissingDependency, match=r"bosun\[ner\]"):
        PiiDetector(entities=["EMAIL_ADDRESS", "PERSON"])
    PiiDetector()  # the pattern layer needs no model


def test_every_supported_entity_has_a_short_placeholder_name() -> None:
    assert set(WITH_NER) <= set(PLACEHOLDER_NAMES)
    assert PLACEHOLDER_NAMES["EMAIL_ADDRESS"] == "EMAIL"
    assert PLACEHOLDER_NAMES["CREDIT_CARD"] == "CARD"


def test_hostile_text_does_not_crash(detector: PiiDetector) -> None:
    assert detector.detect("") == []
    assert found(detector, "\x00" * 1000 + "x@example.com\x00") == [
        ("EMAIL_ADDRESS", "x@example.com")
    ]
    # Offsets are in code points, so text after emoji and combining marks still lines up.
    text = "héllo 👋🏽 e\u0301 — write to zoë@example.com ✉ or call +44 20 7946 0958"
    spans = detector.detect(text)
    assert [(s.entity, text[s.start : s.end]) for s in spans] == [
        ("EMAIL_ADDRESS", "zoë@example.com"),
        ("PHONE_NUMBER", "+44 20 7946 0958"),
    ]
    assert detector.detect("@" * 20_000 + "1" * 20_000 + "\ud800") == []


def test_large_text_with_many_values(detector: PiiDetector) -> None:
    text = "".join(f"user{i}@example.com filler text here. " for i in range(5_000))
    spans = detector.detect(text)
    assert len(spans) == 5_000
    assert spans[-1].text == "user4999@example.com"


def test_no_network_is_used(detector: PiiDetector, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PII detector tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    fresh = PiiDetector()  # builds its own public-suffix extractor under the patch
    assert found(fresh, "write to a@example.org") == [("EMAIL_ADDRESS", "a@example.org")]


def test_importing_the_gateway_does_not_import_presidio() -> None:
    code = (
        "import sys, bosun.gateway.pii, bosun.gateway.vault; "
        "print('presidio_analyzer' in sys.modules, 'spacy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_spans_never_overlap_and_match_the_text(detector: PiiDetector, text: str) -> None:
    spans = detector.detect(text)
    assert all(isinstance(s, PiiSpan) for s in spans)
    for before, after in zip(spans, spans[1:], strict=False):
        assert before.end <= after.start
    for span in spans:
        assert text[span.start : span.end] == span.text != ""
