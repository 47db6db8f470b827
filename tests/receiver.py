"""A real HTTP server on loopback that records the notifications it is sent."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    inbox: queue.Queue[Received] = field(default_factory=queue.Queue)
    # Status codes to answer with, in turn; 200 once they run out.
    statuses: list[int] = field(default_factory=list)

    def next(self, timeout: float = 10.0) -> Received:
        """The next notification; waits for the event, fails after ``timeout`` seconds."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no notification within {timeout} s") from None

    def nothing_queued(self) -> bool:
        return self.inbox.empty()


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``check()`` once it is truthy: for state a notification's sender records after
    the receiver has answered (delivery counters), which no event announces."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout} s"
            return value
        time.sleep(0.01)


@contextmanager
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            rec = holder["r"]
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if status < 300:
                rec.inbox.put(Received(self.path, dict(self.headers.items()), json.loads(raw)))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/notify")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()
