"""Output guardrails: each guard's allow and non-allow paths, the composite, hostile outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inline_snapshot import snapshot
from pydantic import BaseModel

from bosun.errors import UserError
from bosun.gateway.guardrails import (
    Action,
    GroundingGuard,
    Guardrail,
    Guardrails,
    GuardrailVerdict,
    OutputContext,
    PiiGuard,
    SchemaGuard,
    SecretsGuard,
)

NO_CONTEXT = OutputContext()


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int


class RegexDetector:
    """A detector double: one regex per entity type."""

    def __init__(self, patterns: Mapping[str, str]) -> None:
        self.patterns = {entity: re.compile(p) for entity, p in patterns.items()}
        self.seen: list[str] = []

    def detect(self, text: str) -> list[Span]:
        self.seen.append(text)
        return [
            Span(entity, m.start(), m.end())
            for entity, pattern in self.patterns.items()
            for m in pattern.finditer(text)
        ]


def pii_detector() -> RegexDetector:
    return RegexDetector(
        {
            # anchored and bounded, so that a hostile output costs the double linear time
            "EMAIL_ADDRESS": r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+\.[\w.]+",
            "PHONE_NUMBER": r"\+\d[\d -]{7,}\d",
        }
    )


# Fake secrets are assembled at run time so that no scanner mistakes this file for a leak.
OPENAI_KEY = "sk-" + "proj-" + "Zq3" * 10 + "f3a9"
SECRETS = {
    "OPENAI_API_KEY": OPENAI_KEY,
    "ANTHROPIC_API_KEY": "sk-ant-" + "api03-" + "x7Y" * 10,
    "AWS_ACCESS_KEY": "AKIA" + "Q5RZ" * 4,
    "GITHUB_TOKEN": "ghp_" + "aB3" * 12,
    "STRIPE_KEY": "sk_" + "live_" + "9xQ" * 8,
    "SLACK_TOKEN": "xoxb-" + "1234-5678-" + "abcDEF" * 3,
    "GOOGLE_API_KEY": "AIza" + "Sy" + "b7_-" * 8 + "q",
    "JWT": "eyJ" + "hbGciOiJIUzI1" + "." + "eyJ" + "zdWIiOiIxMjM0" + "." + "SflKxwRJ" * 2,
}


class Fixed:
    """A guard double with a fixed verdict; records what it was shown."""

    def __init__(self, name: str, action: Action, text: str | None = None) -> None:
        self.name = name
        self.action: Action = action
        self.text = text
        self.seen: list[str] = []

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        self.seen.append(output)
        return GuardrailVerdict(
            guardrail=self.name, action=self.action, reasons=(f"{self.action}!",), text=self.text
        )


# --- PiiGuard ---------------------------------------------------------------------------------


def test_pii_clean_text_and_placeholders_pass() -> None:
    guard = PiiGuard(pii_detector())

    assert guard.check("We will e-mail <EMAIL_1> today.", NO_CONTEXT) == GuardrailVerdict(
        guardrail="pii", action="allow"
    )


def test_pii_spans_inside_a_placeholder_are_ignored() -> None:
    guard = PiiGuard(RegexDetector({"US_SSN": r"\d"}))

    verdict = guard.check("code 7 for <EMAIL_1>", NO_CONTEXT)

    assert [(f.kind, f.start) for f in verdict.findings] == [("US_SSN", 5)]


def test_pii_redacts_raw_values() -> None:
    output = "Reach jane.doe@example.com or +44 20 7946 0958; cc <EMAIL_2>."

    verdict = PiiGuard(pii_detector()).check(output, NO_CONTEXT)

    assert verdict.action == "redact"
    assert verdict.text == snapshot(
        "Reach [REDACTED:EMAIL_ADDRESS] or [REDACTED:PHONE_NUMBER]; cc <EMAIL_2>."
    )
    assert verdict.reasons == snapshot(
        (
            "EMAIL_ADDRESS in output (jan….com)",
            "PHONE_NUMBER in output (+44…0958)",
        )
    )


@pytest.mark.parametrize("action", ["block", "escalate", "allow"])
def test_pii_other_actions_report_without_rewriting(action: Action) -> None:
    verdict = PiiGuard(pii_detector(), action=action).check("mail jane@example.com", NO_CONTEXT)

    assert verdict.action == action
    assert verdict.text is None
    assert [f.kind for f in verdict.findings] == ["EMAIL_ADDRESS"]


def test_pii_entities_and_recipient_allowance() -> None:
    output = "jane@example.com, +1 415 555 0132"
    only_phones = PiiGuard(pii_detector(), entities={"PHONE_NUMBER"})
    everything = PiiGuard(pii_detector())
    may_read_email = OutputContext(allowed_pii=frozenset({"EMAIL_ADDRESS"}))

    assert only_phones.check(output, NO_CONTEXT).text == "jane@example.com, [REDACTED:PHONE_NUMBER]"
    assert everything.check(output, may_read_email).text == (
        "jane@example.com, [REDACTED:PHONE_NUMBER]"
    )


def test_pii_in_a_source_is_still_redacted() -> None:
    """A CRM lookup returns other customers' addresses too: provenance is no permission."""
    ctx = OutputContext(sources=('{"email": "other@example.com"}',))

    verdict = PiiGuard(pii_detector()).check("Try other@example.com", ctx)

    assert verdict.text == "Try [REDACTED:EMAIL_ADDRESS]"


