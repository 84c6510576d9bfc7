"""A small helpdesk/CRM in its own SQLite file: customers, invoices, tickets, notes, drafts,
an outbox, refunds and a knowledge base.

It stands in for the systems a support team already has (Zendesk, HubSpot, Stripe, a mail
server): the agent's tools in `tools.py` are thin wrappers over `Helpdesk`. One connection
per call, WAL mode and ``BEGIN IMMEDIATE`` for writes, so tools running in worker threads
(bosun runs sync tools in threads) and several runs at once share the file safely.

Writes that come from a tool call carry its idempotency key (``ctx.idempotency_key``, stable
across crash replays) in a UNIQUE column: the same call replayed returns the first result
instead of writing twice.

Knowledge-base search uses SQLite FTS5 (bm25 ranking, diacritics folded) when this Python's
sqlite3 has it, and falls back to counting the query's words found in each article
(``instr``) otherwise; `Helpdesk.fts5` says which.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from examples.support_desk import seed_data

__all__ = ["Helpdesk", "HelpdeskError", "seed"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone TEXT,
    plan TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'business', 'enterprise')),
    lifetime_value_eur REAL NOT NULL,
    high_value INTEGER NOT NULL,
    country TEXT NOT NULL,
    language TEXT NOT NULL,
    payment_method TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    invoice_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES customers(account_id),
    issued TEXT NOT NULL,
    amount_eur REAL NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY,
    account_id TEXT,
    requester TEXT,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    team TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS drafts (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices(invoice_id),
    amount_eur REAL NOT NULL,
    reason TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS kb (
    article_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    language TEXT NOT NULL,
    tags TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5("
    "article_id UNINDEXED, title, tags, body, tokenize='unicode61 remove_diacritics 2')"
)
_WORD = re.compile(r"\w{2,}", re.UNICODE)
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has",
     "have", "how", "i", "in", "is", "it", "my", "of", "on", "or", "our", "the", "this", "to",
     "was", "we", "what", "when", "where", "why", "with", "you", "your")
)  # fmt: skip
KB_URL = "https://help.example.com/kb/{article_id}"
"""Where customers read an article."""


class HelpdeskError(Exception):
    """A request the helpdesk refuses (unknown ticket, amount over the refundable balance)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ticket_ref(ticket_id: int) -> str:
    """The ticket number customers see: ``T-1042``."""
    return f"T-{ticket_id}"


def parse_ticket_ref(ref: str) -> int:
    """``T-1042`` (or ``1042``) as the row id; `HelpdeskError` if it is neither."""
    match = re.fullmatch(r"\s*(?:T-)?(\d{1,9})\s*", ref, re.IGNORECASE)
    if match is None:
        raise HelpdeskError(f"{ref!r} is not a ticket number like T-1042")
    return int(match.group(1))


