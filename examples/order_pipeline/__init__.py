"""Teams of agents on tau-bench's retail store: an order pipeline with parallel stages, an
exception agent and a reviewer, on bosun's public API.

```
OrderRequest -> validation -> (inventory || fraud) -> payment -> fulfilment
                  exception agent: order ids without '#', items out of stock
                  reviewer agent:  every cancellation and refund, before it runs
```

Modules: `retail` (the store, tau-bench's rules), `tools` (its tools), `models` (the stages'
types), `policy` (the scripted models), `pipeline` (`build`), `tau` (the dev tasks, scored by
tau-bench's rule), `served` (`orders`: the pipeline for ``bosun serve --pipeline`` and
``bosun pipeline run``). ``python -m examples.order_pipeline`` runs the 20 dev tasks.
"""

from examples.order_pipeline.pipeline import build
from examples.order_pipeline.retail import RetailStore, load_data
from examples.order_pipeline.tau import TaskScore, intake, load_tasks, run_tasks
from examples.order_pipeline.tools import retail_tools

__all__ = [
    "RetailStore",
    "TaskScore",
    "build",
    "intake",
    "load_data",
    "load_tasks",
    "retail_tools",
    "run_tasks",
]
