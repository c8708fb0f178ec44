"""A real webhook receiver on 127.0.0.1 (http.server in a thread), as a user writes
one: it checks each POST's signature with :func:`corsadmin.verify_signature`,
records what came, and answers the statuses it was told to (then 200)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from corsadmin import verify_signature


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    event_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    status: int


@dataclass
class Receiver:
    """What the server got; ``statuses``: the answers to the first POSTs (then 200).
    A POST whose signature does not verify is answered 401."""

    secret: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    #: Seconds each POST takes to answer (so two senders' posts overlap).
    delay: float = 0.0
    #: Paths of GET requests (a redirected POST followed by a client would come as one).
    gets: list[str] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, verified: bool) -> int:
        with self.lock:
            if not verified:
                return 401
            return self.statuses.pop(0) if self.statuses else 200

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.event_id for r in self.received]

    def delivered_ids(self) -> list[str]:
        """The event ids answered 2xx, in order."""
        with self.lock:
            return [r.event_id for r in self.received if 200 <= r.status < 300]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            verified = verify_signature(
                receiver.secret, self.headers.get("X-Corsadmin-Signature"), raw
            )
            status = receiver.answer(verified)
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.received.append(
                    Received(
                        event_id=self.headers.get("X-Corsadmin-Event-Id", ""),
                        body=json.loads(raw),
                        headers=dict(self.headers.items()),
                        verified=verified,
                        status=status,
                    )
                )
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            with receiver.lock:
                receiver.gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_receiver(
    secret: str, statuses: list[int] | None = None, delay: float = 0.0
) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) for the ``with`` block."""
    receiver = Receiver(secret=secret, statuses=list(statuses or []), delay=delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
