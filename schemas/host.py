"""What a host action commands: the :class:`SaleConfig` an ``open_sale``, ``close_sale`` or ``restock``
becomes, and nothing for a pin.  Pure, so the gateway (which produces both) and the simulator (which
plays a host) derive the command the same way.

Why the SaleConfig reuses the action's ``event_id``: the audit record (topic ``host-actions``) and the
command (topic ``sale-config``) then name each other, and a host's retried click produces the same
SaleConfig, which the flash-sale job and the warehouse already treat as a re-delivery.
"""

from __future__ import annotations

from schemas.events import HostAction, SaleConfig

_SALE_VERB = {"open_sale": "open", "close_sale": "close", "restock": "restock"}


def sale_config_for(action: HostAction) -> SaleConfig | None:
    """The sale command of ``action``, or None for ``pin`` / ``unpin``.

    Terms the host left out take the SaleConfig defaults (one unit per viewer, a 300 s hold).
    Raises ValueError (from SaleConfig's own checks) when the terms do not make a valid command.
    """
    verb = _SALE_VERB.get(action.action)
    if verb is None:
        return None
    extra: dict[str, int] = {}
    if action.per_user_limit is not None:
        extra["per_user_limit"] = action.per_user_limit
    if action.reservation_ttl_s is not None:
        extra["reservation_ttl_s"] = action.reservation_ttl_s
    return SaleConfig(
        event_id=action.event_id,
        room_id=action.room_id,
        sku_id=action.sku_id,
        action=verb,  # type: ignore[arg-type]
        stock=action.stock if verb != "close" else None,
        price_cents=action.price_cents if verb == "open" else None,
        starts_at=action.starts_at if verb == "open" else None,
        ends_at=action.ends_at if verb == "open" else None,
        title=action.title if verb == "open" else None,
        ts=action.ts,
        **extra,
    )
