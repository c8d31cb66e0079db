"""``livecommerce up --brokers 3``, ``status`` and ``down`` on a real three-node cluster.

Up starts three nodes with replicated topics, status shows every node and the active controller and
reports a killed node (exit 1), down stops every node without being told the cluster's size and leaves
no process behind (status exit 3).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _consecutive_free_ports(count: int) -> int:
    """A first port such that ``count`` consecutive loopback ports are free (held while checked)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        held = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livecommerce.cli", *args], env=env, capture_output=True,
                          text=True, timeout=400, check=False)


def _kafka_pids_in(path: Path) -> list[int]:
    """Live kafka.Kafka processes whose config file lies under ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if b"kafka.Kafka" in args and any(a.startswith(str(path).encode()) for a in args) and state != "Z":
            found.append(int(proc.name))
    return found


def test_up_brokers_3_status_and_down_manage_every_node(tmp_path: Path) -> None:
    first = _consecutive_free_ports(6)
    env = {**os.environ, "LC_DATA_DIR": str(tmp_path), "LC_KAFKA_PORT": str(first),
           "LC_KAFKA_CONTROLLER_PORT": str(first + 1), "LC_KAFKA_NODE_HEAP": "384m", "LC_LOG_FORMAT": "console"}
    cluster_dir = tmp_path / "kafka-cluster"
    try:
        up = _cli(env, "up", "--brokers", "3")
        assert up.returncode == 0, up.stderr
        bootstrap = ",".join(f"127.0.0.1:{first + 2 * i}" for i in range(3))
        assert f"LC_KAFKA_BOOTSTRAP={bootstrap}" in up.stdout
        assert "replication factor 3, min.insync.replicas 2" in up.stdout

        status = json.loads(_cli(env, "status", "--json").stdout)
        assert status["state"] == "running" and status["brokers"] == 3
        assert [(n["node_id"], n["port"], n["up"]) for n in status["nodes"]] == [
            (i + 1, first + 2 * i, True) for i in range(3)
        ]
        assert status["controller"] in {1, 2, 3}
        assert len(status["topics"]) > 0
        pids = {n["node_id"]: n["pid"] for n in status["nodes"]}
        assert sorted(_kafka_pids_in(cluster_dir)) == sorted(pids.values())

        again = _cli(env, "up", "--brokers", "3", "--no-topics")
        assert again.returncode == 0 and "already running" in again.stdout

        os.killpg(pids[2], signal.SIGKILL)
        degraded = _cli(env, "status", "--json")
        assert degraded.returncode == 1
        assert [n["up"] for n in json.loads(degraded.stdout)["nodes"]] == [True, False, True]

        down = _cli(env, "down")  # no --brokers: the layout file says what runs
        assert down.returncode == 0, down.stderr
        assert _kafka_pids_in(cluster_dir) == []
        assert _cli(env, "status").returncode == 3
    finally:
        _cli(env, "down")
        for leftover in _kafka_pids_in(cluster_dir):
            os.killpg(leftover, signal.SIGKILL)
    assert _kafka_pids_in(cluster_dir) == []
