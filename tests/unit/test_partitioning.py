"""Kafka's murmur2 partitioner in Python (streams.partitioning)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.partitioning import default_partition, murmur2


@pytest.mark.parametrize(
    ("data", "expected"),
    [  # the vectors of Kafka's own UtilsTest.testMurmur2
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_client(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@given(key=st.binary(max_size=80), partitions=st.integers(min_value=1, max_value=1000))
def test_every_key_maps_to_one_existing_partition(key: bytes, partitions: int) -> None:
    p = default_partition(key, partitions)
    assert 0 <= p < partitions
    assert default_partition(key, partitions) == p
