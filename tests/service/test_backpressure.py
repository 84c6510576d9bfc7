"""`max_queue` under a burst: a real server, many concurrent submissions, the limit exact."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa
from api_harness import make_app

from bosun.config import ServiceSettings
from bosun.data.schema import runs
from servers import serve

LIMIT = 50
BURST = 200


async def _burst(url: str, key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/v1/runs",
                    json={"agent": "helper", "input": f"burst {i}"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                for i in range(BURST)
            )
        )


def test_max_queue_holds_exactly_under_a_burst(db_url: str) -> None:
    # No worker: nothing drains the queue, so every accepted run is still queued at the end.
    settings = ServiceSettings(poll_s=0.05, sweep_s=0.1, max_queue=LIMIT)
    app, store, keys = make_app(db_url, settings, embedded_worker=False)
    try:
        with serve(app) as url:
            responses = asyncio.run(_burst(url, keys["alice"]))
        with store.engine.connect() as conn:
            queued = conn.execute(
                sa.select(sa.func.count()).where(runs.c.status == "queued")
            ).scalar_one()
    finally:
        store.close()
    codes = sorted({r.status_code for r in responses})
    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert codes == [202, 429], codes
    assert queued == len(accepted) == LIMIT
    for response in refused:
        assert int(response.headers["Retry-After"]) >= 1
        assert "queue is full" in response.json()["detail"]