def test_pii_overlapping_spans_become_one_redaction() -> None:
    detector = RegexDetector({"EMAIL_ADDRESS": r"a@b\.cc", "URL": r"b\.cc/x"})

    verdict = PiiGuard(detector).check("see a@b.cc/x now", NO_CONTEXT)

    assert verdict.text == "see [REDACTED:EMAIL_ADDRESS] now"
    assert len(verdict.findings) == 1


# --- SecretsGuard -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secrets_well_known_formats_block_without_echo(kind: str) -> None:
    secret = SECRETS[kind]

    verdict = SecretsGuard().check(f"Use this: {secret} and go.", NO_CONTEXT)

    assert verdict.action == "block"
    assert [f.kind for f in verdict.findings] == [kind]
    assert verdict.text is None
    assert all(secret not in reason and secret[4:-4] not in reason for reason in verdict.reasons)


def test_secrets_reason_shows_a_masked_preview() -> None:
    verdict = SecretsGuard().check(f"key={OPENAI_KEY}", NO_CONTEXT)

    assert verdict.reasons == ("OPENAI_API_KEY in output (sk-…f3a9)",)


def test_secrets_redaction_keeps_the_key_names() -> None:
    output = (
        "password: hunter22\n"
        "db: postgres://app:s3cr3t-pw@db.internal:5432/main\n"
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
        "done"
    )

    verdict = SecretsGuard(action="redact").check(output, NO_CONTEXT)

    assert verdict.text == snapshot(
        """\
password: [REDACTED:PASSWORD]
db: postgres://app:[REDACTED:URL_PASSWORD]@db.internal:5432/main
Authorization: Bearer [REDACTED:BEARER_TOKEN]
[REDACTED:PRIVATE_KEY]
done\
"""
    )


def test_secrets_are_found_whatever_the_case_of_their_label() -> None:
    output = "AUTHORIZATION: BEARER abcdefghijklmnopqrstuvwxyz012345 / PASSWORD=Hunter22x"

    verdict = SecretsGuard(action="redact").check(output, NO_CONTEXT)

    assert verdict.text == (
        "AUTHORIZATION: BEARER [REDACTED:BEARER_TOKEN] / PASSWORD=[REDACTED:PASSWORD]"
    )


def test_redacting_twice_changes_nothing_more() -> None:
    guard = SecretsGuard(action="redact")
    once = guard.check(f"password: Hunter22x, key {OPENAI_KEY}", NO_CONTEXT).text
    assert once is not None

    assert guard.check(once, NO_CONTEXT).action == "allow"


def test_a_private_key_without_its_end_is_redacted_to_the_end() -> None:
    output = "here: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"

    assert SecretsGuard(action="redact").check(output, NO_CONTEXT).text == (
        "here: [REDACTED:PRIVATE_KEY]"
    )


@pytest.mark.parametrize(
    "output",
    [
        "secret: confidential",
        "max_tokens: 12345678",
        "password: ********",
        "password: <PASSWORD_1>",
        "a risk-assessment-for-the-quarterly-report",
        "the token was revoked; use the password reset link",
        "Bearer of bad news",
        "See https://example.com:8080/path@v2 for details",
    ],
)
def test_secrets_prose_passes(output: str) -> None:
    assert SecretsGuard().check(output, NO_CONTEXT).action == "allow"


