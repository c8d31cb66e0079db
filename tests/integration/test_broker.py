"""The real broker, topics and fixtures: a round trip, topic layout, transactions, and the CLI lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from base.settings import Settings
from tests.fixtures.kafka import consume_all, free_ports

pytestmark = pytest.mark.integration


def test_produce_consume_round_trip_keeps_every_message_and_key_partition(kafka_settings: Settings) -> None:
    from base.kafka import make_producer

    producer = make_producer(kafka_settings)
    sent = {f"m{i}".encode(): f"room-{i % 7}".encode() for i in range(500)}
    for value, key in sent.items():
        producer.produce(kafka_settings.topic("comments"), key=key, value=value)
    assert producer.flush(30) == 0

    received = consume_all(kafka_settings, "comments", expected=len(sent))

    assert sorted(m.value() for m in received) == sorted(sent)
    partitions_of_key: dict[bytes, set[int]] = {}
    for m in received:
        assert m.key() == sent[m.value()]
        partitions_of_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in partitions_of_key.values())
    assert len({p for ps in partitions_of_key.values() for p in ps}) > 1


def test_every_registered_topic_exists_with_its_partitions_and_configs(kafka_settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    from schemas.topics import TOPICS

    admin = AdminClient({"bootstrap.servers": kafka_settings.kafka_bootstrap})
    metadata = admin.list_topics(timeout=10)
    for spec in TOPICS.values():
        topic = metadata.topics[kafka_settings.topic(spec.name)]
        assert len(topic.partitions) == kafka_settings.partitions == 3
    resources = [ConfigResource("topic", kafka_settings.topic(s.name)) for s in TOPICS.values() if s.config]
    assert resources, "the registry should carry at least one topic config to check"
    for resource, future in admin.describe_configs(resources).items():
        spec = TOPICS[resource.name.removeprefix(kafka_settings.topic_prefix)]
        configs = future.result()
        for key, value in spec.config.items():
            assert configs[key].value == value, (resource.name, key)


def test_create_topics_again_is_harmless_but_a_partition_change_is_refused(kafka_settings: Settings) -> None:
    from base.kafka_admin import TopicError, create_topics
    from schemas.topics import TOPICS

    names = create_topics(kafka_settings, TOPICS.values())
    assert names == [kafka_settings.topic(name) for name in _registered_names()]
    with pytest.raises(TopicError, match="expected 5"):
        create_topics(kafka_settings.replace(partitions=5), TOPICS.values())


def test_transactions_work_on_the_single_node_broker(kafka_settings: Settings) -> None:
    """Exactly-once Faust needs the transaction state topic (RF 1, min ISR 1): committed data is
    visible to read_committed consumers, aborted data is not."""
    from base.kafka import make_producer

    producer = make_producer(kafka_settings, {"transactional.id": f"{kafka_settings.topic_prefix}tx"})
    producer.init_transactions(60)
    topic = kafka_settings.topic("orders")
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, key=b"sku-1", value=f"kept-{i}".encode())
    producer.commit_transaction(60)
    producer.begin_transaction()
    for i in range(2):
        producer.produce(topic, key=b"sku-1", value=f"aborted-{i}".encode())
    producer.abort_transaction(60)

    values = sorted(m.value() for m in consume_all(kafka_settings, "orders"))

    assert values == [b"kept-0", b"kept-1", b"kept-2"]


def _registered_names() -> list[str]:
    from schemas.topics import TOPICS

    return list(TOPICS)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecommerce.cli", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def _processes_using(config_file: Path) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line names ``config_file``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if str(config_file).encode() in args and state != "Z":
            found.append(int(proc.name))
    return found


def test_cli_up_twice_is_a_no_op_and_down_leaves_no_broker_process(tmp_path: Path) -> None:
    from base.broker import LIB_DIR

    port, controller_port = free_ports(2)
    env = {
        **os.environ,
        "LC_DATA_DIR": str(tmp_path),
        "LC_KAFKA_PORT": str(port),
        "LC_KAFKA_CONTROLLER_PORT": str(controller_port),
        "LC_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "LC_KAFKA_HEAP": "384m",
        "LC_LOG_FORMAT": "console",
    }
    kafka_dir = tmp_path / "kafka"
    pid_file = kafka_dir / "broker.pid"
    try:
        first = _cli(env, "up")
        assert first.returncode == 0, first.stderr
        pid = int(pid_file.read_text())
        assert _processes_using(kafka_dir / "server.properties") == [pid]
        status = _cli(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert len(json.loads(status.stdout)["topics"]) == len(_registered_names())

        second = _cli(env, "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert int(pid_file.read_text()) == pid

        down = _cli(env, "down")
        assert down.returncode == 0, down.stderr
        assert not pid_file.exists()
        assert _processes_using(kafka_dir / "server.properties") == []
        assert _cli(env, "status").returncode == 3
        # A clean stop leaves the JVM's class archive shared for faster later starts, not in the data dir.
        assert list((LIB_DIR / ".cds").glob("kafka-*.jsa"))
        assert not (kafka_dir / "kafka-classes.jsa").exists()

        # Restart on the same data dir by two racing `up`s: one starts it, the other finds it running;
        # storage is not reformatted and the topics survived.
        cluster_id = (kafka_dir / "log" / "meta.properties").read_text()
        racers = [
            subprocess.Popen([sys.executable, "-m", "livecommerce.cli", "up", "--no-topics"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [racer.communicate(timeout=300) for racer in racers]
        assert [racer.returncode for racer in racers] == [0, 0], outputs
        assert sorted("already running" in out for out, _ in outputs) == [False, True], outputs
        assert _processes_using(kafka_dir / "server.properties") == [int(pid_file.read_text())]
        assert (kafka_dir / "log" / "meta.properties").read_text() == cluster_id
        assert len(json.loads(_cli(env, "status", "--json").stdout)["topics"]) == len(_registered_names())
    finally:
        _cli(env, "down")
        for leftover in _processes_using(kafka_dir / "server.properties"):
            os.killpg(leftover, signal.SIGKILL)
    assert _processes_using(kafka_dir / "server.properties") == []


_START_AND_HANG = """
import sys, time
from base.broker import LocalKafka
broker = LocalKafka(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), heap="384m", die_with_parent=True)
broker.start()
print(broker.pid(), flush=True)
time.sleep(3600)
"""


def test_a_test_broker_dies_with_a_killed_parent_and_its_pid_file_is_then_stale(tmp_path: Path) -> None:
    """A pytest run killed with SIGKILL must not leave a JVM behind (the fixture uses die_with_parent)."""
    from base.broker import LocalKafka

    port, controller_port = free_ports(2)
    parent = subprocess.Popen(
        [sys.executable, "-c", _START_AND_HANG, str(tmp_path), str(port), str(controller_port)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        broker_pid = int(parent.stdout.readline())
        assert _processes_using(tmp_path / "server.properties") == [broker_pid]
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 120  # bound for the JVM's own shutdown, not a speed assertion
    while _processes_using(tmp_path / "server.properties") and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = _processes_using(tmp_path / "server.properties")
    for pid in leftovers:
        os.killpg(pid, signal.SIGKILL)
    assert leftovers == []
    broker = LocalKafka(tmp_path, port, controller_port)
    assert broker.pid_file.exists()
    assert broker.pid() is None
    assert not broker.pid_file.exists()


def test_ensure_kafka_jars_fetches_once_replaces_stale_jars_and_then_needs_no_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from base.broker import POM, ensure_kafka_jars

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13-0.0.1.jar").write_bytes(b"left over from an older pom")

    ensure_kafka_jars(lib, POM)

    names = {jar.name for jar in lib.glob("*.jar")}
    assert "kafka_2.13-0.0.1.jar" not in names
    assert any(name.startswith("kafka_2.13-") for name in names)
    assert any(name.startswith("slf4j-api-2.") for name in names)  # the 1.7 API would mute the broker log
    assert not list(lib.glob(".staging-*"))
    monkeypatch.setattr("base.broker.shutil.which", lambda name: None)
    assert ensure_kafka_jars(lib, POM) == lib  # up to date: Maven is not even looked for


def test_console_producer_script_writes_keyed_messages(kafka_settings: Settings) -> None:
    """The README feeds the system with broker/kafka-console-producer; it must work with our jars."""
    from base.broker import BROKER_DIR, ensure_kafka_jars

    ensure_kafka_jars()
    topic = kafka_settings.topic("orders")
    lines = "".join(f"sku-{i}|order-{i}\n" for i in range(5))
    result = subprocess.run(
        [str(BROKER_DIR / "kafka-console-producer"), "--bootstrap-server", kafka_settings.kafka_bootstrap,
         "--topic", topic, "--reader-property", "parse.key=true", "--reader-property", "key.separator=|"],
        input=lines, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr

    received = {(m.key(), m.value()) for m in consume_all(kafka_settings, "orders", expected=5)}

    assert received == {(f"sku-{i}".encode(), f"order-{i}".encode()) for i in range(5)}
