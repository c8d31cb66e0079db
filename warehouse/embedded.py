"""The embedded store's one-process rule, decided in one place for every command that opens it.

chdb lets ONE process open a data directory (it flocks ``<dir>/status``).  A command that opened
it while the sink holds it would fail deep inside the engine with "Cannot lock file"; instead,
``report``, ``migrate`` and ``reconcile`` ask :func:`busy_message` first and refuse with a message
that says what to do.  Pure parts (which path a DSN names, whether an engine error means "locked")
are separate from the one system call, so they are unit-tested without an engine.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import urlparse

BUSY_MESSAGE = (
    "error: the embedded ClickHouse store at {path} is open in another process (the sink worker?).\n"
    "An embedded store opens in one process at a time: stop the sink (`livecommerce down` or Ctrl-C the "
    "worker) and run the command again, or point LC_CLICKHOUSE_DSN at a ClickHouse server (http(s)://...)."
)


def store_path(dsn: str) -> Path | None:
    """The data directory of an embedded (``chdb://``) DSN; None for a server, which any number of
    processes may use at once."""
    parsed = urlparse(dsn)
    return Path(parsed.path) if parsed.scheme == "chdb" else None


def is_lock_error(exc: BaseException) -> bool:
    """Whether an error opening the engine means another process holds the directory (the check
    before opening can race with a sink that starts in between)."""
    text = str(exc)
    return "lock" in text.lower() or "Unable to open the chdb engine" in text


def locked_by_other_process(status: Path) -> bool:
    """Whether another process holds the flock on ``status`` (the engine's lock file)."""
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody has opened the store
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def embedded_store_busy(dsn: str) -> bool:
    """Whether another process holds the embedded store of ``dsn`` (never for a server DSN)."""
    path = store_path(dsn)
    return path is not None and locked_by_other_process(path / "status")


def busy_message(dsn: str) -> str | None:
    """What to tell the user when the embedded store of ``dsn`` is held by another process, else None."""
    if not embedded_store_busy(dsn):
        return None
    return BUSY_MESSAGE.format(path=store_path(dsn))
