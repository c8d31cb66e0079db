"""Start a real gateway process and wait until it serves: for tests, the bench and ``livecommerce demo``.

Why a subprocess rather than a task in the caller's loop: the gateway must own its event loop (and a
CPU) the way it does in production, and two instances must be two processes for the two-gateway
order test to mean anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from base.settings import Settings


class GatewayProcess:
    """``with GatewayProcess(settings, "--flush-interval", "0.1") as gw: gw.url`` — stopped by PID on exit."""

    def __init__(self, settings: Settings, *extra_args: str, instance_id: str = "", log_path: Path | None = None):
        self.settings = settings
        self.extra_args = list(extra_args)
        self.instance_id = instance_id
        self._dir = Path(tempfile.mkdtemp(prefix="lc-gateway-"))
        self.log_path = log_path or self._dir / "gateway.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        port_file = self._dir / "port"
        cmd = [sys.executable, "-m", "livecommerce.cli", "gateway", "--port", "0", "--port-file", str(port_file)]
        if self.instance_id:
            cmd += ["--instance-id", self.instance_id]
        env = {**os.environ, **self.settings.as_env(), "LC_GATEWAY_HOST": "127.0.0.1"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*cmd, *self.extra_args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            if not self.port and port_file.exists():
                self.port = int(port_file.read_text())
            if self.port and self.health().get("status") == "ok":
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway not ready after {timeout} s:\n{self.log_tail()}")

    def health(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read() or b"{}"))
        except (OSError, ValueError):
            return {}

    def metrics(self) -> dict[str, float]:
        """The gateway's Prometheus samples as {'name{labels}': value}."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> GatewayProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
