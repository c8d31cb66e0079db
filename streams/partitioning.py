"""Kafka's default partitioner (murmur2), to check that a key's events share one partition.

Why: the counters keep a room's state, and the flash-sale job a SKU's stock, with the partition
that holds its events, so every keyed topic must be produced with the same partitioner.  Java
clients, aiokafka/Faust and our own producers (librdkafka ``partitioner=murmur2_random``) use
murmur2; librdkafka's default (``consistent_random``, CRC32) puts a key elsewhere.  The counters
worker logs a misrouted room instead of silently splitting it in two; the flash-sale worker
dead-letters a misrouted SKU's message rather than give the SKU a second owner.
"""
from __future__ import annotations

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` as a signed 32-bit int (same results as the Java client)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    body = length - length % 4
    for i in range(0, body, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[body + 2] << 16
    if tail >= 2:
        h ^= data[body + 1] << 8
    if tail >= 1:
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
