"""Small helpers every bench shares: free loopback ports and a process's (and its threads') CPU time."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (held open together while chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds in a /proc ``stat`` line (a process's or one thread's)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to state cost per unit of work
    independently of how busy the shared machine is."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds so far of each thread of a process, summed by thread name (Linux
    /proc/<pid>/task); empty when the process is gone.  A JVM names its threads (``C2 CompilerThread0``,
    ``VM Thread``, ``data-plane-kafka-request-handler-3``), so this tells JIT compilation and
    collection apart from the broker's own work."""
    names: dict[str, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return names
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended while we looked
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        names[name] = names.get(name, 0.0) + _stat_cpu_seconds(stat)
    return names