class Helpdesk:
    """The helpdesk in the SQLite file at `path` (created, not seeded, when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        """The SQLite file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self.fts5: bool = _try_fts5(conn)
            """Whether knowledge-base search uses FTS5 (else LIKE)."""

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                yield conn
        finally:
            conn.close()

    # --- customers ----------------------------------------------------------------------

    def customer(self, *, email: str = "", account_id: str = "") -> dict[str, Any] | None:
        """A customer by email (case-insensitive) or account id, with their last invoices."""
        with self._connect() as conn:
            if account_id.strip():
                row = conn.execute(
                    "SELECT * FROM customers WHERE account_id = ?", (account_id.strip().upper(),)
                ).fetchone()
            elif email.strip():
                row = conn.execute(
                    "SELECT * FROM customers WHERE email = ?", (email.strip(),)
                ).fetchone()
            else:
                return None
            if row is None:
                return None
            invoices = conn.execute(
                "SELECT i.invoice_id, i.issued, i.amount_eur, i.description, "
                "COALESCE((SELECT SUM(r.amount_eur) FROM refunds r "
                "WHERE r.invoice_id = i.invoice_id), 0) AS refunded_eur "
                "FROM invoices i WHERE account_id = ? ORDER BY issued DESC LIMIT 3",
                (row["account_id"],),
            ).fetchall()
        customer = dict(row)
        customer.pop("phone")  # the agent has no use for it: keep it out of the context
        customer["high_value"] = bool(customer["high_value"])
        customer["invoices"] = [dict(i) for i in invoices]
        return customer

    def recent_tickets(self, account_id: str, *, limit: int = 5) -> list[dict[str, Any]]:
        """The account's latest tickets, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, category, priority, team, status, summary, created_at FROM tickets "
                "WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                (account_id.strip().upper(), max(1, min(limit, 20))),
            ).fetchall()
        return [{"ticket_id": ticket_ref(r["id"]), **dict(r)} for r in rows]

    def ticket(self, ref: str) -> dict[str, Any] | None:
        """One ticket by its number (``T-1042``)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM tickets WHERE id = ?", (parse_ticket_ref(ref),)
            ).fetchone()
        return None if row is None else {"ticket_id": ticket_ref(row["id"]), **dict(row)}

    # --- knowledge base -----------------------------------------------------------------

    def search_kb(self, query: str, *, limit: int = 3) -> list[dict[str, Any]]:
        """The best-matching articles for the words of `query`."""
        words = [w for w in _WORD.findall(query.casefold()) if w not in _STOPWORDS][:12]
        if not words:
            return []
        with self._connect() as conn:
            if self.fts5:
                match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
                rows = conn.execute(
                    "SELECT k.article_id, k.title, k.language, k.body FROM kb_fts f "
                    "JOIN kb k ON k.article_id = f.article_id WHERE kb_fts MATCH ? "
                    "ORDER BY bm25(kb_fts, 0.0, 4.0, 3.0, 1.0) LIMIT ?",
                    (match, limit),
                ).fetchall()
            else:
                score = " + ".join(
                    "(instr(lower(k.title || ' ' || k.tags || ' ' || k.body), ?) > 0)"
                    for _ in words
                )
                rows = conn.execute(
                    f"SELECT k.article_id, k.title, k.language, k.body, ({score}) AS hits "
                    "FROM kb k WHERE hits > 0 ORDER BY hits DESC, k.article_id LIMIT ?",
                    (*words, limit),
                ).fetchall()
        return [
            {
                "article_id": r["article_id"],
                "title": r["title"],
                "language": r["language"],
                "text": r["body"],
                "url": KB_URL.format(article_id=r["article_id"]),
            }
            for r in rows
        ]

    # --- writes (idempotent by key) -----------------------------------------------------

    def create_ticket(
        self,
        *,
        key: str,
        category: str,
        priority: str,
        team: str,
        summary: str,
        account_id: str = "",
        requester: str = "",
    ) -> dict[str, Any]:
        """Open a ticket; the same `key` again returns the first ticket."""
        with self._connect(write=True) as conn:
            row = conn.execute(
                "SELECT id FROM tickets WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO tickets (account_id, requester, category, priority, team, "
                    "status, summary, created_at, idempotency_key) "
                    "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                    (
                        account_id.strip().upper() or None,
                        requester.strip() or None,
                        category,
                        priority,
                        team,
                        summary,
                        _now(),
                        key,
                    ),
                )
                ticket_id = int(cursor.lastrowid or 0)
                created = True
            else:
                ticket_id, created = int(row["id"]), False
        return {"ticket_id": ticket_ref(ticket_id), "team": team, "created": created}

    def add_note(self, *, key: str, ticket: str, body: str) -> dict[str, Any]:
        """Add an internal note to a ticket."""
        ticket_id = parse_ticket_ref(ticket)
        with self._connect(write=True) as conn:
            self._require_ticket(conn, ticket_id)
            conn.execute(
                "INSERT INTO notes (ticket_id, body, created_at, idempotency_key) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (ticket_id, body, _now(), key),
            )
            note = conn.execute("SELECT id FROM notes WHERE idempotency_key = ?", (key,)).fetchone()
        return {"note_id": int(note["id"]), "ticket_id": ticket_ref(ticket_id)}

    def save_draft(
        self, *, key: str, ticket: str, to: str, subject: str, body: str, language: str
    ) -> dict[str, Any]:
        """Store a reply draft on a ticket (nothing is sent)."""
        ticket_id = parse_ticket_ref(ticket)
        with self._connect(write=True) as conn:
            self._require_ticket(conn, ticket_id)
            conn.execute(
                "INSERT INTO drafts (ticket_id, to_address, subject, body, language, "
                "created_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (ticket_id, to, subject, body, language, _now(), key),
            )
            draft = conn.execute(
                "SELECT id FROM drafts WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return {"draft_id": f"D-{draft['id']}", "ticket_id": ticket_ref(ticket_id)}

    def send(self, *, key: str, ticket: str, to: str, subject: str, body: str) -> dict[str, Any]:
        """Send a reply: it goes to the outbox table, where a mail relay would pick it up."""
        ticket_id = parse_ticket_ref(ticket)
        with self._connect(write=True) as conn:
            self._require_ticket(conn, ticket_id)
            conn.execute(
                "INSERT INTO outbox (ticket_id, to_address, subject, body, sent_at, "
                "idempotency_key) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (ticket_id, to, subject, body, _now(), key),
            )
            conn.execute("UPDATE tickets SET status = 'pending' WHERE id = ?", (ticket_id,))
            sent = conn.execute(
                "SELECT id FROM outbox WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return {"message_id": f"M-{sent['id']}", "ticket_id": ticket_ref(ticket_id)}

    def refund(
        self, *, key: str, invoice_id: str, amount_eur: float, reason: str, destination: str
    ) -> dict[str, Any]:
        """Refund part or all of an invoice, never more than what is left of it."""
        with self._connect(write=True) as conn:
            done = conn.execute(
                "SELECT id, amount_eur FROM refunds WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if done is not None:
                return {"refund_id": f"R-{done['id']}", "amount_eur": done["amount_eur"]}
            invoice = conn.execute(
                "SELECT amount_eur FROM invoices WHERE invoice_id = ?", (invoice_id.strip(),)
            ).fetchone()
            if invoice is None:
                raise HelpdeskError(f"no invoice {invoice_id!r}")
            refunded = conn.execute(
                "SELECT COALESCE(SUM(amount_eur), 0) FROM refunds WHERE invoice_id = ?",
                (invoice_id.strip(),),
            ).fetchone()[0]
            left = round(float(invoice["amount_eur"]) - float(refunded), 2)
            if amount_eur > left + 1e-9:
                raise HelpdeskError(
                    f"invoice {invoice_id} has EUR {left:.2f} left to refund; "
                    f"EUR {amount_eur:.2f} is more than that"
                )
            cursor = conn.execute(
                "INSERT INTO refunds (invoice_id, amount_eur, reason, destination, created_at, "
                "idempotency_key) VALUES (?, ?, ?, ?, ?, ?)",
                (invoice_id.strip(), amount_eur, reason, destination, _now(), key),
            )
        return {"refund_id": f"R-{cursor.lastrowid}", "amount_eur": amount_eur}

    @staticmethod
    def _require_ticket(conn: sqlite3.Connection, ticket_id: int) -> None:
        if conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is None:
            raise HelpdeskError(f"no ticket {ticket_ref(ticket_id)}")

    # --- reading back (tests, the demo's summary) ---------------------------------------

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of one of the helpdesk's tables."""
        if table not in {"customers", "invoices", "tickets", "notes", "drafts", "outbox",
                         "refunds", "kb"}:  # fmt: skip
            raise HelpdeskError(f"no table {table!r}")
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]

    def new_tickets(self) -> list[dict[str, Any]]:
        """Tickets opened by tool calls (not seeded)."""
        return [t for t in self.rows("tickets") if t["idempotency_key"] is not None]


def _try_fts5(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute(_FTS)
    except sqlite3.OperationalError:  # this sqlite3 was built without FTS5
        return False
    return True


def seed(path: str | Path) -> Helpdesk:
    """Create the helpdesk at `path` with the seed data (a file that has it is left as is)."""
    desk = Helpdesk(path)
    with desk._connect(write=True) as conn:
        if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]:
            return desk
        for account, name, email, phone, plan, ltv, country, lang, pay in seed_data.CUSTOMERS:
            high_value = plan == "enterprise" or ltv >= seed_data.HIGH_VALUE_LTV_EUR
            conn.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account, name, email, phone, plan, ltv, int(high_value), country, lang, pay),
            )
            monthly = seed_data.ENTERPRISE_MONTHLY_EUR.get(account, seed_data.PLAN_PRICE_EUR[plan])
            if not monthly:
                continue
            for issued in seed_data.INVOICE_DATES:
                conn.execute(
                    "INSERT INTO invoices VALUES (?, ?, ?, ?, ?)",
                    (
                        f"INV-{issued[:7].replace('-', '')}-{account[4:]}",
                        account,
                        issued,
                        monthly,
                        f"{plan.title()} plan, {issued[:7]}",
                    ),
                )
        for number, ticket in enumerate(seed_data.PAST_TICKETS, start=1001):
            conn.execute(
                "INSERT INTO tickets (id, account_id, requester, category, priority, team, "
                "status, created_at, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (number, *ticket),  # the columns in `PAST_TICKETS`' order
            )
        for article_id, title, lang, tags, body in seed_data.KB_ARTICLES:
            conn.execute(
                "INSERT INTO kb VALUES (?, ?, ?, ?, ?)", (article_id, title, lang, tags, body)
            )
            if desk.fts5:
                conn.execute(
                    "INSERT INTO kb_fts (article_id, title, tags, body) VALUES (?, ?, ?, ?)",
                    (article_id, title, tags, body),
                )
    return desk
