"""The commands of docs/citizens.md, run as written against a served demo city."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.server import running_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "citizens.md"


def test_the_documented_requests_work(tmp_path: Path) -> None:
    block = re.search(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert block is not None
    commands = block.group(1).replace("\\\n", " ").strip().splitlines()
    assert len(commands) == 3
    db = tmp_path / "city.db"
    subprocess.run([sys.executable, "-m", "dothi.cli", "demo", "--db", str(db), "--no-serve"],
                   check=True, capture_output=True)
    with running_server(db) as url:
        outputs = []
        for command in commands:
            done = subprocess.run(["bash", "-c", command.replace("http://127.0.0.1:1026", url)],
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (command, done.stderr)
            outputs.append(done.stdout)
    services, (made,) = json.loads(outputs[0]), json.loads(outputs[1])
    assert "Street flooding" in {s["service_name"] for s in services}
    listed = ET.fromstring(outputs[2])
    assert [r.findtext("service_request_id") for r in listed] == [made["service_request_id"]]
    assert listed.findtext("request/description") == "Ngập qua đầu gối"
