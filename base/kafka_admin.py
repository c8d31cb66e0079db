"""Create (and for tests, delete) the project's Kafka topics from topic specs the caller passes.

The specs are the registry in :mod:`schemas.topics` (``schemas.TOPICS.values()``), but this module
takes them as an argument rather than importing them: ``base`` is the bottom layer and knows nothing
of the event schemas.  Anything with a ``.name`` (unprefixed) and a ``.config`` mapping will do.

Why up front: Faust does not create source topics, auto-creation is disabled on our broker, and the
partition count of a SKU-keyed topic is part of the locking design (key -> partition -> one owner).
So every topic is created explicitly with ``settings.partitions``, and an existing topic with a
different partition count is an error rather than something silently tolerated: changing it would
move keys to other partitions and break the single-owner guarantee for in-flight SKUs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from base.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient


class TopicError(RuntimeError):
    """Topics could not be created as specified; the message names the topics and the fix."""


class TopicSpecLike(Protocol):
    """What a topic spec must offer here: its unprefixed name and its topic configs."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class TopicPlan:
    """One topic as it must exist on the broker: full (prefixed) name, partitions, replication, configs."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_plans(settings: Settings, specs: Iterable[TopicSpecLike]) -> list[TopicPlan]:
    """Every spec's topic under ``settings``' prefix, partition count and replication factor."""
    if settings.partitions < 1 or settings.replication_factor < 1:
        raise ValueError("partitions and replication factor must be at least 1")
    return [
        TopicPlan(settings.topic(spec.name), settings.partitions, settings.replication_factor, dict(spec.config))
        for spec in specs
    ]


def partition_mismatches(plans: Iterable[TopicPlan], existing: Mapping[str, int]) -> list[str]:
    """Human-readable problems of topics that exist with a partition count other than planned."""
    return [
        f"{plan.name} has {existing[plan.name]} partitions, expected {plan.partitions}"
        for plan in plans
        if plan.name in existing and existing[plan.name] != plan.partitions
    ]


def _admin(settings: Settings) -> AdminClient:
    from base.kafka import make_admin

    return make_admin(settings)


def _ready_partition_counts(admin: AdminClient, names: Iterable[str], timeout: float) -> dict[str, int]:
    """Partition counts of those ``names`` whose every partition has a leader (i.e. usable now)."""
    metadata = admin.list_topics(timeout=timeout)
    counts: dict[str, int] = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            continue
        if topic.partitions and all(p.leader >= 0 and p.error is None for p in topic.partitions.values()):
            counts[name] = len(topic.partitions)
    return counts


def create_topics(settings: Settings, specs: Iterable[TopicSpecLike], timeout: float = 30.0) -> list[str]:
    """Create the topic of every spec (existing ones are fine) and wait until all have leaders.

    Returns the full topic names.  Raises :class:`TopicError` when a topic exists with another
    partition count, or creation fails, or the topics do not become usable within ``timeout``.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl

    plans = topic_plans(settings, specs)
    names = [plan.name for plan in plans]
    admin = _admin(settings)
    existing = _ready_partition_counts(admin, names, timeout)
    problems = partition_mismatches(plans, existing)
    if problems:
        raise TopicError(
            "existing topics do not match LC_PARTITIONS: " + "; ".join(problems)
            + ". Delete them (livecommerce down --delete-data) or set LC_PARTITIONS to their count."
        )
    missing = [plan for plan in plans if plan.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(p.name, num_partitions=p.partitions, replication_factor=p.replication_factor, config=p.config)
             for p in missing],
            request_timeout=timeout,
        )
        failures = []
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    failures.append(f"{name}: {exc.args[0].str()}")
        if failures:
            raise TopicError("could not create topics: " + "; ".join(failures))
    _wait_for(admin, names, timeout)
    return names


def _wait_for(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Block until metadata shows every topic with leaders: a producer right after us must not fail."""
    deadline = time.monotonic() + timeout
    while True:
        ready = _ready_partition_counts(admin, names, timeout=max(1.0, deadline - time.monotonic()))
        if len(ready) == len(names):
            return
        if time.monotonic() >= deadline:
            raise TopicError(f"topics not ready after {timeout:.0f} s: {sorted(set(names) - set(ready))}")
        time.sleep(0.1)


def delete_topics(settings: Settings, prefix: str | None = None, timeout: float = 30.0) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (default: ``settings.topic_prefix``).

    For tests and resets.  An empty prefix is refused: it would delete every topic on the broker.
    Returns the names deleted; waits for the deletion requests, not for the files to disappear.
    """
    prefix = settings.topic_prefix if prefix is None else prefix
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix (that is every topic)")
    admin = _admin(settings)
    names = sorted(name for name in admin.list_topics(timeout=timeout).topics if name.startswith(prefix))
    if not names:
        return []
    for future in admin.delete_topics(names, request_timeout=timeout).values():
        future.result()
    return names
