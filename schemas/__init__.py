"""Every event type of livecommerce, its validation, topic and JSON Schema: one definition each."""

from schemas.base import SCHEMA_VERSION, normalize_text
from schemas.codec import ValidationError, decode, encode, validate
from schemas.events import (
    EVENT_TYPES,
    Alert,
    Comment,
    DeadLetter,
    Like,
    OrderAttempt,
    OrderResult,
    Payment,
    Presence,
    RoomCounters,
    SaleConfig,
    ScoredComment,
    SkuStock,
    StockUpdate,
)
from schemas.topics import INPUT_TOPICS, TOPICS, TopicSpec

__all__ = [
    "EVENT_TYPES",
    "INPUT_TOPICS",
    "SCHEMA_VERSION",
    "TOPICS",
    "Alert",
    "Comment",
    "DeadLetter",
    "Like",
    "OrderAttempt",
    "OrderResult",
    "Payment",
    "Presence",
    "RoomCounters",
    "SaleConfig",
    "ScoredComment",
    "SkuStock",
    "StockUpdate",
    "TopicSpec",
    "ValidationError",
    "decode",
    "encode",
    "normalize_text",
    "validate",
]
