"""The gateway, measured.

Prints
  1. PII precision / recall per entity type on pii/presidio-synth-dev.json of the third-party
     data (BOSUN_DATA_DIR, default ../shared/data), and the time to mask a 10 KB email
     (bench/gateway_pii.py);
  2. injection screening TPR / FPR on held-out parts of its injection/ and of
     bench/data/injection, and the time to screen a 10 KB email, target p95 <= 2 ms
     (bench/gateway_injection.py; run it alone for the leave-one-source-out tables);
  3. the gateway's own cost per submitted run (authenticate, authorize, rate limit, input
     checks, screening, PII masking) beside a bare `Runtime.start`, on SQLite.

    python bench/gateway.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway_injection
import gateway_pii

from bosun import Agent, Runtime, Store
from bosun.gateway.auth import ApiKeys, Roles
from bosun.gateway.gateway import Gateway
from bosun.gateway.injection import InjectionScreen
from bosun.gateway.pii import PiiDetector
from bosun.gateway.ratelimit import RateLimiter, RateLimitPolicy
from bosun.gateway.vault import PiiVault, VaultCipher
from bosun.testing import ScriptedModel, reply

EMAIL = (
    "Hi team, my order ORD-99812 arrived damaged. You can reach me at jane.doe@example.com or "
    "+1 415 555 0132. The card ending 4242 was charged twice, please refund one of them. "
) * 4


async def submit_cost(runs: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        agent = Agent(name="desk", model=ScriptedModel([reply("x")]))
        keys = ApiKeys(store, roles=Roles.builtin())
        key = keys.create("alice", tenant="acme", roles=["submitter"]).key
        detector = PiiDetector()
        detector.load()
        screen = InjectionScreen()
        async with Runtime(store=store) as bare:
            t0 = time.perf_counter()
            for _ in range(runs):
                await bare.start(agent, EMAIL)
            bare_ms = (time.perf_counter() - t0) * 1000 / runs
        privacy = PiiVault(detector, VaultCipher(os.urandom(32)))
        async with Runtime(store=store, agents=[agent], privacy=privacy, screen=screen) as runtime:
            gateway = Gateway(
                runtime=runtime,
                keys=keys,
                limiter=RateLimiter(RateLimitPolicy(principal_requests=f"{runs * 2}/minute")),
                screen=screen,
            )
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                principal = await gateway.authenticate(key)
                await gateway.submit(principal, "desk", EMAIL)
                times.append((time.perf_counter() - t0) * 1000)
        store.close()
    times.sort()
    median = statistics.median(times)
    print(f"\n== gateway cost per submitted run ({len(EMAIL)} character email, SQLite)")
    print(f"bare Runtime.start            {bare_ms:7.2f} ms")
    print(f"through the gateway, median   {median:7.2f} ms  (+{median - bare_ms:.2f} ms)")
    print(f"through the gateway, p99      {times[int(len(times) * 0.99) - 1]:7.2f} ms")


def main() -> None:
    print("== PII detection")
    gateway_pii.run()
    print("\n== injection screening")
    gateway_injection.run(loso=False)
    asyncio.run(submit_cost())


if __name__ == "__main__":
    main()
