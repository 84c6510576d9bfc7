"""Structured logs: one JSON object a line on stderr, carrying the run and trace it belongs to.

`configure_logging` routes both structlog and the standard library's `logging` (which is what
bosun's modules and most libraries use) through one structlog formatter, so every line has
the same shape. `bind_run` puts a run's id, trace id and root span id in context variables:
a line logged while the run is driven, by any logger, in any task or thread started from
there, carries them, and a log search by trace id finds the lines of one trace.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.typing import Processor

from bosun.observe.tracing import span_id_for, trace_id_for

__all__ = ["bind_run", "configure_logging"]


class _BosunHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (and replaces when called again)."""


def configure_logging(
    level: int | str = "INFO", *, json: bool = True, stream: TextIO | None = None
) -> None:
    """Log at `level` to `stream` (stderr): JSON lines, or readable lines with
    ``json=False``. Calling it again replaces the previous configuration."""
    shared: list[Processor] = [
        merge_contextvars,
        _trace_ids,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # so configuring again takes effect everywhere
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _BosunHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BosunHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def _trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A line bound to a run (the runtime binds ``run_id`` while it drives one) gets the
    run's trace and root span ids, unless they were bound explicitly."""
    run_id = event.get("run_id")
    if isinstance(run_id, str) and "trace_id" not in event:
        event["trace_id"] = trace_id_for(run_id)
        event.setdefault("span_id", span_id_for(run_id, "run"))
    return event


@contextmanager
def bind_run(
    run_id: str, *, trace_id: str | None = None, span_id: str | None = None
) -> Iterator[None]:
    """Within the block, log lines carry ``run_id``, ``trace_id`` and ``span_id`` (the run's
    root span). The ids default to those `bosun.observe.tracing` derives for a top-level run;
    a sub-agent's caller passes its parent's trace id."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "trace_id": trace_id or trace_id_for(run_id),
        "span_id": span_id or span_id_for(run_id, "run"),
    }
    with bound_contextvars(**values):
        yield
