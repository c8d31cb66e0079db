"""Pure parts of the broker manager and topic admin: configs, ids, jar stamps, topic plans, PID files."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.broker import (
    BrokerError,
    LocalKafka,
    cluster_id_from_bytes,
    jars_up_to_date,
    log4j2_properties,
    new_cluster_id,
    parse_properties,
    pom_digest,
    render_properties,
    server_properties,
    tail,
)
from base.kafka_admin import TopicPlan, partition_mismatches, topic_plans
from base.settings import Settings
from schemas.topics import TOPICS

ports = st.integers(min_value=1024, max_value=65535)


@given(port=ports, controller_port=ports)
def test_server_listens_on_loopback_only_with_single_node_internal_topics(port: int, controller_port: int) -> None:
    props = server_properties("/data/log", port, controller_port)

    listeners = props["listeners"].split(",")
    assert listeners == [f"PLAINTEXT://127.0.0.1:{port}", f"CONTROLLER://127.0.0.1:{controller_port}"]
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:{controller_port}"
    assert props["process.roles"] == "broker,controller"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["min.insync.replicas"] == props["default.replication.factor"] == "1"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.dirs"] == "/data/log"


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-_0123456789", min_size=1, max_size=30)
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\\"), max_size=40
).map(str.strip)


@given(st.dictionaries(keys, values, max_size=20))
def test_rendered_properties_read_back_to_the_same_mapping(props: dict[str, str]) -> None:
    assert parse_properties(render_properties(props)) == props


def test_properties_that_would_need_escaping_are_refused() -> None:
    with pytest.raises(ValueError, match="escaping"):
        render_properties({"a=b": "c"})
    with pytest.raises(ValueError, match="escaping"):
        render_properties({"a": "line\nbreak"})


def test_rendered_server_properties_parse_back() -> None:
    props = server_properties("/tmp/x", 19092, 19093)
    assert parse_properties(render_properties(props)) == props


def test_log4j_config_writes_to_the_given_file() -> None:
    parsed = parse_properties(log4j2_properties("/d/broker.log"))
    assert parsed["appender.file.fileName"] == "/d/broker.log"
    assert parsed["rootLogger.appenderRef.file.ref"] == parsed["appender.file.name"]


@given(st.binary(min_size=16, max_size=16))
def test_cluster_id_is_the_22_char_url_safe_base64_of_16_bytes(raw: bytes) -> None:
    cid = cluster_id_from_bytes(raw)
    assert len(cid) == 22
    assert base64.urlsafe_b64decode(cid + "==") == raw


@given(st.binary().filter(lambda b: len(b) != 16))
def test_cluster_id_needs_exactly_16_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        cluster_id_from_bytes(raw)


def test_new_cluster_ids_are_distinct_and_never_look_like_flags() -> None:
    ids = {new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert not any(cid.startswith("-") for cid in ids)


def test_jars_count_as_up_to_date_only_for_the_pom_they_were_fetched_for(tmp_path: Path) -> None:
    digest = pom_digest(b"<project/>")
    assert not jars_up_to_date(tmp_path, digest)
    (tmp_path / "kafka_2.13-4.2.0.jar").write_bytes(b"")
    assert not jars_up_to_date(tmp_path, digest)  # no stamp: fetched by hand or by an older pom
    (tmp_path / ".pom.sha256").write_text(digest + "\n")
    assert jars_up_to_date(tmp_path, digest)
    assert not jars_up_to_date(tmp_path, pom_digest(b"<project>changed</project>"))


def test_tail_shows_the_last_lines_or_says_the_file_is_missing(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    assert "no broker.log" in tail(log)
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"


@given(
    prefix=st.text(alphabet="abcxyz.-_", min_size=0, max_size=6),
    partitions=st.integers(min_value=1, max_value=64),
    replication=st.integers(min_value=1, max_value=5),
)
def test_topic_plans_cover_the_registry_under_the_prefix(prefix: str, partitions: int, replication: int) -> None:
    settings = Settings.from_env({}).replace(topic_prefix=prefix, partitions=partitions, replication_factor=replication)

    plans = topic_plans(settings, TOPICS.values())

    assert [p.name for p in plans] == [prefix + name for name in TOPICS]
    assert {(p.partitions, p.replication_factor) for p in plans} == {(partitions, replication)}
    assert [p.config for p in plans] == [spec.config for spec in TOPICS.values()]


def test_topic_plans_refuse_zero_partitions() -> None:
    with pytest.raises(ValueError):
        topic_plans(Settings.from_env({}).replace(partitions=0), TOPICS.values())


@given(planned=st.integers(1, 12), actual=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 12)))
def test_partition_mismatches_name_exactly_the_existing_topics_with_other_counts(
    planned: int, actual: dict[str, int]
) -> None:
    plans = [TopicPlan(name, planned, 1) for name in ("a", "b", "c")]

    problems = partition_mismatches(plans, actual)

    wrong = sorted(n for n in ("a", "b", "c") if n in actual and actual[n] != planned)
    assert [p.split()[0] for p in problems] == wrong


def test_a_stale_pid_file_is_recognised_and_removed(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path, port=1, controller_port=2)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    broker.pid_file.write_text(finished.stdout)

    assert broker.pid() is None
    assert not broker.pid_file.exists()


def test_a_pid_reused_by_another_program_is_not_taken_for_the_broker(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path, port=1, controller_port=2)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # this pytest process: alive, not Kafka

    assert broker.pid() is None
    assert not broker.stop()  # and stop() must not signal it


def test_the_process_we_just_started_is_ours_before_its_command_line_says_kafka(tmp_path: Path) -> None:
    """Between fork and exec a new broker's command line is still Python's; the broker we launched
    must count as running (else start-up calls it dead and leaves the JVM running, unrecorded)."""
    broker = LocalKafka(tmp_path, port=1, controller_port=2)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        broker._popen = child  # what _launch_locked records
        broker.pid_file.write_text(f"{child.pid}\n")
        assert broker.pid() == child.pid
        child.kill()
        child.wait()
        assert broker.pid() is None and not broker.pid_file.exists()  # once it exits, it is gone
    finally:
        if child.poll() is None:
            child.kill()


def test_start_refuses_a_port_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(tmp_path, port=port, controller_port=port + 1 if port < 65535 else port - 1)

        with pytest.raises(BrokerError, match=f"port {port}"):
            broker.start(timeout=5)
    assert not broker.pid_file.exists()


def test_missing_java_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("base.broker.shutil.which", lambda name: None)
    broker = LocalKafka(tmp_path, port=_free_port(), controller_port=_free_port())

    with pytest.raises(BrokerError, match="Java 17"):
        broker.start(timeout=5)


def test_missing_jars_without_maven_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from base.broker import POM, ensure_kafka_jars

    monkeypatch.setattr("base.broker.shutil.which", lambda name: None)

    with pytest.raises(BrokerError, match="Maven is not installed"):
        ensure_kafka_jars(tmp_path / "lib", POM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_class_archive_is_keyed_by_the_jar_set(tmp_path: Path) -> None:
    import shutil

    from base.broker import shared_class_archive

    java = shutil.which("java") or sys.executable  # any real file works: only its path and mtime count
    (tmp_path / ".pom.sha256").write_text("a\n")
    first = shared_class_archive(tmp_path, java)
    (tmp_path / ".pom.sha256").write_text("b\n")
    second = shared_class_archive(tmp_path, java)

    assert first != second
    assert first.parent == second.parent == tmp_path / ".cds"
    assert shared_class_archive(tmp_path, java) == second


def test_the_local_broker_runs_the_serial_collector_and_compiles_with_c1_only(tmp_path: Path) -> None:
    """docs/broker.md: on 2 shared cores G1's parallel pauses and a fresh JVM's C2 compiler thread
    stretched the flash sale's tail; the local broker (and each local cluster node) turns both off."""
    command = LocalKafka(tmp_path, port=1, controller_port=2, heap="256m")._java_command("java")
    assert "-XX:+UseSerialGC" in command
    assert "-XX:TieredStopAtLevel=1" in command
    assert command.index("-XX:TieredStopAtLevel=1") < command.index("-cp")  # a JVM option, before the class path
    assert {"-Xmx256m", "-Xms256m"} <= set(command)
