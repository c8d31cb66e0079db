"""A real, single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) for this machine.

Why this exists: these machines have Java but no Docker engine, and the project insists on real
components.  The jars come from Maven Central through ``broker/pom.xml``; this module writes the
configs, formats the storage once, starts ``kafka.Kafka`` detached in its own process group, waits
until it answers, and stops it by PID.  ``start()`` on a running broker is a no-op, so ``livecommerce
up`` twice is harmless, and a PID file left by a crash is recognised as stale and replaced.

The config builders are pure functions in :mod:`base.broker_config` (unit-tested without Java; re-exported
here); the jar, PID and port helpers and :class:`LocalKafka` below are the thin process shell.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from base.broker_config import (
    NODE_ID,
    cluster_id_from_bytes,
    log4j2_properties,
    new_cluster_id,
    parse_properties,
    render_properties,
    replication_for,
    server_properties,
)
from base.settings import REPO_ROOT

__all__ = [  # the config builders live in base.broker_config; re-exported for callers of this module
    "NODE_ID", "BrokerError", "LocalKafka", "cluster_id_from_bytes", "ensure_kafka_jars", "log4j2_properties",
    "new_cluster_id", "parse_properties", "port_in_use", "render_properties", "replication_for",
    "server_properties",
]

BROKER_DIR = REPO_ROOT / "broker"
POM = BROKER_DIR / "pom.xml"
LIB_DIR = BROKER_DIR / "lib"
#: Records which pom.xml the jars in LIB_DIR were fetched for, so a changed pom refetches them.
_STAMP = ".pom.sha256"

class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why and what to do."""


# --------------------------------------------------------------------------------------------- pure core
# (the node's configuration: base.broker_config)


def pom_digest(pom_text: bytes) -> str:
    return hashlib.sha256(pom_text).hexdigest()


def jars_up_to_date(lib_dir: Path, pom_sha: str) -> bool:
    """True when ``lib_dir`` holds the Kafka jar fetched for exactly this pom."""
    stamp = lib_dir / _STAMP
    return (
        any(lib_dir.glob("kafka_2.13-*.jar"))
        and stamp.exists()
        and stamp.read_text().strip() == pom_sha
    )