def test_secrets_from_a_detector() -> None:
    detector = RegexDetector({"SECRET": r"tok_[a-z]{12}", "EMAIL_ADDRESS": r"\S+@\S+"})
    output = "tok_abcdefghijkl for a@b.io"

    with_builtin = SecretsGuard(detector).check(output, NO_CONTEXT)
    only_detector = SecretsGuard(detector, builtin=False).check(
        f"{OPENAI_KEY} {output}", NO_CONTEXT
    )

    assert [f.kind for f in with_builtin.findings] == ["SECRET"]
    assert [f.kind for f in only_detector.findings] == ["SECRET"]


# --- GroundingGuard ---------------------------------------------------------------------------

ORDER = json.dumps(
    {
        "order_id": "#W1234567",
        "reference": "ord-48213",
        "total": 1234.5,
        "items": [{"price": 20.0}, {"price": 7}],
        "iban": "DE89370400440532013000",
        "ticket": 311,
    }
)
GROUNDED = OutputContext(sources=("Where is my order #W1234567?", ORDER))


@pytest.mark.parametrize(
    "output",
    [
        "Order #W1234567 totals $1,234.50.",
        "Order #W1234567 totals 1.234,50 €.",
        "That is USD 1234.5 in all.",
        "The first item costs €20, the second $7.00.",
        "The first item costs 20.00 EUR.",
        "The first item costs 20,00 euros.",
        "Reference ORD-48213 is on its way.",
        "Ticket #311 is open.",
        "Refund to DE89 3704 0044 0532 0130 00.",
        "Nothing to check here.",
    ],
)
def test_grounded_identifiers_pass(output: str) -> None:
    assert GroundingGuard().check(output, GROUNDED) == GuardrailVerdict(
        guardrail="grounding", action="allow"
    )


def test_fabricated_identifiers_are_flagged() -> None:
    output = (
        "Order #W7654321 was refunded $99.99 (ticket #312, ORD-48214); "
        "order #W1234567 ($1,234.50) is fine. IBAN DE44 5001 0517 5407 3249 31."
    )

    verdict = GroundingGuard().check(output, GROUNDED)

    assert verdict.action == "escalate"
    assert verdict.reasons == snapshot(
        (
            "order_id 'W7654321' appears in no tool result or input",
            "amount '99.99' appears in no tool result or input",
            "ticket '312' appears in no tool result or input",
            "reference 'ORD-48214' appears in no tool result or input",
            "iban 'DE44 5001 0517 5407 3249 31' appears in no tool result or input",
        )
    )


def test_ids_must_match_whole_tokens() -> None:
    ctx = OutputContext(sources=('{"order": 123456, "note": "W12345678"}',))

    verdict = GroundingGuard().check("order 12345, order #W1234567", ctx)

    assert [f.preview for f in verdict.findings] == ["12345", "W1234567"]


def test_custom_patterns_and_actions() -> None:
    guard = GroundingGuard(
        {
            "sku": (r"\bSKU-\d+\b", r"\bitem (?P<id>\d+)\b"),
            "credits": r"(?P<amount>\d+(?:\.\d+)?) credits",
        },
        action="block",
    )
    ctx = OutputContext(sources=('{"sku": "sku-77", "credits": 40, "item": 5}',))

    assert guard.check("SKU-77 (item 5) costs 40.0 credits", ctx).action == "allow"
    verdict = guard.check("SKU-78 costs 41 credits; SKU-78 again, item 6", ctx)
    assert verdict.action == "block"
    assert [(f.kind, f.preview) for f in verdict.findings] == [
        ("sku", "SKU-78"),
        ("credits", "41"),
        ("sku", "6"),
    ]


def test_amounts_in_compact_json_lists() -> None:
    ctx = OutputContext(sources=(json.dumps({"prices": [3, 19.9, 1200]}, separators=(",", ":")),))

    assert GroundingGuard().check("$3, $19.90 and $1,200.00", ctx).action == "allow"
    assert GroundingGuard().check("$19.95", ctx).action == "escalate"


