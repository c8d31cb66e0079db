"""One settings object for every process, read from ``LC_*`` environment variables.

Why one object: the worker, the gateway, the simulator, the tests and docker-compose must agree on
the same broker, topic names and ClickHouse DSN.  Each field carries its environment variable name
and a one-line description in its metadata, so the README table and the docker-compose check are
derived from this file rather than kept in sync by hand.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


#: Quiet seconds that end a room's stream, unless ``LC_STREAM_GAP_S`` says otherwise.
DEFAULT_STREAM_GAP_S = 1800


def _setting(default: Any, env: str, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """All configuration of livecommerce. Build with :meth:`from_env`; override with :meth:`replace`."""

    data_dir: str = _setting(
        str(REPO_ROOT / ".lc"), "LC_DATA_DIR",
        "Where the local stack keeps Kafka logs, PID files and the embedded ClickHouse.",
    )
    kafka_bootstrap: str = _setting(
        "127.0.0.1:19092", "LC_KAFKA_BOOTSTRAP", "Kafka bootstrap servers (host:port[,host:port])."
    )
    kafka_port: int = _setting(
        19092, "LC_KAFKA_PORT", "Port of the local broker started by `livecommerce up` (loopback only)."
    )
    kafka_controller_port: int = _setting(
        19093, "LC_KAFKA_CONTROLLER_PORT", "KRaft controller port of the local broker (loopback only)."
    )
    kafka_heap: str = _setting("768m", "LC_KAFKA_HEAP", "Java heap (-Xmx) of the local broker.")
    kafka_brokers: int = _setting(
        1, "LC_KAFKA_BROKERS",
        "Nodes `livecommerce up` starts: 1, or 3 for a local cluster (RF 3, min ISR 2) on LC_KAFKA_PORT + 2i "
        "and LC_KAFKA_CONTROLLER_PORT + 2i.",
    )
    kafka_node_heap: str = _setting(
        "384m", "LC_KAFKA_NODE_HEAP", "Java heap (-Xmx) of each node of a multi-broker local cluster."
    )
    topic_prefix: str = _setting("lc.", "LC_TOPIC_PREFIX", "Prefix of every Kafka topic name.")
    partitions: int = _setting(
        3, "LC_PARTITIONS", "Partitions of each keyed topic (the unit of parallelism and of SKU locking)."
    )
    replication_factor: int = _setting(
        1, "LC_REPLICATION_FACTOR", "Replication factor of created topics (3 in production)."
    )
    clickhouse_dsn: str = _setting(
        "", "LC_CLICKHOUSE_DSN",
        "ClickHouse DSN: chdb:///path (embedded, default <data_dir>/clickhouse) or http(s)://user:pw@host:port/db.",
    )
    jwt_secret: str = _setting(
        "dev-only-jwt-secret-change-me-in-production", "LC_JWT_SECRET",
        "HMAC-SHA256 secret for gateway JWTs (at least 32 bytes). Set a real one in production.",
    )
    pseudonym_secret: str = _setting(
        "dev-only-pseudonym-key", "LC_PSEUDONYM_SECRET",
        "Key of the keyed hash that pseudonymises viewer ids before analytics.",
    )
    gateway_host: str = _setting("127.0.0.1", "LC_GATEWAY_HOST", "Bind address of the websocket gateway.")
    gateway_port: int = _setting(8765, "LC_GATEWAY_PORT", "Port of the websocket gateway and dashboard.")
    gateway_origins: str = _setting(
        "", "LC_GATEWAY_ORIGINS",
        "Extra allowed websocket Origins, comma-separated (the gateway's own page and Origin-less clients always are).",
    )
    gateway_flush_interval_s: float = _setting(
        0.25, "LC_GATEWAY_FLUSH_INTERVAL_S", "Seconds between coalesced updates of one room (0.25: 4 a second)."
    )
    gateway_like_interval_s: float = _setting(
        0.2, "LC_GATEWAY_LIKE_INTERVAL_S", "Seconds a room's likes are summed before one Like event is produced."
    )
    gateway_action_rate: float = _setting(
        20.0, "LC_GATEWAY_ACTION_RATE",
        "Actions per second one user may send in one room, over all its connections (token bucket rate).",
    )
    gateway_action_burst: int = _setting(
        40, "LC_GATEWAY_ACTION_BURST", "Token bucket burst of one user in one room, over all its connections."
    )
    gateway_max_sockets_per_user: int = _setting(
        16, "LC_GATEWAY_MAX_SOCKETS_PER_USER", "Open connections one user may hold on one gateway (close 4010 beyond)."
    )
    gateway_strike_burst: int = _setting(
        10, "LC_GATEWAY_STRIKE_BURST",
        "Invalid or refused frames one user may send (refilled one per 5 s) before its connection is closed (4009).",
    )
    gateway_dedupe_window_s: float = _setting(
        300.0, "LC_GATEWAY_DEDUPE_WINDOW_S",
        "Seconds a comment or like client event_id is remembered per user and room (retries answered, not produced).",
    )
    gateway_buffer_high_water: int = _setting(
        65536, "LC_GATEWAY_BUFFER_HIGH_WATER",
        "Unsent bytes above which a client is behind: it skips updates and catches up with a snapshot.",
    )
    gateway_buffer_limit: int = _setting(
        1048576, "LC_GATEWAY_BUFFER_LIMIT", "Unsent bytes above which a client is dropped (close 4008)."
    )
    gateway_max_behind_s: float = _setting(
        10.0, "LC_GATEWAY_MAX_BEHIND_S", "Seconds a client may stay behind before it is dropped (close 4008)."
    )
    sink_max_rows: int = _setting(
        50_000, "LC_SINK_MAX_ROWS", "The sink inserts once this many events are buffered (all tables together)."
    )
    sink_max_age_ms: int = _setting(
        1000, "LC_SINK_MAX_AGE_MS", "The sink inserts once its oldest buffered message is this old (ms)."
    )
    stream_gap_s: int = _setting(
        DEFAULT_STREAM_GAP_S, "LC_STREAM_GAP_S",
        "Quiet seconds after which a room's stream has ended: the sink then writes its report into "
        "<data_dir>/reports/<room>/ and publishes the room's benchmark (0 turns that off).",
    )
    worker_web_port: int = _setting(
        6066, "LC_WORKER_WEB_PORT",
        "Web port of a worker: Prometheus /metrics (and Faust's web views for the sentiment job), on 127.0.0.1; "
        "`--web-port` overrides it per worker, the demo gives each worker this + its index.",
    )
    max_message_bytes: int = _setting(
        16384, "LC_MAX_MESSAGE_BYTES", "Largest accepted event on the wire; larger ones are dead-lettered."
    )
    max_future_skew_ms: int = _setting(
        2_000, "LC_MAX_FUTURE_SKEW_MS",
        "Events stamped further in the future than this are dead-lettered (live events: seconds, not minutes).",
    )
    payment_grace_ms: int = _setting(
        3_000, "LC_PAYMENT_GRACE_MS",
        "A payment stamped before its hold's deadline still pays if it reaches Kafka within this after it.",
    )
    log_level: str = _setting("INFO", "LC_LOG_LEVEL", "Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: str = _setting("json", "LC_LOG_FORMAT", "Log format: json (one object a line) or console.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its ``LC_*`` variable, falling back to the documented default."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env and env[name] != "":
                raw = env[name]
                kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__)
                try:
                    values[f.name] = kind(raw) if kind else raw
                except ValueError as exc:
                    raise ValueError(f"{name} must be a number ({kind.__name__ if kind else ''}), got {raw!r}") from exc
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def topic(self, name: str) -> str:
        """Full Kafka topic name of a logical topic (``orders`` -> ``lc.orders``)."""
        return f"{self.topic_prefix}{name}"

    @property
    def effective_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{Path(self.data_dir).resolve() / 'clickhouse'}"

    @property
    def reports_dir(self) -> Path:
        """Where the sink writes the reports of ended streams and the gateway serves them from:
        ``<reports_dir>/<room>/<stream_id>.html``."""
        return Path(self.data_dir).resolve() / "reports"

    @property
    def stream_gap_ms(self) -> int:
        """The quiet time that separates two streams of a room, for every reader of the warehouse
        (the sink's reports, ``report``, ``benchmark``): ``LC_STREAM_GAP_S``, or its default when that
        is 0 (0 only turns the sink's automatic reports off; streams still need a gap to be told apart)."""
        return (self.stream_gap_s if self.stream_gap_s > 0 else DEFAULT_STREAM_GAP_S) * 1000

    @classmethod
    def documented(cls) -> list[tuple[str, str, str]]:
        """(env var, default, description) for every setting, for the README and docker-compose check."""
        return [(f.metadata["env"], str(f.default), f.metadata["doc"]) for f in fields(cls)]

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, to hand to child processes."""
        return {f.metadata["env"]: str(getattr(self, f.name)) for f in fields(self)}

