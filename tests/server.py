"""Start a real ``dothi serve --port 0`` process for tests that need one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_server(db: str | Path, *extra: str,
                   env: dict[str, str] | None = None) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dothi.cli", "serve", "--db", str(db), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DOTHI_CONTEXT_FETCH": "false", **(env or {})},
    )
    try:
        assert proc.stdout is not None
        # The server prints its address once the socket is bound; reading that line is
        # the event we wait for (no sleeping).
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"server did not start: {line}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
