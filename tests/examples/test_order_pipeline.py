"""The order pipeline example on tau-bench's retail store (the shared datasets).

- the 20 retail dev tasks, scripted policy, scored by tau-bench's rule: 20/20, and a wrong
  action would score 0 (the rule is not vacuous);
- the reviewer blocks a refund to a payment method that did not pay: nothing changes;
- the exception agent looks up an order id written without its '#';
- an out-of-stock item is substituted by policy, and the substitute is what is ordered.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bosun.data.store import Store
from bosun.orchestration import PipelineStatus
from examples.order_pipeline import RetailStore, load_data, load_tasks, run_tasks
from examples.order_pipeline.tau import expected_hash, intake, run_request

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from third_party import data_dir  # noqa: E402

RETAIL = "agents/tau-bench/retail"
pytestmark = pytest.mark.dataset(RETAIL)


@pytest.fixture(scope="module")
def retail() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    directory = data_dir() / RETAIL
    return load_data(directory), load_tasks(directory)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'orders.db'}")
    yield store
    store.close()


async def test_the_dev_tasks_pass_by_tau_benchs_rule(
    retail: tuple[dict[str, Any], list[dict[str, Any]]], db: Store
) -> None:
    data, tasks = retail
    assert len(tasks) == 20
    scores = await run_tasks(data, tasks, db)
    assert [s.task for s in scores if s.reward != 1.0] == []
    assert {s.status for s in scores} == {"completed"}
    # The rule is not vacuous: one wrong argument gives another database.
    task = copy.deepcopy(tasks[0])
    task["actions"][0]["kwargs"]["reason"] = "ordered by mistake"
    store = RetailStore(data)
    store.apply(task["actions"][0]["name"], task["actions"][0]["kwargs"])
    assert store.data_hash() != expected_hash(data, tasks[0])
    assert RetailStore(data).data_hash() != expected_hash(data, tasks[0])


def _refund_elsewhere(data: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """A return task, changed to refund a payment method of the customer that did not pay."""
    for task in tasks:
        for action in task["actions"]:
            if action["name"] != "return_delivered_order_items":
                continue
            order = data["orders"][action["kwargs"]["order_id"]]
            paid = order["payment_history"][0]["payment_method_id"]
            methods = data["users"][order["user_id"]]["payment_methods"]
            other = [m for m in methods if m != paid and "gift_card" not in m]
            if other:
                changed = copy.deepcopy(task)
                changed["actions"] = [copy.deepcopy(action)]
                changed["actions"][0]["kwargs"]["payment_method_id"] = other[0]
                return changed
    raise AssertionError("no return task has a second payment method")


async def test_the_reviewer_blocks_a_refund_that_breaks_the_policy(
    retail: tuple[dict[str, Any], list[dict[str, Any]]], db: Store
) -> None:
    data, tasks = retail
    task = _refund_elsewhere(data, tasks)
    store = RetailStore(data)
    result, _ = await run_request(store, intake(task), db)
    assert result.status is PipelineStatus.ESCALATED
    assert result.handoff is not None
    (failure,) = result.handoff["failures"]
    assert failure["stage"] == "fulfilment"
    assert "reviewer blocked return_delivered_order_items" in failure["reason"]
    assert "original payment method" in failure["reason"]
    # Stopped before the tool: nothing was written (the tool would have refused it too).
    assert store.writes == []
    assert store.data_hash() == RetailStore(data).data_hash()


async def test_the_exception_agent_restores_an_order_ids_hash(
    retail: tuple[dict[str, Any], list[dict[str, Any]]], db: Store
) -> None:
    data, tasks = retail
    task = tasks[0]
    loose = copy.deepcopy(task)
    loose["actions"][0]["kwargs"]["order_id"] = task["actions"][0]["kwargs"]["order_id"][1:]
    store = RetailStore(data)
    result, state = await run_request(store, intake(loose), db)
    assert result.status is PipelineStatus.COMPLETED, result.handoff
    assert state.rounds == {("validation", None): 1}
    assert store.data_hash() == expected_hash(data, task)  # the right order was cancelled


async def test_an_out_of_stock_item_is_substituted_by_policy(
    retail: tuple[dict[str, Any], list[dict[str, Any]]], db: Store
) -> None:
    data, tasks = retail
    task = next(
        t for t in tasks if [a["name"] for a in t["actions"]] == ["modify_pending_order_items"]
    )
    action = task["actions"][0]["kwargs"]
    wanted = action["new_item_ids"][0]
    order = data["orders"][action["order_id"]]
    old = next(i for i in order["items"] if i["item_id"] == action["item_ids"][0])
    gone = copy.deepcopy(data)
    variants = gone["products"][old["product_id"]]["variants"]
    variants[wanted]["available"] = False
    store = RetailStore(gone)
    result, state = await run_request(store, intake(task), db)
    assert result.status is PipelineStatus.COMPLETED, result.handoff
    assert state.rounds == {("payment", None): 1}
    ((name, arguments),) = store.writes
    substitute = arguments["new_item_ids"][0]
    assert name == "modify_pending_order_items"
    assert substitute not in (wanted, old["item_id"])
    assert variants[substitute]["available"]


def test_the_example_runs_from_the_cli(
    retail: tuple[dict[str, Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    """``bosun pipeline run examples.order_pipeline.served:orders``: the first dev task's
    request through the whole pipeline, in a process, on a SQLite home."""
    import json
    import os
    import subprocess

    _, tasks = retail
    request = tmp_path / "request.json"
    request.write_text(intake(tasks[0]).model_dump_json())
    ran = subprocess.run(
        [sys.executable, "-m", "bosun.cli.main", "pipeline", "run"]
        + ["examples.order_pipeline.served:orders", "--input", f"@{request}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "BOSUN_HOME": str(tmp_path / "home"), "COLUMNS": "80"},
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "orders: completed" in ran.stdout
    for stage in ("validation", "inventory", "fraud", "payment", "fulfilment"):
        assert any(
            line.startswith(stage) and "completed" in line for line in ran.stdout.splitlines()
        )
    pipeline_id = ran.stdout.split()[1]
    shown = subprocess.run(
        [sys.executable, "-m", "bosun.cli.main", "pipeline", "show", pipeline_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "BOSUN_HOME": str(tmp_path / "home")},
    )
    assert json.loads(shown.stdout)["status"] == "completed", shown.stderr
