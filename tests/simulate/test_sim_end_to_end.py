"""The simulator against a real ``dothi serve`` listening to Mosquitto, and ``dothi demo``
coming alive: the measures a simulated city sends are the values a query returns, and a
street light answers its command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import MQTT, needs_mosquitto
from tests.receiver import until
from tests.server import running_server


@needs_mosquitto
def test_simulated_city_feeds_a_real_server(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTHI_IOT_MQTT_URL", f"mqtt://{MQTT[0]}:{MQTT[1]}")
    with running_server(tmp_path / "city.db") as url:
        run = subprocess.run(
            [sys.executable, "-m", "dothi.cli", "simulate", "--devices", "300", "--rate",
             "2/s", "--duration", "3", "--url", url, "--seed", "5"],
            capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        sent = int(re.search(r"Sent (\d+) measures", run.stderr).group(1))  # type: ignore[union-attr]
        assert sent >= 1500
        # Everything sent is written (QoS 0 on loopback loses nothing here), and none of
        # the simulator's messages was refused. (The server hears every device on the
        # broker: other runs' messages, under other API keys, are refused and counted.)
        about = until(lambda: (a := httpx.get(f"{url}/iot/about").json())["ingestion"]
                      ["applied"] >= sent and a)
        assert about["devices"] == 300
        assert [p for p in about["ingestion"]["recentProblems"]
                if p["apikey"].startswith("dn-")] == []
        devices = httpx.get(f"{url}/ngsi-ld/v1/entities", params={
            "type": "Device", "count": "true", "limit": "1"})
        assert devices.headers["NGSILD-Results-Count"] == "300"
        lights = httpx.get(f"{url}/ngsi-ld/v1/entities", params={
            "type": "Streetlight", "q": "powerState", "limit": "1000",
            "options": "keyValues"}).json()
        assert lights and all(0 <= light["illuminanceLevel"] <= 1 for light in lights)


@needs_mosquitto
def test_demo_comes_alive_and_obeys_a_command(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # As on a fresh machine: the public may not provision devices or command them; the
    # demo's simulated devices come with their own key, and its users sign in.
    env = {**os.environ, "DOTHI_AUTH_ANONYMOUS": "public",
           "DOTHI_AUTH_ACCOUNTS": str(tmp_path / "accounts.yaml"),
           "DOTHI_AUTH_KEY_FILE": str(tmp_path / "auth.key")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dothi.cli", "demo", "--db", str(tmp_path / "demo.db"),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the server announces itself once it listens
            if "dothi serving on" in line:
                break
        url = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{url}/auth/token", data={
            "grant_type": "password", "username": "quantri",
            "password": "dothi-demo-2026"}).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        lamp = f"{url}/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:danang-bach-dang-001"
        until(lambda: httpx.get(f"{url}/iot/about", headers=admin).json()["ingestion"][
            "applied"] > 0, timeout=60)
        until(lambda: httpx.get(lamp).json().get("dim_status", {}).get("value")
              == "UNKNOWN", timeout=30)
        patch = {"type": "Property", "value": 0.25}
        assert httpx.patch(f"{lamp}/attrs/dim", json=patch).status_code == 401
        r = httpx.patch(f"{lamp}/attrs/dim", json=patch, headers=admin)
        assert r.status_code == 204, r.text
        until(lambda: httpx.get(lamp).json()["dim_status"]["value"] == "OK", timeout=30)
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
