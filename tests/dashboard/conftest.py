"""Fixtures of the dashboard tests: one ``bosun serve`` process for the directory (started
with the README's command, fed the support desk's emails), one headless Chromium (Debian's),
a fresh browser context per test. See `harness`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from harness import (
    ARTIFACTS,
    BIN,
    CHROMIUM_ARGS,
    EMAILS,
    HOSTILE,
    INBOX,
    ROOT,
    Served,
    free_port,
    serve_command,
)
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve-home")
    # The prompt console gates on three of the golden cases, so a gate takes seconds.
    golden = yaml.safe_load((ROOT / "examples/support_desk/golden.yaml").read_text("utf-8"))
    small = home.parent / "gate.yaml"
    small.write_text(yaml.safe_dump({"name": "support_desk-small", "cases": golden["cases"][:3]}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")}
    env.update(
        BOSUN_HOME=str(home),
        BOSUN_SERVICE__PORT=str(port),
        BOSUN_SERVICE__PROMPT_GATES=json.dumps(
            {"support_desk": {"agent": "support_desk", "dataset": str(small), "concurrency": 2}}
        ),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    process = subprocess.Popen(
        ["bash", "-c", f"exec {serve_command()}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, "".join(output)
        keys = [line.strip() for line in output if line.startswith("bsn_")]
        if keys:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
        assert time.monotonic() < deadline, "bosun serve did not start:\n" + "".join(output)
        time.sleep(0.2)
    server = Served(url=url, admin_key=keys[0], home=home, env=env, output=output)
    try:
        for name in EMAILS:
            server.runs[name] = server.post_email((INBOX / f"{name}.eml").read_bytes())
        server.runs["xss"] = server.post_email(HOSTILE)
        server.settle(list(server.runs.values()))
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


# Module scope, not session: while sync_playwright is open its event loop counts as running in
# the main thread, and every pytest-asyncio test after it fails ("Runner.run() cannot be
# called from a running event loop"). Each module starts Chromium once (~1 s).
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: apt-get install -y chromium (scripts/test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"dashboard screenshots: {ARTIFACTS}")