def shared_class_archive(lib_dir: Path, java: str) -> Path:
    """Where the class-data-sharing archive for these jars and this JVM lives (shared by all data dirs).

    Keyed by the jar stamp and the Java binary, so new jars or a new JDK get a fresh archive."""
    stamp = lib_dir / _STAMP
    pom_sha = stamp.read_text().strip() if stamp.exists() else "unstamped"
    real_java = Path(java).resolve()
    key = hashlib.sha256(f"{pom_sha}|{real_java}|{real_java.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    return lib_dir / ".cds" / f"kafka-{key}.jsa"


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it does not exist (for error messages)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no {path.name} yet)"
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------------------------------------ jars


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so pytest and ``make demo`` never run Maven into the same dir at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka_jars(lib_dir: Path = LIB_DIR, pom: Path = POM) -> Path:
    """Make sure ``lib_dir`` holds the runtime jars of ``pom``; fetch them with Maven if not.

    Jars are fetched into a staging dir and then moved in, so a running broker keeps its already-open
    jars and a failed download leaves the previous set intact.  Returns ``lib_dir``.
    """
    pom_sha = pom_digest(pom.read_bytes())
    if jars_up_to_date(lib_dir, pom_sha):
        return lib_dir
    with _file_lock(lib_dir / ".lock"):
        if jars_up_to_date(lib_dir, pom_sha):  # another process fetched them while we waited
            return lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"Kafka jars are missing from {lib_dir} and Maven is not installed "
                "(apt-get install maven, or copy the jars there by hand)."
            )
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=lib_dir))
        try:
            cmd = [
                mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise BrokerError(
                    f"Maven could not fetch the Kafka jars ({' '.join(cmd)}):\n"
                    f"{(proc.stdout + proc.stderr)[-3000:]}"
                )
            fetched = {jar.name for jar in staging.glob("*.jar")}
            for jar in staging.glob("*.jar"):
                os.replace(jar, lib_dir / jar.name)
            for old in lib_dir.glob("*.jar"):
                if old.name not in fetched:
                    old.unlink()
            (lib_dir / _STAMP).write_text(pom_sha + "\n")
            shutil.rmtree(lib_dir / ".cds", ignore_errors=True)  # class archives of the old jars
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return lib_dir


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java 17+ is needed to run the local Kafka broker (apt-get install openjdk-17-jre-headless).")
    return java


# --------------------------------------------------------------------------------------------- process


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port`` (so our broker could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _process_alive(pid: int) -> bool:
    """True for a live process; zombies (exited but not yet reaped) count as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _terminate_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when its parent dies (PR_SET_PDEATHSIG)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class LocalKafka:
    """One local broker living in ``data_dir`` (configs, logs, PID file and the Kafka log dirs).

    Alone it is a single-node cluster; :class:`base.cluster.LocalCluster` makes several of them one
    cluster by giving each its ``node_id``, the shared ``voters`` and the shared ``cluster_id``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int,
        controller_port: int,
        heap: str = "768m",
        lib_dir: Path = LIB_DIR,
        die_with_parent: bool = False,
        node_id: int = NODE_ID,
        voters: Sequence[tuple[int, int]] | None = None,
        cluster_id: str | None = None,
    ) -> None:
        """``die_with_parent``: for test sessions; the kernel SIGTERMs the broker if the starting process
        dies, even by SIGKILL, so a killed pytest never leaves a JVM behind.  ``livecommerce up`` leaves it
        False because its broker must outlive the command."""
        self.data_dir = Path(data_dir).resolve()
        self.die_with_parent = die_with_parent
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.lib_dir = lib_dir
        self.node_id = node_id
        self.voters = list(voters) if voters is not None else None
        self.cluster_id = cluster_id
        self._popen: subprocess.Popen[bytes] | None = None

    # paths ------------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def broker_log(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def stdout_log(self) -> Path:
        return self.data_dir / "broker.out"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def gc_log(self) -> Path:
        """The JVM's GC log (pauses with wall-clock stamps), to tell GC stalls from other stalls."""
        return self.data_dir / "gc.log"

    # state ------------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """PID of this data dir's running broker, or None.  A stale PID file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _process_alive(pid) and (self._launched_here(pid) or self._is_our_broker(pid)):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _launched_here(self, pid: int) -> bool:
        """The JVM this object started and that has not exited.  Right after the fork its command line
        is still Python's (exec has not happened yet), so the command-line check alone would call our
        own new broker a stranger, drop its PID file and leave it running (found by an outside attack:
        ``up`` after a kill -9 said the broker exited during start-up while it ran on, unrecorded)."""
        return self._popen is not None and self._popen.pid == pid and self._popen.poll() is None

    def _is_our_broker(self, pid: int) -> bool:
        """Guards against PID reuse: the process must be kafka.Kafka started with our config file."""
        args = _cmdline(pid)
        return "kafka.Kafka" in args and str(self.config_file) in args

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_answering(self, timeout: float = 3.0) -> bool:
        """True when the broker serves metadata that lists this node, not just an open port."""
        if not port_in_use(self.port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=timeout)
        except Exception:
            return False
        return self.node_id in metadata.brokers

    def is_formatted(self) -> bool:
        return (self.log_dir / "meta.properties").exists()

    # lifecycle --------------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> float:
        """Start the broker (or find it running) and wait until it answers.

        Returns the seconds spent; 0.0 means it was already up and nothing was done.  A lock file in
        ``data_dir`` serialises concurrent starts (``make demo`` and a second ``up``), so the loser finds
        the winner's broker running instead of overwriting its PID file.
        """
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / "start.lock"):
            if self.pid() is not None:
                if self.is_answering():
                    return 0.0
                self.wait_ready(timeout)
                return time.monotonic() - began
            self._launch_locked()
            try:
                self.wait_ready(timeout - (time.monotonic() - began))
            except BrokerError:
                self.stop()
                raise
            return time.monotonic() - began

    def launch(self) -> bool:
        """Start the JVM without waiting for it to answer; False when it already runs.

        A node of a multi-node cluster cannot answer before a quorum of controllers is up, so
        :class:`base.cluster.LocalCluster` launches every node first and waits afterwards.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / "start.lock"):
            if self.pid() is not None:
                return False
            self._launch_locked()
            return True

    def prepare(self) -> None:
        """Write the configs and format the storage if needed, without starting the broker.

        A cluster prepares its nodes in parallel (formatting is a JVM start of its own) and then
        launches them from the calling thread: ``die_with_parent`` ties a broker to the *thread* that
        spawned it (PR_SET_PDEATHSIG), so spawning from a short-lived thread would kill it at once.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / "start.lock"):
            if self.pid() is None:
                self._prepare_locked()

    def _prepare_locked(self) -> str:
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is already in use by another process; choose other ports "
                    "(LC_KAFKA_PORT / LC_KAFKA_CONTROLLER_PORT / LC_KAFKA_BOOTSTRAP) or stop that process."
                )
        java = _require_java()
        ensure_kafka_jars(self.lib_dir)
        self.config_file.write_text(render_properties(server_properties(
            str(self.log_dir), self.port, self.controller_port, self.node_id, self.voters
        )))
        self.log4j_file.write_text(log4j2_properties(str(self.broker_log)))
        if not self.is_formatted():
            self._format(java)
        return java

    def _launch_locked(self) -> None:
        java = self._prepare_locked()
        with self.stdout_log.open("ab") as out:
            self._popen = subprocess.Popen(
                [*self._java_command(java), *self._class_sharing_flags(java), "kafka.Kafka", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # own process group: stop() signals the group, Ctrl-C does not
                preexec_fn=_terminate_with_parent if self.die_with_parent else None,
            )
        self.pid_file.write_text(f"{self._popen.pid}\n")

    def _java_command(self, java: str) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",  # a heap that never grows: G1 sizes a larger young generation, fewer pauses
            # Serial, not G1: on 2 shared cores G1's parallel young pauses stretched to 100-190 ms while
            # its threads waited for a CPU (25 pauses, 1.1 s in 15 s of a flash sale at 5,000/s); the
            # serial collector copies the same young generation in 5-30 ms (5-6 pauses, 0.1 s).  The
            # flash-sale answer's p99 fell from 294-323 ms to 45-142 ms, back to back (docs/broker.md).
            # A broker on its own many-core machine (docker-compose.yml) keeps the JVM's default, G1.
            "-XX:+UseSerialGC",
            # C1 only, no C2: a fresh broker's C2 compiler thread took a third to half of a core for its
            # first minutes (30 s of compile time in the first 60 s of a flash sale), beside the worker
            # and the buyers on the same 2 cores; C1 compiles in a fraction of that.  The flash-sale
            # answer's p99 fell from 152-229 ms to 63-81 ms in four alternating pairs (docs/broker.md).
            # The cost is C1's plainer code in a long-running broker (about a third more broker CPU once
            # C2 would have settled); docker-compose.yml's brokers keep both tiers.
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Xlog:gc:file={self.gc_log}:time,uptime:filecount=2,filesize=5m",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{self.lib_dir}/*",
        ]

    @property
    def _new_class_archive(self) -> Path:
        return self.data_dir / "kafka-classes.jsa"

    def _class_sharing_flags(self, java: str) -> list[str]:
        """Java AppCDS: the classes a broker loaded, archived at its first clean exit and mapped by later
        starts.  On two busy cores this cut the time to an open port by roughly a third to a half
        (class loading of Kafka + Scala dominates start-up).  A stale or foreign archive is only a
        warning to the JVM, which then starts without it."""
        shared = shared_class_archive(self.lib_dir, java)
        if shared.exists():
            return ["-Xlog:cds*=off", f"-XX:SharedArchiveFile={shared}"]
        return ["-Xlog:cds*=off", f"-XX:ArchiveClassesAtExit={self._new_class_archive}"]

    def _publish_class_archive(self) -> None:
        """After a clean exit, share the archive the broker just wrote (copy then atomic rename)."""
        new = self._new_class_archive
        java = shutil.which("java")
        if not new.exists() or java is None:
            return
        shared = shared_class_archive(self.lib_dir, java)
        if not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            staging = shared.with_name(f".{shared.name}.{os.getpid()}")
            shutil.copyfile(new, staging)
            os.replace(staging, shared)
        new.unlink()

    def _format(self, java: str) -> None:
        """Format the KRaft storage once, with the cluster's id or a fresh one (the data dir keeps it)."""
        shared = shared_class_archive(self.lib_dir, java)  # the broker's class archive serves the tool too
        cds = ["-Xlog:cds*=off", f"-XX:SharedArchiveFile={shared}"] if shared.exists() else []
        cmd = [
            *self._java_command(java), *cds, "kafka.tools.StorageTool", "format",
            "--cluster-id", self.cluster_id or new_cluster_id(), "--config", str(self.config_file),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=self.data_dir)
        if proc.returncode != 0 or not self.is_formatted():
            raise BrokerError(f"formatting Kafka storage in {self.log_dir} failed:\n{proc.stdout}{proc.stderr}")

    def wait_ready(self, timeout: float) -> None:
        """Block until the broker answers metadata requests; on failure show the tail of its logs."""
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise BrokerError(f"the Kafka broker in {self.data_dir} exited during start-up.\n{self._logs()}")
            if self.is_answering(timeout=2.0):
                return
            time.sleep(0.2)
        raise BrokerError(
            f"the Kafka broker on {self.bootstrap} did not answer within {timeout:.0f} s.\n{self._logs()}"
        )

    def _logs(self) -> str:
        return (
            f"--- {self.broker_log} (tail) ---\n{tail(self.broker_log)}\n"
            f"--- {self.stdout_log} (tail) ---\n{tail(self.stdout_log)}"
        )

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGTERM the broker's process group (a clean shutdown), SIGKILL it after ``timeout``.

        Returns True if a broker was running.  The PID file is removed either way.
        """
        pid = self.pid()
        if pid is None:
            self._reap()
            return False
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._reap_or_alive(pid):
            time.sleep(0.1)
        if self._reap_or_alive(pid):
            self._signal_group(pid, signal.SIGKILL)
            while self._reap_or_alive(pid):
                time.sleep(0.05)
            self._new_class_archive.unlink(missing_ok=True)  # possibly cut short mid-write
        else:
            self._publish_class_archive()
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker at once (a crash, for failure tests); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        self._signal_group(pid, signal.SIGKILL)
        while self._reap_or_alive(pid):
            time.sleep(0.02)
        self._new_class_archive.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # pgid == pid: started with start_new_session

    def _reap_or_alive(self, pid: int) -> bool:
        self._reap()
        return _process_alive(pid)

    def _reap(self) -> None:
        """Collect our own child's exit status so it does not linger as a zombie."""
        if self._popen is not None and self._popen.poll() is not None:
            self._popen = None
