"""A small IMAP4rev1 server for tests: the subset `bosun.service.imap` speaks, over a real
socket, so the poller runs the stdlib `imaplib` client unchanged.

Commands: CAPABILITY, LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH <uid> (BODY.PEEK[]),
UID STORE <uid> +FLAGS (...), LOGOUT. Messages live in `ImapServer.messages` with their
flags; `fail_next` makes the next command answer NO (a flaky server).
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    raw: bytes
    flags: set[str] = field(default_factory=set)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else line.encode())

    def handle(self) -> None:
        imap = self.server.imap
        self.send("* OK [CAPABILITY IMAP4rev1] test server ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().strip().partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if imap.fail_next:
                imap.fail_next = False
                self.send(f"{tag} NO server busy\r\n")
                continue
            imap.commands.append(rest)
            if command == "CAPABILITY":
                self.send(f"* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
            elif command == "LOGIN":
                user, _, password = args.partition(" ")
                if (user, password.strip('"')) != (imap.user, imap.password):
                    self.send(f"{tag} NO [AUTHENTICATIONFAILED] wrong\r\n")
                else:
                    self.send(f"{tag} OK logged in\r\n")
            elif command == "SELECT":
                self.send(f"* {len(imap.messages)} EXISTS\r\n{tag} OK [READ-WRITE] selected\r\n")
            elif command == "UID":
                self.uid(tag, args)
            elif command == "LOGOUT":
                self.send(f"* BYE bye\r\n{tag} OK logged out\r\n")
                return
            else:
                self.send(f"{tag} BAD unknown command\r\n")

    def uid(self, tag: str, args: str) -> None:
        imap = self.server.imap
        sub, _, rest = args.partition(" ")
        sub = sub.upper()
        if sub == "SEARCH":
            unseen = [str(u) for u, m in sorted(imap.messages.items()) if "\\Seen" not in m.flags]
            self.send(f"* SEARCH {' '.join(unseen)}\r\n{tag} OK searched\r\n")
        elif sub == "FETCH":
            uid = int(rest.split()[0])
            message = imap.messages[uid]
            self.send(f"* {uid} FETCH (UID {uid} BODY[] {{{len(message.raw)}}}\r\n".encode())
            self.send(message.raw)
            self.send(f")\r\n{tag} OK fetched\r\n")
        elif sub == "STORE":
            uid_text, _, change = rest.partition(" ")
            flags = change.split(" ", 1)[1].strip("()").split()
            imap.messages[int(uid_text)].flags.update(flags)
            self.send(f"{tag} OK stored\r\n")
        else:
            self.send(f"{tag} BAD unknown UID command\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    imap: ImapServer


class ImapServer:
    """Serves on 127.0.0.1:<free port> in a thread; use as a context manager."""

    def __init__(self, *, user: str = "desk", password: str = "s3cret") -> None:
        self.user = user
        self.password = password
        self.messages: dict[int, Message] = {}
        self.commands: list[str] = []
        self.fail_next = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.imap = self
        self.port: int = self._server.server_address[1]

    def deliver(self, raw: bytes) -> int:
        uid = max(self.messages, default=0) + 1
        self.messages[uid] = Message(raw)
        return uid

    def __enter__(self) -> ImapServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
