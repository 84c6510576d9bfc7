"""An email's thread: its conversation's root Message-ID, bound to the sender's address."""

from __future__ import annotations

from bosun.gateway.email import parse_email, thread_key

FIRST = (
    b"From: Jane <jane@example.com>\r\nSubject: Refund\r\nMessage-ID: <root@example.com>\r\n"
    b"\r\nHello"
)
REPLY = (
    b"From: Jane <JANE@example.com>\r\nSubject: Re: Refund\r\nMessage-ID: <two@example.com>\r\n"
    b"In-Reply-To: <r1@acme.test>\r\nReferences: <root@example.com>\r\n <r1@acme.test>\r\n"
    b"\r\nThanks"
)


def test_a_reply_shares_the_thread_of_the_message_it_answers() -> None:
    first, second = parse_email(FIRST), parse_email(REPLY)
    assert second.references == ("<root@example.com>", "<r1@acme.test>")
    assert thread_key(first) == thread_key(second) is not None
    # the agent is not shown the headers that thread it
    assert "References" not in second.render() and "r1@acme.test" not in second.render()


def test_only_in_reply_to_still_threads() -> None:
    only = REPLY.replace(b"References: <root@example.com>\r\n <r1@acme.test>\r\n", b"")
    answered = b"From: jane@example.com\r\nSubject: x\r\nMessage-ID: <r1@acme.test>\r\n\r\nhi"
    assert thread_key(parse_email(only)) == thread_key(parse_email(answered))


def test_a_stranger_quoting_the_conversation_gets_a_thread_of_their_own() -> None:
    forged = REPLY.replace(b"JANE@example.com", b"eve@evil.example")
    assert thread_key(parse_email(forged)) != thread_key(parse_email(FIRST))


def test_no_message_id_no_thread_and_junk_references_are_ignored() -> None:
    bare = b"From: jane@example.com\r\nSubject: x\r\n\r\nhi"
    assert thread_key(parse_email(bare)) is None
    junk = bare.replace(b"Subject", b"References: not an id at all\r\nSubject")
    assert parse_email(junk).references == ()
