"""A scripted stand-in for the OpenAI and Anthropic HTTP APIs, run as a subprocess by the tests.

Usage: ``python tests/models/fake_provider.py [--port 0]`` prints the port it listens on.

Control endpoints (JSON):

- ``POST /_script`` with ``{"replies": [reply, ...]}`` appends canned replies to a queue. A reply
  is ``{"status": 200, "headers": {...}, "json": <any>, "raw": "<text>", "delay": 0.0}``; ``json``
  is sent as ``application/json`` and ``raw`` is sent as-is (for malformed bodies). A streamed
  reply is ``{"sse": [{"event": "<name>", "data": <any>}, ...], "gap": 0.0, "cut": false}``:
  server-sent events (``data`` JSON-encoded unless a string), each flushed on its own, ``gap``
  seconds apart, after ``delay``; ``cut`` drops the connection before the last one. The request
  log records ``first_event_at`` (``time.time()`` when the first event was flushed).
- ``POST /_reset`` empties the queue and the request log.
- ``GET /_requests`` returns ``{"requests": [...], "pending": n}``: every provider request received
  (method, path, lower-cased headers, body parsed as JSON) and how many replies are still queued.

Every other ``POST`` (``/v1/chat/completions``, ``/v1/messages``) is logged and answered with the
next reply of the queue, or with a 599 naming the path when the queue is empty.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []


STATE = _State()


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-provider/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), {"content-type": "application/json"})

    def do_GET(self) -> None:
        if self.path != "/_requests":
            self._send_json(404, {"error": f"no GET {self.path}"})
            return
        with STATE.lock:
            snapshot = {"requests": list(STATE.requests), "pending": len(STATE.replies)}
        self._send_json(200, snapshot)

    def do_POST(self) -> None:
        raw = self._body()
        if self.path == "/_script":
            with STATE.lock:
                STATE.replies.extend(json.loads(raw)["replies"])
            self._send_json(200, {"queued": len(STATE.replies)})
            return
        if self.path == "/_reset":
            with STATE.lock:
                STATE.replies.clear()
                STATE.requests.clear()
            self._send_json(200, {})
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with STATE.lock:
            STATE.requests.append(
                {
                    "method": "POST",
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            reply = STATE.replies.popleft() if STATE.replies else None
            entry = STATE.requests[-1]
        if reply is None:
            self._send_json(599, {"error": {"message": f"fake_provider: no reply for {self.path}"}})
            return
        if "sse" in reply:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._stream(reply, entry)
            return
        self._reply(reply)

    def _stream(self, reply: dict[str, Any], entry: dict[str, Any]) -> None:
        # HTTP/1.0 without a length: the body ends when the connection closes.
        time.sleep(float(reply.get("delay", 0.0)))
        self.send_response(int(reply.get("status", 200)))
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        events = list(reply["sse"])
        if reply.get("cut"):
            events = events[:-1]
        for index, event in enumerate(events):
            if index:
                time.sleep(float(reply.get("gap", 0.0)))
            data = event["data"] if isinstance(event["data"], str) else json.dumps(event["data"])
            name = f"event: {event['event']}\n" if event.get("event") else ""
            self.wfile.write(f"{name}data: {data}\n\n".encode())
            self.wfile.flush()
            if index == 0:
                entry["first_event_at"] = time.time()
        self.close_connection = True

    def _reply(self, reply: dict[str, Any]) -> None:
        time.sleep(float(reply.get("delay", 0.0)))
        headers = {str(k): str(v) for k, v in reply.get("headers", {}).items()}
        if "raw" in reply:
            body = str(reply["raw"]).encode()
        else:
            body = json.dumps(reply.get("json")).encode()
            headers.setdefault("content-type", "application/json")
        # The client may have given up first (timeout tests): then there is no one to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(int(reply.get("status", 200)), body, headers)


def openai_stream(
    *pieces: str,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str = "stop",
    usage: tuple[int, int] = (11, 7),
    **reply: Any,
) -> dict[str, Any]:
    """A streamed chat completion as a script reply: one chunk per text piece, then each tool
    call fragment as given (``{"index", "id", "function": {"name", "arguments"}}``), the
    finish reason, a usage chunk and ``[DONE]``. `reply` adds ``delay``, ``gap``, ``cut``."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "data": {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake-1",
                "choices": [choice],
            }
        }

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events += [chunk({"tool_calls": [fragment]}) for fragment in tool_calls or ()]
    events.append(chunk({}, finish))
    prompt, completion = usage
    events.append(
        {
            "data": {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake-1",
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        }
    )
    events.append({"data": "[DONE]"})
    return {"sse": events, **reply}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
