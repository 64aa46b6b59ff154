"""`python -m standins.devhost serve --port N` as a separate process on a free port and a directory of its own, as a
newcomer runs it; `run(...)` runs a terminal command against it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevHostProcess:
    def __init__(self, local_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.local_dir = local_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("W365_", "AUTHORIZENET_", "DATAVERSE_"))}
        self.env.update(W365_LOCAL_DIR=str(local_dir), PYTHONUNBUFFERED="1")
        self.log = local_dir / "devhost.log"
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "DevHostProcess":
        self.local_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "standins.devhost", "serve", "--port",
                                             str(self.port)], cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the dev host stopped: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the dev host did not answer: {self.log.read_text()[-2000:]}")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A terminal command (`python -m standins.devhost ...` or any other) against this host."""
        # The commands find the host by W365_PUBLIC_BASE_URL, as a newcomer's terminal would with --port.
        env = {**self.env, "W365_PUBLIC_BASE_URL": self.base}
        return subprocess.run(list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

    def devhost(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "standins.devhost", *args, "--port", str(self.port))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
