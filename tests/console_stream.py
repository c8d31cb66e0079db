"""A simulated stream with every order decided by the flash-sale pure core: the data path of the
console and report ground-truth tests, minus Kafka (the same code the workers run, in log order)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import Alert, OrderAttempt, OrderResult, Payment, SaleConfig, StockUpdate
from schemas.base import Event
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from simulator.truth import Truth
from streams.flash_sale.inventory import Inventory
from streams.flash_sale.risk import RiskConfig

SKU_KEYED = (SaleConfig, OrderAttempt, Payment)


@dataclass
class Decided:
    """Every valid event in wire order, the flash-sale job's outputs interleaved where it made them."""

    events: list[Event]
    truth: Truth

    def of(self, kind: type[Event] | tuple[type[Event], ...]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def results(self) -> list[OrderResult]:
        return self.of(OrderResult)  # type: ignore[return-value]

    @property
    def stock(self) -> list[StockUpdate]:
        return self.of(StockUpdate)  # type: ignore[return-value]

    @property
    def alerts(self) -> list[Alert]:
        return self.of(Alert)  # type: ignore[return-value]

    @property
    def room_keyed(self) -> list[Event]:
        """What a room-keyed job (the counters) reads: everything but the SKU-keyed inputs."""
        return [e for e in self.events if not isinstance(e, SKU_KEYED)]


def decided_stream(config: ScenarioConfig, risk: RiskConfig | None = None) -> Decided:
    sim = simulate(config)
    inventory = Inventory(risk or RiskConfig(spike_threshold=10))
    events: list[Event] = []
    for item in sim:
        if item.event is None:
            continue
        events.append(item.event)
        if isinstance(item.event, SKU_KEYED):
            inventory.handle(item.event)
            out, stock = inventory.take_outputs()
            events += [*out.results, *out.alerts, *stock]
    inventory.tick(config.end_ts + 3_600_000)  # the timer releases the holds nobody paid for
    out, stock = inventory.take_outputs()
    events += [*out.results, *out.alerts, *stock]
    return Decided(events, sim.truth)