def test_many_fabrications_are_counted_not_listed() -> None:
    output = " ".join(f"ORD-{n}" for n in range(1000, 1100))

    verdict = GroundingGuard().check(output, NO_CONTEXT)

    assert len(verdict.findings) == 100
    assert len(verdict.reasons) == 21
    assert verdict.reasons[-1] == "… and 80 more"


def test_grounding_cannot_redact() -> None:
    with pytest.raises(UserError, match="cannot redact"):
        GroundingGuard(action="redact")


# --- SchemaGuard ------------------------------------------------------------------------------


class Refund(BaseModel):
    order_id: str
    amount: float
    items: list[str]


REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^#W\\d+$"},
        "amount": {"type": "number", "minimum": 0},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["order_id", "amount"],
    "additionalProperties": False,
}
SCHEMAS = [pytest.param(Refund, id="pydantic"), pytest.param(REFUND_SCHEMA, id="jsonschema")]


def test_no_schema_allows_anything() -> None:
    assert SchemaGuard().check("not json at all", NO_CONTEXT).action == "allow"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_valid_structured_output_passes(schema: type[BaseModel] | dict[str, object]) -> None:
    output = '{"order_id": "#W1234567", "amount": 12.5, "items": ["mug"]}'

    assert SchemaGuard().check(output, OutputContext(schema=schema)).action == "allow"


def test_pydantic_errors_give_paths_not_values() -> None:
    output = json.dumps({"order_id": OPENAI_KEY, "amount": OPENAI_KEY, "items": ["a", 3]})

    verdict = SchemaGuard().check(output, OutputContext(schema=Refund))

    assert verdict.action == "block"
    assert verdict.reasons == snapshot(
        (
            "$.amount: Input should be a valid number, unable to parse string as a number",
            "$.items[1]: Input should be a valid string",
        )
    )


def test_jsonschema_errors_give_paths_not_values() -> None:
    hostile_key = "k" * 40 + "\n" + OPENAI_KEY
    output = json.dumps({"order_id": OPENAI_KEY, "amount": -1, "items": [3], hostile_key: 1})

    verdict = SchemaGuard(action="escalate").check(output, OutputContext(schema=REFUND_SCHEMA))

    assert verdict.action == "escalate"
    assert verdict.reasons == snapshot(
        (
            "$: does not satisfy additionalProperties",
            "$.amount: does not satisfy minimum=0",
            "$.items[0]: expected string",
            '$.order_id: does not satisfy pattern="^#W\\\\d+$"',
        )
    )


def test_keys_from_the_output_are_not_echoed() -> None:
    class Strict(BaseModel, extra="forbid"):
        a: int
        tags: dict[str, int] = {}

    output = json.dumps({"a": 1, OPENAI_KEY: 2, "tags": {"ok": "x", "evil\nkey": "y"}})

    verdict = SchemaGuard().check(output, OutputContext(schema=Strict))

    assert verdict.reasons == snapshot(
        (
            "$.tags.ok: Input should be a valid integer, unable to parse string as an integer",
            "$.tags[…]: Input should be a valid integer, unable to parse string as an integer",
            "$: unexpected property",
        )
    )


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize(
    "output",
    ["", "Sure! Here is the refund: {", "```json\n{}\n```", "\x00", "[1, 2]", "null"],
)
def test_outputs_that_are_not_the_object_block(
    schema: type[BaseModel] | dict[str, object], output: str
) -> None:
    verdict = SchemaGuard().check(output, OutputContext(schema=schema))

    assert verdict.action == "block"
    assert verdict.reasons


@pytest.mark.parametrize("schema", SCHEMAS)
def test_deeply_nested_json_gets_a_verdict(schema: type[BaseModel] | dict[str, object]) -> None:
    output = "[" * 100_000 + "]" * 100_000

    verdict = SchemaGuard().check(output, OutputContext(schema=schema))

    assert verdict.action == "block"
    assert any("recursion" in r or "nested too deeply" in r for r in verdict.reasons)


def test_a_recursive_schema_on_deep_input_gets_a_verdict() -> None:
    schema = {"type": "array", "items": {"$ref": "#"}}

    verdict = SchemaGuard().check("[" * 900 + "]" * 900, OutputContext(schema=schema))

    assert verdict.reasons == ("output is nested too deeply to validate",)


