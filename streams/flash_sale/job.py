"""The flash-sale job on the stream runtime: orders, payments and sale config in; answers out.

Each input partition's :class:`FlashSaleTask` adapts one pure
:class:`~streams.flash_sale.inventory.Inventory` (every decision lives there).  Partitioning is the
lock: orders, payments and sale config are keyed by ``sku_id`` with Kafka's murmur2 partitioner,
the range assignor hands partition *p* of all three to one worker, and the runtime's gate refuses
any message whose SKU hashes elsewhere.  Exactly once comes from the runtime (one transaction per
commit holds the answers, the stock updates, the changelog records and the input offsets); the
flash sale commits after every batch (``interval_ms=0``) because a buyer is waiting for the answer.

Why not a Faust agent: stock Faust creates two asyncio tasks per message and caps near 12k
events/s on these cores, while one hot SKU must take >= 20k decisions/s (docs/decisions/0001).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

from base.settings import Settings
from schemas import SaleConfig
from schemas.base import Event
from streams.flash_sale.inventory import Inventory
from streams.flash_sale.risk import RiskConfig
from streams.runtime.commit import CommitPolicy
from streams.runtime.job import Job, Output, Record
from streams.runtime.runner import RunnerConfig

#: Input topics, all keyed by sku_id; this job alone dead-letters their invalid messages.
INPUTS = ("orders", "payments", "sale-config")
CHANGELOG = "flash-sale-changelog"


def load_blocklist(settings: Settings) -> frozenset[str]:
    """User ids in ``<data_dir>/flash_sale_blocklist.txt`` (one a line, ``#`` comments), if present."""
    path = Path(settings.data_dir) / "flash_sale_blocklist.txt"
    if not path.exists():
        return frozenset()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line)


class FlashSaleTask:
    """One partition's inventory, seen through the runtime's Task protocol."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._outputs: list[Output] = []
        self._rejections: list[tuple[Event, str, str]] = []

    def process(self, events: list[Event], wall_ms: int) -> None:
        inventory = self.inventory
        for event in events:
            inventory.handle(event)  # type: ignore[arg-type]  # the gate admits the three input types only
        self._collect()

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        """The hold timer, only while nothing of this partition waits to be read (see Inventory.tick)."""
        if self.inventory.has_due(wall_ms) and caught_up():
            self.inventory.tick(wall_ms)
            self._collect()

    def _collect(self) -> None:
        out, stock = self.inventory.take_outputs()
        outputs = self._outputs
        outputs += [("order-results", r) for r in out.results]
        outputs += [("sale-config-applied", c) for c in out.applied_configs]
        outputs += [("stock", s) for s in stock]
        outputs += [("alerts", a) for a in out.alerts]
        self._rejections += [(cfg, "SaleConfigRejected", reason) for cfg, reason in out.config_errors]

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    def take_changes(self) -> list[Record]:
        return list(self.inventory.changed_records())

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        rejections, self._rejections = self._rejections, []
        return rejections


def flash_sale_job(risk: RiskConfig, settings: Settings) -> Job:
    grace = settings.payment_grace_ms

    def new_task(partition: int, records: list[Record]) -> FlashSaleTask:
        task = FlashSaleTask(Inventory.restore(records, risk, grace))
        del records
        gc.collect()
        gc.freeze()  # the restored state is long-lived: keep it out of every later collection
        return task

    return Job(
        name="flash-sale", inputs=INPUTS, owned=frozenset(INPUTS), new_task=new_task,
        changelog=CHANGELOG, static_membership=True, traced=frozenset({SaleConfig}),
        extra_consumer_config={"fetch.wait.max.ms": 20},  # an idle fetch returns within 20 ms, not 500
    )


#: Commit every batch: the answer is readable (read_committed) only after the commit.
RUNNER_CONFIG = RunnerConfig(
    policy=CommitPolicy(interval_ms=0, backlog_interval_ms=0),
    batch_size=10_000,
    poll_timeout_s=0.005,
    producer_overrides={
        "linger.ms": 2,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "none",  # CPU is the scarce resource here, not the network
    },
)

#: Each decision allocates a few small objects; the default gen-0 threshold (700) made the cyclic GC
#: scan them over and over: 200,000 measured ~40% more decisions per CPU second.
GC_THRESHOLD = (200_000, 20, 100)



def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker flash-sale``: run until SIGTERM/SIGINT; /metrics on ``web_port``."""
    from streams.runtime.run import run_job
    from streams.runtime.runner import Runner

    job = flash_sale_job(RiskConfig(blocklist=load_blocklist(settings)), settings)
    return run_job(settings, Runner(settings, job, worker_id, RUNNER_CONFIG), web_port, GC_THRESHOLD)
