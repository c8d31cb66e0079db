"""Tunables of the gateway that are not (yet) in :class:`base.settings.Settings`.

Why a separate frozen dataclass: the protocol core takes plain numbers, the shell builds one
``GatewayConfig`` from ``Settings`` plus command-line overrides, and tests start gateways with
tight limits (a tiny buffer, a fast flush) without touching the environment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayConfig:
    """Every limit of one gateway process. Defaults suit the demo and the 10k-client bench."""

    host: str = "127.0.0.1"
    port: int = 8765
    jwt_secret: str = "dev-only-jwt-secret-change-me-in-production"
    origins: tuple[str, ...] = ()
    """Extra allowed ``Origin`` values; the gateway's own http://host:port and clients without Origin
    (non-browser) are always allowed."""
    max_message_bytes: int = 16_384
    """Largest websocket message a client may send; larger ones close the connection with 1009."""
    flush_interval_s: float = 0.25
    """Room updates are coalesced and sent at most once per interval (4 per second per room)."""
    like_interval_s: float = 0.2
    """Likes of one room are summed for this long before one Like event is produced."""
    action_rate_per_s: float = 20.0
    action_burst: int = 40
    """Actions (comment, like, order, pay, cancel) one user may send per second in one room, over all of
    its connections on this gateway, and the burst above that rate."""
    control_rate_per_s: float = 0.5
    control_burst: int = 10
    """``subscribe`` and ``renew`` frames per user (each subscribe costs a full snapshot)."""
    strike_burst: int = 10
    strike_rate_per_s: float = 0.2
    """Invalid or refused frames per user before its sockets are closed with 4009 (one forgiven per 5 s)."""
    invalid_penalty_s: float = 0.1
    """After an invalid frame, the socket's next frame is read this much later (the sender pays the delay)."""
    max_sockets_per_user: int = 16
    """Open connections per user on this gateway; more are closed with 4010."""
    dedupe_window_s: float = 300.0
    dedupe_capacity: int = 200_000
    """Client event_ids of comments and likes remembered per user and room, for this long, at most this many."""
    produce_timeout_ms: int = 30_000
    """An action not delivered to Kafka within this time is answered with an error, never an ack."""
    renew_ahead_s: float = 30.0
    """A connection is sent ``token_expiring`` this long before its token's ``exp`` (half-way for short tokens)."""
    history: int = 256
    """Updates kept per room and audience for resume; a client further behind gets a resync snapshot."""
    recent_comments: int = 30
    recent_alerts: int = 20
    buffer_high_water: int = 64 * 1024
    """Above this many unsent bytes a client is behind: it skips updates and catches up with a snapshot."""
    buffer_limit: int = 1024 * 1024
    """Above this many unsent bytes a client is dropped (close 4008)."""
    max_behind_s: float = 10.0
    """A client behind for longer than this is dropped (close 4008) even below ``buffer_limit``."""
    socket_send_buffer: int = 0
    """SO_SNDBUF of each client socket in bytes (0: the kernel's autotuning). Bounds kernel memory per
    client and makes a stalled client show up in the gateway's own buffer sooner."""
    lookback_s: float = 120.0
    """On start, read output topics from this far back so the first snapshot is not empty."""
    instance_id: str = ""
    """Names this gateway in its Kafka group id and sequence epoch; random when empty."""

    def allowed_origins(self, bound_port: int) -> frozenset[str | None]:
        """The websocket ``Origin`` allow-list: no Origin (apps, tools), our own page on the port actually
        bound (``port`` may be 0), and the configured extras."""
        own = {f"http://{h}:{bound_port}" for h in (self.host, "localhost", "127.0.0.1")}
        return frozenset({None, *own, *self.origins})
