"""Prometheus metrics of the gateway (served on its own ``/metrics`` route)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("lc_gateway_connections", "Open websocket connections.")
ROOMS = Gauge("lc_gateway_rooms", "Rooms with state on this gateway.")
AUTH_FAILURES = Counter("lc_gateway_auth_failures_total", "Connections refused, by close code name.", ["reason"])
FRAMES_SENT = Counter("lc_gateway_frames_sent_total", "Frames written to clients, by kind.", ["kind"])
UPDATES_SKIPPED = Counter("lc_gateway_updates_skipped_total", "Room updates skipped for clients that are behind.")
SLOW_DROPPED = Counter("lc_gateway_slow_clients_dropped_total", "Clients dropped for not keeping up (4008).")
ACTIONS = Counter("lc_gateway_actions_total", "Client actions by type and outcome.", ["type", "outcome"])
CLIENT_ERRORS = Counter("lc_gateway_client_errors_total", "Error frames sent to clients, by code.", ["code"])
RECORDS_IN = Counter("lc_gateway_records_total", "Output-topic records applied, by topic.", ["topic"])
INVALID_IN = Counter("lc_gateway_invalid_records_total", "Output-topic records that failed validation.")
DEAD_LETTERS = Counter("lc_gateway_dead_letters_total", "Refused client frames written to the dead-letter topic.")
LIKES_PRODUCED = Counter("lc_gateway_likes_produced_total", "Coalesced like events produced (and likes in them).",
                         ["what"])
TASK_FAILURES = Counter("lc_gateway_task_failures_total", "Background task failures (each restarted or fatal).",
                        ["task"])
CLOSED = Counter("lc_gateway_closed_total", "Connections closed by the gateway, by reason.", ["reason"])
DUPLICATES = Counter("lc_gateway_duplicates_total", "Retried comments and likes answered without producing.",
                     ["type"])
RENEWALS = Counter("lc_gateway_renewals_total", "In-band token renewals, by outcome.", ["outcome"])
