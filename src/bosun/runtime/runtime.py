"""`Runtime`: starts, resumes and steers runs over a store. The entry point of the runtime plane."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from structlog.contextvars import bound_contextvars

from bosun.config import Settings, load_settings
from bosun.data.store import AuditEvent, NewRun, Store, WriteOp
from bosun.data.writer import GroupCommitWriter
from bosun.errors import (
    AgentNotFound,
    DuplicateRun,
    RunNotFound,
    UserError,
)
from bosun.runtime.agent import Agent
from bosun.runtime.budget import SpendGuard
from bosun.runtime.driver import RunDriver, next_step
from bosun.runtime.people import PeopleOperations
from bosun.runtime.recording import record
from bosun.runtime.results import JournalObserver, RunResult, RunSnapshot, StepResult
from bosun.runtime.starting import (
    Input,
    check_same_request,
    new_run_id,
    request_digest,
    started_payload,
    who_and_where,
)
from bosun.runtime.state import Entry, RunState, RunStatus
from bosun.runtime.streaming import TextHub
from bosun.runtime.threads import ThreadContexts
from bosun.tools.breaker import BreakerState
from bosun.tools.pipeline import ToolExecutor
from bosun.tools.privacy import Privacy
from bosun.tools.secrets import SecretsProvider
from bosun.trust import ContentScreen

__all__ = [
    "JournalObserver",
    "RunResult",
    "RunSnapshot",
    "Runtime",
    "StepResult",
    "new_run_id",
    "request_digest",
]


Grants = Iterable[str] | Literal["agent"]

_FRESH_LIMIT = 1024
"""States of runs started with queued=False kept for the resume that follows."""


class Runtime(PeopleOperations):
    """Runs agents durably over a store. Use as ``async with Runtime(...) as rt:``.

    `store` is a `Store`, a database URL, or None for the configured default. With
    ``durable=False`` nothing is written (for benchmarks and throwaway runs): runs can then
    be resumed only within this process.
    """

    def __init__(
        self,
        *,
        store: Store | str | None = None,
        agents: Sequence[Agent] = (),
        secrets: SecretsProvider | None = None,
        durable: bool = True,
        settings: Settings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        privacy: Privacy | None = None,
        screen: ContentScreen | None = None,
        spend: SpendGuard | None = None,
        observer: JournalObserver | None = None,
    ) -> None:
        """`privacy` masks PII in inputs and tool results (the gateway's `PiiVault`); `screen`
        scores untrusted tool output for prompt injection (the gateway's `InjectionScreen`);
        `spend` enforces spend caps across runs (`bosun.observe.cost.CostGuard`); `observer`
        sees every durable journal entry (`bosun.observe.metrics.RunMetrics`)."""
        self.settings = settings or load_settings()
        self.privacy = privacy
        self.screen = screen
        self.spend = spend
        self.observer = observer
        self.durable = durable
        self._store_arg = store
        self._store: Store | None = store if isinstance(store, Store) else None
        self._owns_store = not isinstance(store, Store)
        self._secrets = secrets
        self._sleep = sleep
        self._agents: dict[str, Agent] = {}
        self._executors: dict[str, ToolExecutor] = {}
        self._writer: GroupCommitWriter | None = None
        self._memory: dict[str, RunState] = {}
        self._fresh: dict[str, RunState] = {}
        self._active: dict[str, asyncio.Task[RunState]] = {}
        self._drivers: dict[str, RunDriver] = {}
        self._steppers: dict[str, RunDriver] = {}
        self._thread_contexts: ThreadContexts | None = None
        self.text = TextHub()
        """Text of model answers as it comes, for listeners in this process (SSE)."""
        for agent in agents:
            self.register(agent)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            if not self.durable:
                raise UserError("this runtime is not durable: it has no store")
            url = self._store_arg if isinstance(self._store_arg, str) else None
            self._store = Store.open(url or self.settings.resolved_database_url)
        return self._store

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for journal writes to land and release the store if this runtime opened it."""
        if self._writer is not None:
            await self._writer.aclose()
            self._writer = None
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def register(self, agent: Agent) -> None:
        """Make `agent` resumable by name in this runtime."""
        known = self._agents.get(agent.name)
        if known is not None and known is not agent:
            raise UserError(f"another agent named {agent.name!r} is already registered")
        self._agents[agent.name] = agent

    # --- starting and resuming ----------------------------------------------------------------

    async def run(self, agent: Agent, input: Input, **options: Any) -> RunResult:
        """Start a run and drive it until it finishes or parks. Options as for `start`."""
        # Written "running" with no lease: a worker sharing the store never claims a run that
        # this process is driving (see bosun.data.queue).
        state = await self._start(agent, input, status=RunStatus.RUNNING, **options)
        if state.next_seq == 0:  # an earlier run with the same idempotency key
            return await self.resume(state.run_id)
        return await self._drive(state.run_id, state)

    async def start(
        self,
        agent: Agent,
        input: Input,
        *,
        grants: Grants = "agent",
        principal: str | None = None,
        tenant: str | None = None,
        idempotency_key: str | None = None,
        gateway: Mapping[str, Any] | None = None,
        queued: bool = True,
        conversation: str | None = None,
        thread: str | None = None,
        parent: str | None = None,
        parent_call: str | None = None,
    ) -> str:
        """Record a new run, queued for a worker (`bosun.service.Worker`), and return its id;
        a repeated idempotency key returns the existing run's id. ``grants="agent"`` grants
        every scope the agent's tools declare, which suits a local operator; the gateway
        passes a principal's scopes instead, and its own decisions (screening, key id) as
        `gateway`, journaled and audited with the run's first entry. ``queued=False`` is
        for a caller that drives the run itself (`resume`) at once: no worker claims it.
        `conversation` groups runs of one conversation: an `InstructionSource` keys its
        choice of prompt version on it (the thread, else the run id, when absent).
        `thread` makes the run a turn of a thread: it starts from the thread's summary and
        its most recent turns (`bosun.memory.ThreadMemory`); threads live inside a tenant.
        `parent` names the run or pipeline that started this one (a pipeline stage, an agent
        called as a tool, a reviewer) and `parent_call` the step of it that did: the run joins
        its parent's trace and audit trail."""
        state = await self._start(
            agent,
            input,
            grants=grants,
            principal=principal,
            tenant=tenant,
            idempotency_key=idempotency_key,
            gateway=gateway,
            status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
            conversation=conversation,
            thread=thread,
            parent=parent,
            parent_call=parent_call,
        )
        return state.run_id

    async def _start(
        self,
        agent: Agent,
        input: Input,
        *,
        grants: Grants = "agent",
        principal: str | None = None,
        tenant: str | None = None,
        idempotency_key: str | None = None,
        gateway: Mapping[str, Any] | None = None,
        status: RunStatus = RunStatus.QUEUED,
        conversation: str | None = None,
        thread: str | None = None,
        parent: str | None = None,
        parent_call: str | None = None,
    ) -> RunState:
        self.register(agent)
        _check_lengths(
            principal=principal,
            tenant=tenant,
            idempotency_key=idempotency_key,
            conversation=conversation,
            thread=thread,
            parent_call=parent_call,
        )
        if parent is not None and not 0 < len(parent) <= 40:
            raise UserError(f"parent must be a run or pipeline id, got {parent!r}")
        if thread is not None and not self.durable:
            raise UserError("a run with a thread needs a durable runtime: its turns are stored")
        # A thread is a conversation: its runs keep one prompt version unless told otherwise.
        conversation = conversation if conversation is not None else thread
        digest = None
        if idempotency_key is not None:
            digest = request_digest(agent.name, input, thread=thread)
        if idempotency_key is not None and self.durable:
            existing = await asyncio.to_thread(
                self.store.find_run, tenant=tenant, idempotency_key=idempotency_key
            )
            if existing is not None:
                check_same_request(existing, agent.name, idempotency_key, digest)
                return RunState(run_id=existing.id, agent=existing.agent)
        scopes = sorted(agent.scopes if grants == "agent" else set(grants))
        run_id = new_run_id()
        now = time.time()
        resolved = None
        if agent.instructions is not None and not isinstance(agent.instructions, str):
            # A prompt registry reads its store: off the event loop.
            resolved = await asyncio.to_thread(
                agent.instructions.resolve, key=conversation or run_id
            )
        if self.privacy is None:
            payload = started_payload(self.privacy, agent, run_id, input, conversation, resolved)
        else:  # PII detection is CPU work: hundreds of KB must not stall the event loop
            payload = await asyncio.to_thread(
                started_payload, self.privacy, agent, run_id, input, conversation, resolved
            )
        text: str = payload["input"]
        payload.update(principal=principal, grants=scopes)
        payload.update(
            who_and_where(
                tenant=tenant,
                gateway=gateway,
                thread=thread,
                parent=parent,
                parent_call=parent_call,
            )
        )
        state = RunState(run_id=run_id, agent=agent.name)
        new_run = NewRun(
            id=run_id,
            agent=agent.name,
            status=status.value,
            input=text,
            grants=json.dumps(scopes),
            principal=principal,
            tenant=tenant,
            idempotency_key=idempotency_key,
            request_digest=digest,
            thread_id=thread,
            parent_id=parent,
            created_at=now,
        )
        steps = record(state, "run_started", payload, elapsed_s=0.0, audit="run_created")
        try:
            await self._write([new_run, *steps])
        except DuplicateRun as exc:  # another submission with the same key won the race
            assert idempotency_key is not None  # the unique index is on the key
            winner = await asyncio.to_thread(self.store.get_run, exc.run_id)
            check_same_request(winner, agent.name, idempotency_key, digest)
            return RunState(run_id=exc.run_id, agent=agent.name)
        if not self.durable:
            self._memory[run_id] = state
        elif status is RunStatus.RUNNING:
            # Started to be driven here at once (queued=False): the resume that follows takes
            # this state instead of reading back the journal it has just written.
            if len(self._fresh) >= _FRESH_LIMIT:
                self._fresh.pop(next(iter(self._fresh)))
            self._fresh[run_id] = state
        return state

    async def resume(self, run_id: str) -> RunResult:
        """Drive a run from where its journal ends. Parked and finished runs return as they are.

        Completed steps are read back, never executed again; a side-effecting call that was
        interrupted mid-flight is re-run only if the tool is idempotent, else its reconcile
        hook decides, else the run escalates.
        """
        return await self._drive(run_id)

    async def step(self, run_id: str, *, seq: int | None = None) -> StepResult:
        """Drive a run one step (`RunDriver.advance`: a model call, one response's tool calls,
        or the bookkeeping between them), durable when it returns: for an engine that
        schedules every step itself and may send the next one to another process (Temporal).

        `seq` is the journal position the previous step returned. When this process took that
        step and nothing was appended since, it continues from memory; otherwise (None, or
        the journal moved: another process, a person's decision) the journal is read back.
        """
        kept = self._steppers.pop(run_id, None)
        if kept is not None and (seq is None or kept.state.next_seq != seq):
            kept = None
        state = await self._drive_state(run_id, None, kept=kept, one_step=True)
        driver = self._steppers.get(run_id)
        agent = self._agents[state.agent]
        return StepResult(
            result=RunResult.of(state),
            next=next_step(state, agent) if driver is None else driver.next_step(),
            seq=state.next_seq,
        )

    async def _drive(self, run_id: str, state: RunState | None = None) -> RunResult:
        return RunResult.of(await self._drive_state(run_id, state))

    async def _drive_state(
        self,
        run_id: str,
        state: RunState | None,
        *,
        kept: RunDriver | None = None,
        one_step: bool = False,
    ) -> RunState:
        # One driving task per run in this process, registered before the first await, so
        # two resumes of the same run share it instead of racing to drive it twice.
        task = self._active.get(run_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._drive_task(run_id, state, kept=kept, one_step=one_step)
            )
            self._active[run_id] = task
            task.add_done_callback(lambda done: self._forget(run_id, done))
        return await asyncio.shield(task)

    async def _drive_task(
        self,
        run_id: str,
        state: RunState | None,
        *,
        kept: RunDriver | None = None,
        one_step: bool = False,
    ) -> RunState:
        driver = kept or await self._driver(run_id, state)
        self._drivers[run_id] = driver
        # Log lines written while the run is driven, by any logger, carry its id (and, with
        # bosun.observe.logs configured, its trace id).
        with bound_contextvars(run_id=run_id):
            if not one_step:
                return await driver.drive()
            state = await driver.advance()
        if driver.next_step() is not None:  # kept for the next step, if it comes back here
            if len(self._steppers) >= _FRESH_LIMIT:
                self._steppers.pop(next(iter(self._steppers)))
            self._steppers[run_id] = driver
        return state

    async def _driver(self, run_id: str, state: RunState | None) -> RunDriver:
        fresh = self._fresh.pop(run_id, None)
        if state is None:
            state = fresh if fresh is not None else await self._load(run_id)
        agent = self._agents.get(state.agent)
        if agent is None:
            raise AgentNotFound(
                f"run {run_id} belongs to agent {state.agent!r}, which this runtime was not given"
            )
        return RunDriver(
            agent=agent,
            state=state,
            model=agent.resolve_model(self.settings.model),
            executor=self._executor(agent),
            write=self._writer_for(agent.name),
            sleep=self._sleep,
            privacy=self.privacy,
            screen=self.screen,
            spend=self.spend,
            threads=self._threads(),
            hub=self.text,
        )

    def _forget(self, run_id: str, task: asyncio.Task[RunState]) -> None:
        if self._active.get(run_id) is task:
            del self._active[run_id]
            self._drivers.pop(run_id, None)
            self.text.finished(run_id)

    # --- people -----------------------------------------------------------------------------

    async def abandon(self, run_id: str) -> None:
        """Stop driving a run in this process without writing anything: another worker owns
        it now, or this one is shutting down and hands it back. Its journal stays as it is."""
        task = self._active.get(run_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def result(self, run_id: str) -> RunResult:
        """The run as its journal says now."""
        return RunResult.of(await self._load(run_id))

    async def state(self, run_id: str) -> RunState:
        """The run's full state (messages, labels, vault), folded from its journal."""
        return await self._load(run_id)

    async def audit(
        self, run_id: str, action: str, payload: Mapping[str, Any], *, actor: str | None
    ) -> None:
        """Append a decision taken outside the loop (an output guardrail, say) to the audit
        log, chained like every other row."""
        if not self.durable:
            return
        event = AuditEvent(
            action=action,
            payload=json.dumps(payload, ensure_ascii=False, default=str),
            created_at=time.time(),
            run_id=run_id,
            seq=None,
            actor=actor,
        )
        await self._write([event])

    # --- plumbing ---------------------------------------------------------------------------

    async def _load(self, run_id: str) -> RunState:
        if not self.durable:
            try:
                return self._memory[run_id]
            except KeyError:
                raise RunNotFound(f"no run with id {run_id!r} in this process") from None
        return (await self.snapshot(run_id)).state

    async def snapshot(self, run_id: str) -> RunSnapshot:
        """The stored run row, its journal and the state folded from it, read once."""
        if not self.durable:
            raise UserError("snapshot needs a store: this runtime keeps runs in memory")
        row, journal = await asyncio.to_thread(self.store.load, run_id)
        state = RunState(run_id=run_id, agent=row.agent)
        for step in journal:
            state.apply(Entry(step.seq, step.kind, json.loads(step.payload)))
        if row.status == RunStatus.QUEUED.value and state.status is RunStatus.RUNNING:
            state.status = RunStatus.QUEUED  # the fold cannot tell waiting for a worker
        return RunSnapshot(row=row, steps=journal, state=state)

    async def _append(
        self,
        state: RunState,
        kind: str,
        payload: dict[str, Any],
        *,
        status: RunStatus,
        audit: str,
        approver: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        ops = record(
            state,
            kind,
            payload,
            elapsed_s=state.elapsed_s,
            run_update={"status": status.value, **(extra or {})},
            audit=audit,
            approver=approver,
        )
        await self._write(ops)
        if self.observer is not None:
            self.observer.observe(state.agent, ops)

    def _writer_for(self, agent: str) -> Callable[[Sequence[WriteOp]], Awaitable[None]]:
        observer = self.observer
        if observer is None:
            return self._write

        async def write(ops: Sequence[WriteOp]) -> None:
            await self._write(ops)
            observer.observe(agent, ops)

        return write

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Make `ops` durable through the runtime's group-commit writer, in one transaction
        with whatever runs are writing now (for planes that journal beside runs: pipelines).
        Returns once they are committed."""
        await self._write(ops)

    async def _write(self, ops: Sequence[WriteOp]) -> None:
        if not self.durable:
            return
        if self._writer is None:
            self._writer = GroupCommitWriter(self.store)
        await self._writer.write(ops)

    def breakers(self) -> dict[tuple[str, str], BreakerState]:
        """The state of every tool breaker in this process, by (agent, tool)."""
        return {
            (agent, tool.name): breaker.state
            for agent, executor in self._executors.items()
            for tool in self._agents[agent].tools
            if (breaker := executor.breaker(tool.name)) is not None
        }

    def driving(self, run_id: str) -> bool:
        """Whether this process is driving the run now."""
        return run_id in self._active

    @property
    def agents(self) -> Mapping[str, Agent]:
        """Registered agents by name."""
        return dict(self._agents)

    def _threads(self) -> ThreadContexts | None:
        if not self.durable:
            return None
        if self._thread_contexts is None:
            self._thread_contexts = ThreadContexts(self.store, privacy=self.privacy)
        return self._thread_contexts

    def _executor(self, agent: Agent) -> ToolExecutor:
        executor = self._executors.get(agent.name)
        if executor is None:
            executor = ToolExecutor(agent.tools, secrets=self._secrets)
            self._executors[agent.name] = executor
        return executor


def _check_lengths(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and not 0 < len(value) <= 200:
            raise UserError(f"{name} must be 1 to 200 characters, got {len(value)}")
