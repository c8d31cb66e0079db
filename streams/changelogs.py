"""Every stateful job's changelog, so ``livecommerce topics`` creates them with the other topics.

Why up front as well as at a worker's start: in production the topics are created by a deploy step
(docker-compose's init container), with the replication the cluster needs, before any worker runs.
Each changelog gets its inputs' real partition count (partition p of the changelog is partition p's
state); an existing one with another count is an error, never silently used.
"""

from __future__ import annotations

from base.kafka import make_admin
from base.settings import Settings
from streams.counters import console_job as console
from streams.counters import job as counters
from streams.flash_sale import job as flash_sale
from streams.runtime.changelog import ensure_changelog, input_partition_count

#: (changelog, its job's input topics) of every job that keeps state.
STATEFUL_JOBS = (
    (counters.CHANGELOG, counters.INPUTS),
    (flash_sale.CHANGELOG, flash_sale.INPUTS),
    (console.CHANGELOG, console.INPUTS),
)


def create_changelogs(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create (or check) each changelog with its inputs' partition count; returns the full names."""
    admin = make_admin(settings)
    names = []
    for changelog, inputs in STATEFUL_JOBS:
        partitions = input_partition_count(admin, [settings.topic(t) for t in inputs], timeout)
        names.append(ensure_changelog(settings, settings.topic(changelog), partitions, admin, timeout))
    return names
