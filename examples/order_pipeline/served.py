"""The order pipeline as the service and the CLI name it: ``--pipeline
examples.order_pipeline.served:orders``.

```bash
bosun pipeline run examples.order_pipeline.served:orders --input @request.json
bosun serve --pipeline examples.order_pipeline.served:orders     # POST /v1/pipelines/orders/runs
```

A function of no arguments (what ``--pipeline`` loads): it opens tau-bench's retail data
(``BOSUN_DATA_DIR``, else ``../shared/data`` beside the repository; read, never copied) into
an in-memory `RetailStore` for this process, and builds the pipeline with the scripted
policy, or every agent on ``BOSUN_ORDERS_MODEL`` (a model spec) when set. The store's changes
live as long as the process: this is a demonstration, not a shop.
"""

from __future__ import annotations

import os
from pathlib import Path

from bosun.errors import ConfigError
from bosun.models import infer_model
from bosun.orchestration import Pipeline
from examples.order_pipeline.pipeline import build
from examples.order_pipeline.retail import RetailStore, load_data

__all__ = ["orders"]

RETAIL = "agents/tau-bench/retail"


def orders() -> Pipeline:
    """The order pipeline over a fresh in-memory copy of the retail data."""
    root = Path(
        os.environ.get("BOSUN_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    directory = root / RETAIL
    if not (directory / "data").is_dir():
        raise ConfigError(
            f"the order pipeline reads tau-bench's retail data from {directory}, which is "
            "missing: set BOSUN_DATA_DIR to the shared datasets"
        )
    spec = os.environ.get("BOSUN_ORDERS_MODEL")
    model = infer_model(spec) if spec else None
    return build(RetailStore(load_data(directory)), model=model)