def test_huge_outputs() -> None:
    items = json.dumps({"order_id": "#W1", "amount": 1, "items": ["x"] * 200_000})
    ctx = OutputContext(schema=REFUND_SCHEMA)

    assert SchemaGuard(max_chars=2_000_000).check(items, ctx).action == "allow"
    assert SchemaGuard(max_chars=1000).check(items, ctx).reasons == (
        f"output is {len(items)} characters, over the limit of 1000",
    )


def test_a_flood_of_schema_errors_is_cut_short() -> None:
    schema = {"type": "array", "items": {"type": "string"}}

    verdict = SchemaGuard().check(json.dumps(list(range(10_000))), OutputContext(schema=schema))

    assert len(verdict.reasons) == 21
    assert verdict.reasons[0] == "$[0]: expected string"


def test_an_invalid_json_schema_is_a_developer_error() -> None:
    with pytest.raises(UserError, match="not a valid JSON schema"):
        SchemaGuard().check("{}", OutputContext(schema={"type": "nonsense"}))


# --- Guardrails (the composite) ---------------------------------------------------------------

ACTIONS: list[Action] = ["allow", "redact", "escalate", "block"]


@pytest.mark.parametrize("first", ACTIONS)
@pytest.mark.parametrize("second", ACTIONS)
def test_the_most_severe_action_wins(first: Action, second: Action) -> None:
    composite = Guardrails([Fixed("one", first, "one's text"), Fixed("two", second, "two's text")])

    verdict = composite.check("out", NO_CONTEXT)

    assert verdict.action == max(first, second, key=ACTIONS.index)
    assert [v.guardrail for v in verdict.results] == ["one", "two"]
    assert verdict.reasons == (f"one: {first}!", f"two: {second}!")


def test_redactions_chain() -> None:
    detector = pii_detector()
    composite = Guardrails([SecretsGuard(action="redact"), PiiGuard(detector)])

    verdict = composite.check(f"key {OPENAI_KEY} for jane@example.com", NO_CONTEXT)

    assert detector.seen == ["key [REDACTED:OPENAI_API_KEY] for jane@example.com"]
    assert verdict.action == "redact"
    assert verdict.text == "key [REDACTED:OPENAI_API_KEY] for [REDACTED:EMAIL_ADDRESS]"


def test_a_block_keeps_the_redacted_text_for_the_handoff() -> None:
    composite = Guardrails(
        [PiiGuard(pii_detector()), GroundingGuard(action="block"), SchemaGuard()]
    )

    verdict = composite.check("jane@example.com: order #W7654321", GROUNDED)

    assert verdict.action == "block"
    assert verdict.text == "[REDACTED:EMAIL_ADDRESS]: order #W7654321"
    assert [v.action for v in verdict.results] == ["redact", "block", "allow"]


def test_nothing_to_do() -> None:
    assert Guardrails([]).check("hi", NO_CONTEXT) == GuardrailVerdict(
        guardrail="guardrails", action="allow"
    )
    unchanged = Guardrails([Fixed("a", "escalate")]).check("hi", NO_CONTEXT)
    assert unchanged.text is None


def test_composites_nest() -> None:
    inner = Guardrails([PiiGuard(pii_detector())], name="inner")
    outer: Guardrail = Guardrails([inner, SecretsGuard(action="redact")], name="outer")

    verdict = outer.check(f"jane@example.com {OPENAI_KEY}", NO_CONTEXT)

    assert verdict.action == "redact"
    assert verdict.text == "[REDACTED:EMAIL_ADDRESS] [REDACTED:OPENAI_API_KEY]"
    assert verdict.results[0].results[0].guardrail == "pii"


class Broken:
    name = "broken"

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        raise RuntimeError(f"detector crashed on {output}")


class Misconfigured:
    name = "misconfigured"

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        raise UserError("fix your config")


def test_a_broken_guard_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    verdict = Guardrails([Broken(), Fixed("after", "allow")]).check("secret stuff", NO_CONTEXT)

    assert verdict.action == "block"
    assert verdict.reasons == (
        "broken: guardrail failed (RuntimeError); output held",
        "after: allow!",
    )
    assert "guardrail broken failed" in caplog.text


