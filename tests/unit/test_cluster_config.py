"""Pure parts of the local cluster: node ports, voters, replication, the layout file, the active controller."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.broker import replication_for, server_properties
from base.cluster import (
    NodeSpec,
    consecutive_nodes,
    coordinator_partition,
    java_string_hash,
    layout_json,
    nodes_on,
    parse_layout,
    quorum_leader,
    voters_of,
)


@given(port=st.integers(1024, 60000), brokers=st.integers(1, 5))
def test_consecutive_nodes_take_port_plus_two_i_and_never_share_a_port(port: int, brokers: int) -> None:
    nodes = consecutive_nodes(brokers, port, port + 1)

    assert [n.node_id for n in nodes] == list(range(1, brokers + 1))
    assert [(n.port, n.controller_port) for n in nodes] == [(port + 2 * i, port + 2 * i + 1) for i in range(brokers)]


def test_port_plans_that_overlap_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="LC_KAFKA_CONTROLLER_PORT"):
        consecutive_nodes(3, 19092, 19094)
    with pytest.raises(ValueError):
        consecutive_nodes(0, 19092, 19093)


@given(st.lists(st.integers(1024, 65535), min_size=1, max_size=5, unique=True))
def test_every_node_of_a_cluster_names_the_same_voters_and_its_own_listeners(ports: list[int]) -> None:
    nodes = nodes_on(ports, [p + 70000 for p in ports])  # plain numbers: nothing binds them here
    voters = voters_of(nodes)

    configs = [server_properties(f"/d/{n.node_id}", n.port, n.controller_port, n.node_id, voters) for n in nodes]

    assert len({c["controller.quorum.voters"] for c in configs}) == 1
    expected = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    assert configs[0]["controller.quorum.voters"] == expected
    for node, config in zip(nodes, configs, strict=True):
        assert config["node.id"] == str(node.node_id)
        assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.port}"


def test_three_nodes_replicate_three_times_with_min_isr_two_and_no_unclean_election() -> None:
    nodes = nodes_on([1, 2, 3], [4, 5, 6])
    props = server_properties("/d", 1, 4, 1, voters_of(nodes))

    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
        assert props[key] == "3", key
    for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "2", key
    assert props["unclean.leader.election.enable"] == "false"
    # a dead node is fenced (its leaders moved) well before Kafka's default 9 s session runs out
    assert int(props["broker.heartbeat.interval.ms"]) * 4 <= int(props["broker.session.timeout.ms"]) < 9000


@given(st.integers(1, 9))
def test_min_isr_leaves_room_for_one_dead_replica_and_replication_never_exceeds_the_nodes(nodes: int) -> None:
    replication, min_isr = replication_for(nodes)

    assert 1 <= min_isr <= replication <= nodes
    assert replication == min(3, nodes)
    assert min_isr == max(1, replication - 1)


def test_a_node_outside_the_voters_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of the voters"):
        server_properties("/d", 1, 2, 7, [(1, 2)])


@given(st.lists(st.builds(NodeSpec, st.integers(1, 9), st.integers(1, 65535), st.integers(1, 65535)), max_size=5))
def test_the_layout_file_reads_back(nodes: list[NodeSpec]) -> None:
    assert parse_layout(layout_json("abc", nodes)) == ("abc", nodes)


def test_the_active_controller_is_the_leader_at_the_highest_epoch() -> None:
    def state(leader: int, epoch: int) -> str:
        return json.dumps({"leaderId": leader, "leaderEpoch": epoch, "votedId": -1})

    assert quorum_leader([state(1, 4), state(2, 5), state(1, 4)]) == 2
    assert quorum_leader([state(-1, 6), state(3, 5)]) == 3  # an election in progress names nobody
    assert quorum_leader(["not json", state(-1, 1)]) is None
    assert quorum_leader([]) is None


def test_java_string_hash_matches_java() -> None:
    # Values of "".hashCode(), "a".hashCode(), "hello".hashCode(), "polygenelubricants".hashCode() in Java.
    assert [java_string_hash(t) for t in ("", "a", "hello", "polygenelubricants")] == [0, 97, 99162322, -2147483648]
    assert java_string_hash("日本") == 0x65E5 * 31 + 0x672C


@given(st.text(max_size=40), st.integers(1, 60))
def test_a_coordinator_partition_is_a_valid_partition(key: str, partitions: int) -> None:
    assert 0 <= coordinator_partition(key, partitions) < partitions
