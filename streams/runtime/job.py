"""What a job hands the runner: its inputs, its changelog and one Task per input partition.

Why a protocol and not a base class: the counters' and the flash-sale's cores are plain classes
tested without Kafka; a Task only adapts one of them to the four calls the runner makes.  The
runner never looks inside the state, and a core never sees a Kafka message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from schemas.base import Event

#: A (logical topic, event) pair a task wants produced; the topic's key field gives the message key.
Output = tuple[str, Event]

#: One changelog record: (key, value); a None value deletes the key (a compaction tombstone).
Record = tuple[bytes, bytes | None]


class Task(Protocol):
    """The state and decisions of ONE input partition (partition p of every input topic)."""

    def process(self, events: list[Event], wall_ms: int) -> None:
        """Apply a batch of admitted events, in offset order per topic."""

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        """Time-driven work on the wall clock (close windows, expire holds); called every loop.

        ``caught_up()`` says whether every input of this partition has been read to its end: a timer
        that must not overtake waiting input (a payment stamped before its hold's deadline) asks it.
        """

    def take_outputs(self) -> list[Output]:
        """Events to produce in the current transaction; clears them."""

    def take_changes(self) -> Iterable[Record]:
        """Changelog records of every key changed since the last call; clears them."""

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        """Admitted events the task refused as invalid: (event, error name, reason) -> dead letters."""


#: Rebuilds a partition's task from its changelog records (in offset order, later records win).
TaskFactory = Callable[[int, list[Record]], Task]


@dataclass(frozen=True)
class Job:
    """One stream job as the runner sees it.

    ``inputs`` are logical topic names (``schemas.TOPICS``); those in ``owned`` are validated by
    this job alone, so their bad messages become dead letters here, while bad messages of the other
    inputs (another job's outputs) are only counted.  ``changelog`` names the job's compacted state
    topic (None for a stateless job such as the sink).  ``static_membership`` keeps a restarted
    worker's partitions without a rebalance (the flash sale's answers must resume at once).
    """

    name: str
    inputs: tuple[str, ...]
    owned: frozenset[str]
    new_task: TaskFactory
    changelog: str | None = None
    static_membership: bool = False
    traced: frozenset[type[Event]] = frozenset()
    """Event types whose original message the runner keeps for the batch, so that a task's
    rejection (:meth:`Task.take_rejections`) dead-letters the bytes that were sent."""
    extra_consumer_config: dict[str, object] = field(default_factory=dict)
