"""A simulated live-selling stream: the load and the ground truth for every other part.

``simulate(ScenarioConfig(...))`` (pure, seeded, no I/O) yields :class:`~simulator.truth.Outgoing`
messages for Kafka: schema events (Presence, Comment, Like, SaleConfig, OrderAttempt, Payment, and
for the streamer's console HostAction, ProductImpression, ProductClick, Follow, Share) and,
optionally, deliberately invalid raw bytes.  ``Simulation.truth`` counts what was yielded.
``simulator.producer.send`` is the thin shell that paces and produces them; the CLI is
``livecommerce simulate``.

Semantics worth knowing before checking a pipeline against the truth:

- **Reproducible.** The same config (seed included) gives the same bytes in the same order.  Ids are
  derived from the seed and a per-room counter (``s<seed>-r<room>-c17``; rooms ``s<seed>-room<i>``,
  SKUs ``s<seed>-r<i>-sku<j>``, the first SKU of each room is the hot one), so two runs with the
  same seed into one system collide on purpose (idempotency), and different seeds never do.
- **Event time.** ``ts`` is event time.  Within a second of a room: leaves (0-99 ms), chat, likes,
  orders (100-899 ms), joins (900-999 ms), so nobody acts outside their presence.  A share
  (``late_share``) of messages is sent up to ``jitter_ms`` late; the wire order is by send time.
  At the end of the stream every remaining viewer leaves.
- **Orders.** Each buyer tries the SKU at a time drawn around the sale start: ~8 % too early,
  ~3 % after it ended.  ``order_id`` is unique per attempt; a ``retry_share`` of attempts is sent
  again with the same order_id and identical fields, 0.3-3 s later (a client retry: the inventory
  must answer it as a duplicate, not reserve twice).  5 % of buyers place a second, distinct order
  (over the per-user limit of 1 on the hot SKU); 10 % of hot-SKU orders ask for 2 units.
- **Payments.** The simulator does not read order results, so it cannot know which attempts were
  accepted.  For each distinct order_id it decides up front: ``pay_share`` pay (3 s + ~20 s later;
  8 % of them after the reservation TTL, to exercise expiry), ``cancel_share`` cancel (2-60 s later),
  the rest abandon.  So payments also arrive for rejected or sold-out orders, and the inventory must
  refuse those (``unknown_order``/``already_final``/``reservation_expired``); the truth's
  ``payments_paid`` is what was *sent*, an upper bound of what may be accepted as paid.
- **Invalid messages** go to the topic of the event they were spoiled from (never to
  ``sale-config``), keyed like it; the workers must dead-letter them.  Kinds: bad JSON, bad UTF-8,
  wrong shape, wrong type, out of range, missing field, unknown field, too long, oversize, future ts.
- **The console's funnel** (``simulator/funnel.py``).  Every join says its traffic source and whether
  the viewer already follows the room (followers stay followers when they come back).  The host
  (``HostAction``, id ``s<seed>-r<room>-host``) opens every sale at the announcement, pins the hot
  SKU then each other SKU in turn, restocks, closes and unpins; each open/close/restock is sent with
  the SaleConfig it commands (same ``event_id``).  A pin shows the product to everyone present and
  to each newcomer while pinned; viewers open the shelf (every SKU shown); some showings are tapped
  (CTR by placement and source).  Every order is preceded, in event time, by the buyer's tap on the
  SKU, and the tap by a showing of it.  Buyers are drawn weighted by their source's interest and by
  following, so sources convert differently.  Viewers follow and share at low rates.
- **Cut-off.** Anything that would happen after the stream's end (late payments, retries) is not
  sent and not counted.
"""

from simulator.config import ScenarioConfig
from simulator.generator import Simulation, simulate
from simulator.truth import Outgoing, Truth

__all__ = ["Outgoing", "ScenarioConfig", "Simulation", "Truth", "simulate"]
