"""The REST API (FastAPI). Every endpoint but the probes goes through the `Gateway`.

```
POST /v1/runs                      submit (202; queued for a worker; 429 + Retry-After when full)
POST /v1/inbox                     submit a raw RFC 5322 email (untrusted) to the inbox agent
GET  /v1/runs, /v1/runs/{id}       list (cursor pages) / one run: status, outcome, steps, cost
POST /v1/runs/{id}/cancel          cancel (200 done, 202 asked of the worker driving it)
GET  /v1/runs/{id}/events          server-sent events: each journal entry as it lands, text
POST /v1/runs/{id}/feedback        thumbs, corrections
GET  /v1/approvals, POST /v1/approvals/{id}          held calls; approve / reject / edit
GET  /v1/escalations, POST .../{id}/claim, .../resolve  people take and resolve escalations
GET  /healthz /readyz /metrics     liveness, readiness (store reachable), Prometheus
GET  /docs /redoc /openapi.json    the API's documentation, served whole (works offline)
/v1/kb/documents, /v1/kb/search     the knowledge base (bosun.service.kb_routes)
/v1/pipelines/{name}/runs, /v1/pipelines/runs/{id}   pipelines (bosun.service.pipeline_routes)
```

Errors are RFC 9457 problem details (`bosun.service.problems`). The API holds no state of its
own: any number of API processes can serve one store.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi_offline import FastAPIOffline

from bosun.config import ServiceSettings
from bosun.data.feed import JournalFeed
from bosun.data.queue import RunQueue
from bosun.data.store import Store
from bosun.errors import InvalidInput, RateLimited, UserError
from bosun.gateway.auth import METRICS_READ, Principal
from bosun.gateway.email import message_key, parse_email, parts_for, thread_key
from bosun.gateway.gateway import Gateway
from bosun.observe.metrics import RunMetrics
from bosun.runtime.state import RunStatus
from bosun.service.events import follow
from bosun.service.kb_routes import kb_router
from bosun.service.lanes import ApiLane, Lanes
from bosun.service.metrics import ServiceMetrics
from bosun.service.pipeline_routes import pipeline_router
from bosun.service.problems import NotReady, install_problem_handlers, problem_responses
from bosun.service.schemas import (
    ApprovalDecision,
    ApprovalOut,
    EscalationOut,
    EscalationResolution,
    FeedbackIn,
    FeedbackOut,
    Page,
    RunCreate,
    RunOut,
    RunSummary,
    StepOut,
)
from bosun.service.text_gate import SentenceGate
from bosun.service.worker import Worker
from bosun.trust import Content, Trust

if TYPE_CHECKING:
    from bosun.orchestration import Pipelines, PipelineWorker

__all__ = ["create_app"]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer bsn_...")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="bsn_... API key")
_MAX_EMAIL_BYTES = 5_000_000
_MAX_SEQ = 2**31 - 1  # the largest journal position (steps.seq is an INTEGER)
_DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts and styles
_RECOUNT_S = 0.5
_REFUSED_RECOUNT_S = 0.1


@dataclass
class Service:
    """What the routes share: the gateway, the service settings, the queue, and the embedded
    worker when there is one."""

    gateway: Gateway
    store: Store
    settings: ServiceSettings
    queue: RunQueue
    metrics: ServiceMetrics
    worker: Worker | None = None
    _admitting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _counted: int = 0
    """Runs queued at the last count, plus those admitted since (stored or on their way)."""
    _counted_at: float = -1.0
    _storing: int = 0
    """Admitted runs not stored yet."""
    _counter: ThreadPoolExecutor | None = None
    _feed: JournalFeed | None = None

    def journal_feed(self) -> JournalFeed:
        """Wakes followers of runs' journals (made on the serving loop, on first use)."""
        if self._feed is None:
            self._feed = JournalFeed(self.store)
        return self._feed

    def notify(self) -> None:
        """Wake the embedded worker: a run was queued."""
        if self.worker is not None:
            self.worker.notify()

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Admit one run to the queue for the body of the block, or raise 429 when the queue
        is at its limit.

        The decision and the count it rests on are taken under one lock, and each admission
        counts at once, before its run is stored: concurrent requests used to read the same
        cached count and all pass (50 allowed, 128 queued). The queue is counted in the store
        at most every `_RECOUNT_S` (and again before refusing, at most every `_REFUSED_RECOUNT_S`,
        since workers drain it); admissions still being stored are added to that count, so it
        can only run high, never low. Exact for one API process; several processes sharing a
        store may each admit up to the limit between two counts.
        """
        limit = self.settings.max_queue
        async with self._admitting:
            age = time.monotonic() - self._counted_at
            if (
                self._counted_at < 0
                or age > _RECOUNT_S
                or (self._counted >= limit and age > _REFUSED_RECOUNT_S)
            ):
                storing = self._storing  # read first: one stored meanwhile is counted twice
                depth = await self._count()
                self._counted, self._counted_at = depth + storing, time.monotonic()
            if self._counted >= limit:
                raise RateLimited(
                    f"the run queue is full ({self._counted} waiting, limit {limit}); retry later",
                    retry_after=max(1, math.ceil(self.settings.poll_s * 4)),
                )
            self._counted += 1
            self._storing += 1
        try:
            yield
        except BaseException:
            self._counted -= 1  # nothing was queued
            raise
        finally:
            self._storing -= 1

    async def _count(self) -> int:
        """The queue's depth, counted on a thread of the API's own: the default pool is
        where the embedded worker's runs read and write, and the count (taken under the
        admission lock) used to queue behind them, holding every submission for seconds."""
        if self._counter is None:
            self._counter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bosun-admit")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._counter, self.queue.depth)

    async def run_out(self, who: Principal, run_id: str) -> RunOut:
        """A run as the API shows it to `who`."""
        result = await self.gateway.result(who, run_id)
        return RunOut.build(result.row, result.steps, result)


def create_app(
    gateway: Gateway,
    *,
    store: Store,
    settings: ServiceSettings | None = None,
    worker: Worker | None = None,
    metrics: ServiceMetrics | None = None,
    pipelines: Pipelines | None = None,
    pipeline_worker: PipelineWorker | None = None,
) -> FastAPI:
    """The API over `gateway`. With `worker`, it runs embedded (``bosun serve``): started and
    stopped with the app, and woken at once when a run is queued; `pipeline_worker` the same
    for the `pipelines` served."""
    queue = RunQueue(store)
    if metrics is None:
        observer = gateway.runtime.observer
        shared = observer.registry if isinstance(observer, RunMetrics) else None
        metrics = ServiceMetrics(queue, registry=shared)
    service = Service(
        gateway=gateway,
        store=store,
        settings=settings or gateway.runtime.settings.service,
        queue=queue,
        metrics=metrics,
        worker=worker,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Before anything runs on a thread: requests get threads of their own (lanes.py).
        asyncio.get_running_loop().set_default_executor(Lanes())
        stop = asyncio.Event()
        serving = [
            asyncio.create_task(w.serve(stop)) for w in (worker, pipeline_worker) if w is not None
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*serving)
            if service._feed is not None:
                await service._feed.aclose()
            await gateway.runtime.aclose()
            if service._counter is not None:
                service._counter.shutdown(wait=False)

    # /docs and /redoc from files shipped in a package (fastapi-offline), not a CDN: the
    # service often runs where the internet is out of reach, and the pages were blank there.
    app = FastAPIOffline(
        title="bosun",
        version="1",
        summary="Run AI agents in production: submit runs, follow them, decide for them.",
        lifespan=lifespan,
        responses=problem_responses(401, 403, 422, 429),
        static_url=_DOCS_ASSETS,
        # Swagger UI otherwise sends the schema to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.bosun = service
    install_problem_handlers(app)
    app.add_middleware(ApiLane)
    service.metrics.instrument(app)
    app.include_router(router)
    app.include_router(kb_router(_limited))
    app.state.pipelines = pipelines
    app.include_router(pipeline_router(_limited))
    if service.settings.dashboard:
        from bosun.service.dashboard import mount

        mount(app, gateway=gateway, store=store, service=service.settings, notify=service.notify)
    return app


def _service(request: Request) -> Service:
    service: Service = request.app.state.bosun
    return service


Svc = Annotated[Service, Depends(_service)]


async def _principal(
    service: Svc,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    key = bearer.credentials if bearer is not None else api_key
    return await service.gateway.authenticate(key)


async def _limited(service: Svc, who: Annotated[Principal, Depends(_principal)]) -> Principal:
    if service.gateway.limiter is not None:
        await service.gateway.limiter.check_request(who)
    return who


Caller = Annotated[Principal, Depends(_limited)]
Submitter = Annotated[Principal, Depends(_principal)]  # submitting counts its own request

router = APIRouter()

# --- runs ---------------------------------------------------------------------------------


@router.post(
    "/v1/runs",
    status_code=202,
    response_model=RunOut,
    responses=problem_responses(400, 404, 409, 413, 415, 422),
    tags=["runs"],
)
async def submit_run(
    service: Svc,
    body: RunCreate,
    who: Submitter,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> RunOut:
    """Submit a run; a worker drives it. The same request again under an idempotency key
    returns its run; a different request (agent or input) under that key is a 409."""
    parts: str | list[Content]
    if isinstance(body.input, str):
        parts = body.input
    else:
        parts = [Content(text=p.text, trust=Trust(p.trust), source=p.source) for p in body.input]
    async with service.admitted():
        run_id = await service.gateway.submit(
            who,
            body.agent,
            parts,
            idempotency_key=body.idempotency_key or idempotency_key,
            conversation=body.conversation_id,
            thread=body.thread_id,
        )
    if body.stream:
        service.gateway.runtime.text.expect(run_id)
    service.notify()
    return await service.run_out(who, run_id)


@router.post(
    "/v1/inbox",
    status_code=202,
    response_model=RunOut,
    responses=problem_responses(400, 404, 409, 413, 415, 422),
    tags=["runs"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def submit_email(
    service: Svc,
    who: Submitter,
    request: Request,
    agent: Annotated[str | None, Query(max_length=200)] = None,
) -> RunOut:
    """Submit a raw RFC 5322 message as a run of the inbox agent (``?agent=``, else
    ``service.inbox_agent``, else the one agent served): the message is untrusted content. A
    message delivered twice (same Message-ID) is one run; another message under the same
    Message-ID is a 409. A reply is a turn of its conversation's thread (References /
    In-Reply-To, bound to the sender)."""
    name = agent or service.settings.inbox_agent
    if name is None:
        served = list(service.gateway.agents)
        if len(served) != 1:
            raise UserError(
                "no inbox agent: pass ?agent= or set service.inbox_agent "
                f"(served: {', '.join(served) or 'none'})"
            )
        name = served[0]
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_EMAIL_BYTES:
            raise InvalidInput(f"the message is over {_MAX_EMAIL_BYTES} bytes", status=413)
    parsed = await asyncio.to_thread(parse_email, bytes(raw))
    parts = parts_for(parsed, template=service.settings.inbox_instruction)
    async with service.admitted():
        run_id = await service.gateway.submit(
            who, name, parts, idempotency_key=message_key(parsed), thread=thread_key(parsed)
        )
    service.notify()
    return await service.run_out(who, run_id)


@router.get("/v1/runs", response_model=Page, tags=["runs"])
async def list_runs(
    service: Svc,
    who: Caller,
    status: RunStatus | None = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9a-f]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page:
    """The caller's tenant's runs, newest first."""
    rows = await service.gateway.list_runs(
        who,
        status=None if status is None else status.value,
        agent=agent,
        before=cursor,
        limit=limit + 1,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return Page(items=[RunSummary.of(r) for r in page], next_cursor=page[-1].id if more else None)


@router.get(
    "/v1/runs/{run_id}", response_model=RunOut, responses=problem_responses(404), tags=["runs"]
)
async def get_run(service: Svc, run_id: str, who: Caller) -> RunOut:
    """Status, outcome (through the output guardrails), steps and cost."""
    return await service.run_out(who, run_id)


@router.post(
    "/v1/runs/{run_id}/cancel",
    response_model=RunOut,
    responses={202: {"model": RunOut}, **problem_responses(404, 409)},
    tags=["runs"],
)
async def cancel_run(service: Svc, run_id: str, who: Caller, response: Response) -> RunOut:
    """Cancel a run: 200 when cancelled, 202 when its worker was asked to."""
    done = await service.gateway.cancel(who, run_id, lease_s=service.settings.lease_s)
    if not done:
        response.status_code = 202
    return await service.run_out(who, run_id)


async def _readable_run(service: Svc, run_id: str, who: Caller) -> str:
    """The run id, once the caller may read the run: 404 before any response starts."""
    await service.gateway.run_row(who, run_id)
    return run_id


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=EventSourceResponse,
    responses=problem_responses(404),
    tags=["runs"],
)
async def run_events(
    service: Svc,
    run_id: Annotated[str, Depends(_readable_run)],
    who: Caller,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^-?[0-9]+$")
    ] = None,
    text: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    """Each journal entry as it lands (id = its position, event = its kind, data = the
    step without its payload), then a final ``run`` event with the run as
    ``GET /v1/runs/{id}`` shows it, when the run finishes or waits for a person. With
    ``?text=true``, also ``text`` events (no id): the model's answer as it is written, a
    sentence at a time after the output guardrails (see `bosun.service.events`)."""
    # Clamped to the journal's positions (a 32-bit column): an id past any entry means
    # "nothing more", not a database error.
    after = -1 if last_event_id is None else max(-1, min(int(last_event_id), _MAX_SEQ))
    gateway = service.gateway
    gate = SentenceGate(lambda: gateway.text_check(run_id))
    async with follow(service.journal_feed(), gateway.runtime.text, run_id, text) as wake:
        while True:
            # The status first: a run seen stopped has all its entries in the journal read
            # next (the final entry and the status commit together), so none is missed.
            run = await asyncio.to_thread(service.store.get_run, run_id)
            for step in await asyncio.to_thread(service.store.journal, run_id, after=after):
                after = step.seq
                if (rest := gate.flush(step.seq)) is not None:
                    yield ServerSentEvent(data=rest, event="text")
                yield ServerSentEvent(
                    data=StepOut.of(step).model_dump(mode="json"), event=step.kind, id=str(after)
                )
            status = RunStatus(run.status)
            if status.terminal or status.parked:
                final = await service.run_out(who, run_id)
                yield ServerSentEvent(data=final.model_dump(mode="json"), event="run")
                return
            async for chunk in wake(after):
                if (released := await gate.add(chunk)) is not None:
                    yield ServerSentEvent(data=released, event="text")


@router.post(
    "/v1/runs/{run_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses=problem_responses(400, 404),
    tags=["runs"],
)
async def give_feedback(service: Svc, run_id: str, body: FeedbackIn, who: Caller) -> FeedbackOut:
    """Thumbs up/down, a corrected answer, a comment: stored with the run."""
    rating = {"up": 1, "down": -1, None: None}[body.rating]
    feedback_id = await service.gateway.feedback(
        who, run_id, rating=rating, correction=body.correction, comment=body.comment
    )
    return FeedbackOut(id=feedback_id, run_id=run_id)


# --- people -------------------------------------------------------------------------------


@router.get("/v1/approvals", response_model=list[ApprovalOut], tags=["people"])
async def list_approvals(
    service: Svc, who: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ApprovalOut]:
    """Calls held for a decision, oldest first."""
    return [ApprovalOut.of(a) for a in await service.gateway.approvals(who, limit=limit)]


@router.post(
    "/v1/approvals/{approval_id}",
    response_model=RunOut,
    responses=problem_responses(400, 404, 409),
    tags=["people"],
)
async def decide(service: Svc, approval_id: str, body: ApprovalDecision, who: Caller) -> RunOut:
    """Approve (optionally with edited arguments) or reject a held call; the run goes
    back to the queue."""
    if body.arguments is not None and body.decision == "reject":
        raise UserError("edited arguments go with an approval, not a rejection")
    held = await service.gateway.approval(who, approval_id)
    await service.gateway.decide(
        who,
        held.run_id,
        held.call_id,
        approved=body.decision == "approve",
        reason=body.reason,
        arguments=body.arguments,
        resume=False,
    )
    service.notify()
    return await service.run_out(who, held.run_id)


@router.get("/v1/escalations", response_model=list[EscalationOut], tags=["people"])
async def list_escalations(
    service: Svc, who: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[EscalationOut]:
    """Runs waiting for a person, newest first."""
    return [EscalationOut.of(r) for r in await service.gateway.escalations(who, limit=limit)]


@router.post(
    "/v1/escalations/{run_id}/claim",
    response_model=EscalationOut,
    responses=problem_responses(404, 409),
    tags=["people"],
)
async def claim_escalation(service: Svc, run_id: str, who: Caller) -> EscalationOut:
    """Take an escalation; nobody else can resolve it meanwhile (409)."""
    return EscalationOut.of(await service.gateway.claim(who, run_id))


@router.post(
    "/v1/escalations/{run_id}/resolve",
    response_model=RunOut,
    responses=problem_responses(400, 404, 409),
    tags=["people"],
)
async def resolve_escalation(
    service: Svc, run_id: str, body: EscalationResolution, who: Caller
) -> RunOut:
    """Hand the run back to the agent with a note, or close it with the note as its
    outcome."""
    if body.action == "hand_back":
        await service.gateway.hand_back(who, run_id, body.note, resume=False)
        service.notify()
    else:
        await service.gateway.close(who, run_id, body.note)
    return await service.run_out(who, run_id)


# --- probes -------------------------------------------------------------------------------


@router.get("/healthz", tags=["probes"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["probes"], responses=problem_responses(503))
async def readyz(service: Svc) -> dict[str, Any]:
    """Readiness: the store answers; with the queue's depth."""
    try:
        depth = await asyncio.to_thread(service.queue.depth)
    except Exception as exc:
        raise NotReady(f"the store does not answer: {type(exc).__name__}") from exc
    return {"status": "ok", "queued": depth}


@router.get("/metrics", tags=["probes"], response_class=Response)
async def prometheus(service: Svc, who: Caller) -> Response:
    """Prometheus metrics (needs the ``metrics:read`` scope)."""
    who.require(METRICS_READ)
    body, content_type = await service.metrics.render()
    return Response(content=body, media_type=content_type)