def test_a_misconfigured_guard_raises() -> None:
    with pytest.raises(UserError, match="fix your config"):
        Guardrails([Misconfigured()]).check("x", NO_CONTEXT)


# --- hostile outputs --------------------------------------------------------------------------


def full_stack() -> Guardrails:
    return Guardrails([SecretsGuard(), PiiGuard(pii_detector()), GroundingGuard(), SchemaGuard()])


@pytest.mark.parametrize(
    "output",
    [
        "\x00" * 10_000,
        "jane@example.com\x00" + OPENAI_KEY + "\x00",
        "order #W１２３４５６７ costs ＄１２３ or ١٢٣ €",
        "🦀" * 5000 + "jane@example.com" + "\u202e" + "x",
        "-----BEGIN PRIVATE KEY-----" * 2000,
        "password=" * 5000,
        "a-" * 50_000 + "token: " + "eyJ" * 3000,
        "$" + "1," * 50_000,
        "ORD-" * 20_000,
        "<EMAIL_1>" * 10_000,
    ],
    ids=[
        "nul",
        "nul-mixed",
        "fullwidth",
        "emoji-rtl",
        "pem",
        "assign",
        "long-words",
        "amount",
        "prefix",
        "placeholders",
    ],
)
def test_hostile_outputs_get_a_verdict(output: str) -> None:
    verdict = full_stack().check(output, GROUNDED)

    assert verdict.action in ACTIONS
    assert len(verdict.results) == 4
    assert all(len(v.reasons) <= 21 for v in verdict.results)
    assert OPENAI_KEY not in " ".join(verdict.reasons)


def test_nul_bytes_survive_redaction() -> None:
    verdict = PiiGuard(pii_detector()).check("a\x00jane@example.com\x00b", NO_CONTEXT)

    assert verdict.text == "a\x00[REDACTED:EMAIL_ADDRESS]\x00b"


def test_previews_never_carry_control_characters() -> None:
    detector = RegexDetector({"SECRET": r"\n\n\x1b[a-z]{20}\n\x00"})

    verdict = SecretsGuard(detector, builtin=False).check(
        "\n\n\x1b" + "a" * 20 + "\n\x00", NO_CONTEXT
    )

    assert verdict.reasons == ("SECRET in output (???…aa??)",)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["jane@example.com", " ", "x", "@", ".", "<EMAIL_1>", "\x00", "é", "+44 20 7946 0958"]
        )
    ).map("".join)
)
def test_redacted_text_keeps_no_detected_value(output: str) -> None:
    detector = pii_detector()
    guard = PiiGuard(detector)

    verdict = guard.check(output, NO_CONTEXT)

    found = [output[s.start : s.end] for s in detector.detect(output)]
    if found:
        assert verdict.text is not None
        assert all(value not in verdict.text for value in found)
    else:
        assert verdict.action == "allow"


def test_guards_satisfy_the_protocol() -> None:
    guards: Sequence[Guardrail] = [
        PiiGuard(pii_detector()),
        SecretsGuard(),
        GroundingGuard(),
        SchemaGuard(),
        Guardrails([]),
    ]

    assert [g.name for g in guards] == ["pii", "secrets", "grounding", "schema", "guardrails"]


# --- with the real detector -------------------------------------------------------------------


def test_with_presidio_detector() -> None:
    from bosun.gateway.pii import PiiDetector

    detector = PiiDetector()
    stack = Guardrails([SecretsGuard(detector), PiiGuard(detector), GroundingGuard()])
    answer = (
        "Hi <EMAIL_1>, order #W1234567 ($1,234.50) ships Monday. "
        "Questions: support@example.com or +1 415 555 0132. "
        "Card 4111 1111 1111 1111 is on file."
    )

    verdict = stack.check(answer, GROUNDED)

    assert verdict.action == "redact"
    assert verdict.text == snapshot(
        "Hi <EMAIL_1>, order #W1234567 ($1,234.50) ships Monday. "
        "Questions: [REDACTED:EMAIL_ADDRESS] or [REDACTED:PHONE_NUMBER]. "
        "Card [REDACTED:CREDIT_CARD] is on file."
    )
    leak = stack.check(f"Your key is {OPENAI_KEY}", GROUNDED)
    assert leak.action == "block"
    assert [f.kind for f in leak.results[0].findings] == ["OPENAI_API_KEY"]
