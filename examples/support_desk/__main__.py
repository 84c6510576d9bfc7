"""``python -m examples.support_desk``: process the sample inbox once and print what happened.

A fresh data directory (a temporary one unless ``--data`` names one) gets a seeded helpdesk
and a SQLite store; every ``.eml`` goes through the gateway and the runtime on the scripted
policy model (or ``--model``), with the PII vault unless ``--no-pii``. ``bosun demo`` is the
presentation of the same run; this is the example on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import bosun
from bosun.gateway.pii import PiiDetector
from bosun.gateway.vault import PiiVault, VaultCipher
from examples.support_desk import MODEL_NAME, build_agent, load_inbox, seed
from examples.support_desk.inbox_run import InboxReport, helpdesk_summary, pipeline, process_inbox

INBOX = Path(__file__).with_name("inbox")


async def main(data: Path, *, inbox: Path, model: str | None, pii: bool) -> InboxReport:
    """Run the inbox in `data` and print a summary."""
    desk = seed(data / "helpdesk.db")
    agent = build_agent(desk.path, model=model)
    store = bosun.Store.open(f"sqlite:///{data / 'bosun.db'}")
    privacy = PiiVault(PiiDetector(), VaultCipher(os.urandom(32))) if pii else None
    messages, malformed = load_inbox(inbox)
    print(f"model: {model or MODEL_NAME + ' (scripted policy: deterministic, offline)'}")
    print(f"data: {data}   emails: {len(messages)}   unreadable: {len(malformed)}")
    gateway = pipeline(agent, store=store, privacy=privacy)
    async with gateway.runtime:
        report = await process_inbox(gateway, agent, messages)
    report.malformed = malformed
    for o in report.outcomes:
        detail = ", ".join(o.waiting_for) or (o.reason or "")
        print(f"  {o.name:<14} {o.status:<17} {detail[:90]}")
    print(f"runs: {dict(report.by_status())}")
    print(f"helpdesk: {helpdesk_summary(desk)}")
    print(
        f"{report.seconds:.2f} s in all; per email p50 {report.latency_ms(0.5):.0f} ms, "
        f"p95 {report.latency_ms(0.95):.0f} ms; audit chain "
        f"{'ok' if store.verify_audit().ok else 'BROKEN'}"
    )
    store.close()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m examples.support_desk")
    parser.add_argument("--data", type=Path, help="data directory (default: a new temporary one)")
    parser.add_argument("--inbox", type=Path, default=INBOX, help="directory of .eml files")
    parser.add_argument("--model", help="a real model instead of the scripted policy")
    parser.add_argument("--no-pii", action="store_true", help="run without the PII vault")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="support-desk-"))
    data.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(data, inbox=args.inbox, model=args.model, pii=not args.no_pii))
