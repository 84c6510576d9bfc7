"""The Temporal engine: bosun runs as Temporal workflows (``bosun worker --engine temporal``;
install ``bosun[temporal]``). The built-in queue (`bosun.service.worker`) is the default.

```
API / gateway / dashboard   write runs and decisions to bosun's store, as with the queue
Dispatcher                  queued run -> signal-with-start workflow "bosun.run" (id = run id)
RunWorkflow                 a loop of step activities; waits for a `wake` signal when parked
RunSteps                    bosun.model_call | bosun.tool_calls | bosun.step = Runtime.step
```

bosun's store stays the system of record: each step is journaled there before its activity
returns, so the journal, the audit log, traces and the dashboard show a run the same
whichever engine drove it. Temporal holds only which run is at which step.
"""

from bosun.service.temporal.engine import TemporalEngine, connect

__all__ = ["TemporalEngine", "connect"]
