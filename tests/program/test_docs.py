"""docs/programme.md's commands, run as written in a fresh folder (``dothi program send``,
which needs a national instance to send to, is run by test_national_and_provinces.py)."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from docx import Document

DOC = Path(__file__).resolve().parents[2] / "docs" / "programme.md"


def test_the_documented_commands_work(tmp_path: Path) -> None:
    block = re.search(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 5
    outputs = []
    for line in lines:
        args = shlex.split(line)
        assert args[0] == "dothi"
        done = subprocess.run([sys.executable, "-m", "dothi.cli", *args[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DOTHI_CONTEXT_FETCH": "false"})
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
    assert "13 tasks loaded" in outputs[0]
    assert "annual-2026: Báo cáo hằng năm về phát triển đô thị thông minh 2026, due " \
        "2026-12-15, 2 units" in outputs[1]
    assert "Weekly digest" in outputs[3] and "0/2 submitted" in outputs[3]
    doc = Document(io.BytesIO((tmp_path / "bao-cao-2026.docx").read_bytes()))
    assert len(doc.tables[0].rows) == 3  # the header and the two provinces
