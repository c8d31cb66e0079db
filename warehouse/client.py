"""One ClickHouse client per DSN per process: embedded chdb (``chdb:///abs/path``) or a server (``http(s)://``).

Both kinds are clickhouse-connect clients, so the rest of the warehouse speaks one API and one SQL
dialect whatever the DSN.

The embedded engine's rules shape how processes use it:

* chdb lets exactly ONE process open a data directory (a second fails with "Cannot lock file
  .../status"), and a process can host one path at a time.  So in the local stack exactly one
  process, the ClickHouse sink worker, owns and writes the embedded store.  Readers (the
  post-stream report) either run inside that process or open the directory after the writer has
  stopped.  With an ``http(s)://`` DSN to a ClickHouse server any number of processes connect.
* ``import chdb`` changes the working directory while it imports.  :func:`preload_chdb` imports it
  once and puts the working directory back; call it at start-up of any process that will use a
  ``chdb://`` DSN, before threads start, so that no other thread sees a moved cwd.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse, urlunparse

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: Database of the warehouse when the DSN names none.
DEFAULT_DATABASE = "livecommerce"

_clients: dict[str, Client] = {}
_lock = threading.Lock()
_chdb_loaded = False


class DsnError(ValueError):
    """The ClickHouse DSN is not one we can connect to."""


def check_dsn(dsn: str) -> str:
    """Return the DSN's scheme (``chdb``, ``http`` or ``https``) or raise DsnError saying what is wrong."""
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        if parsed.netloc or not parsed.path.startswith("/"):
            raise DsnError(f"embedded DSN must be chdb:///absolute/path, got {dsn!r}")
        return "chdb"
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise DsnError(f"server DSN needs a host: http(s)://user:password@host:port/database, got {dsn!r}")
        return parsed.scheme
    raise DsnError(f"unsupported ClickHouse DSN {dsn!r}: use chdb:///abs/path or http(s)://user:pw@host:port/db")


def database_of(dsn: str) -> str:
    """The warehouse database a DSN names: ``http://h:8123/<db>`` or ``chdb:///path?database=<db>``;
    :data:`DEFAULT_DATABASE` otherwise.  Connections do not select it (it may not exist before
    :func:`warehouse.migrate.migrate` creates it): every query names its database."""
    parsed = urlparse(dsn)
    if check_dsn(dsn) == "chdb":
        name = parse_qs(parsed.query).get("database", [""])[0]
    else:
        name = parsed.path.strip("/").split("/")[0]
    return name or DEFAULT_DATABASE


def _connect_dsn(dsn: str) -> str:
    """The DSN without its database part, so connecting never depends on the database existing."""
    parsed = urlparse(dsn)
    if check_dsn(dsn) == "chdb":
        return f"chdb://{parsed.path}"
    return urlunparse(parsed._replace(path=""))


def preload_chdb() -> None:
    """Import the embedded engine now, restoring the working directory that its import changes."""
    global _chdb_loaded
    if _chdb_loaded:
        return
    cwd = os.getcwd()
    try:
        import chdb  # noqa: F401
        import clickhouse_connect.driver._chdbclient  # noqa: F401
    finally:
        os.chdir(cwd)
    _chdb_loaded = True


def get_client(dsn: str) -> Client:
    """The process-wide client of ``dsn``, created on first use.

    Cached because an embedded engine can be opened once per process and because a server client
    keeps a connection pool worth reusing.  A ``chdb://`` directory is created if missing.
    """
    with _lock:
        client = _clients.get(dsn)
        if client is not None:
            return client
        scheme = check_dsn(dsn)
        import clickhouse_connect

        if scheme == "chdb":
            preload_chdb()
            os.makedirs(urlparse(dsn).path, exist_ok=True)
            client = clickhouse_connect.get_client(dsn=_connect_dsn(dsn))
        else:
            # No server session: the client is shared by threads, and session ids would make
            # concurrent queries fail with "session is locked".
            client = clickhouse_connect.get_client(dsn=_connect_dsn(dsn), autogenerate_session_id=False)
        _clients[dsn] = client
        return client


def close_client(dsn: str) -> None:
    """Close and forget the cached client of ``dsn`` (an embedded store is released for other processes
    only when the process ends; this frees the handle)."""
    with _lock:
        client = _clients.pop(dsn, None)
    if client is not None:
        client.close()
