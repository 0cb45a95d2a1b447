"""``POST /v1/verify`` latency under a fixed arrival rate, against ``hub serve`` in its own process.

Target (consumer-access issue): p99 at most 200 ms at 200 requests/s against a 10M-row
population index on this machine. The index is built directly from synthetic identity
numbers and names with the pipeline's own index builder (:func:`catalog.access.verification.index_rows`)
and written to the internal Iceberg table the server loads; a system is registered and its
credential used for every request. The load generator is open-loop (asyncio streams):
request ``i`` is due at ``start + i / rate`` whatever happened to the earlier ones, and its
latency counts from that due time, so a slow server cannot slow the generator down and hide
its own queueing. Baseline in the same run, against the same server, at the same rate:
``GET /healthz`` (HTTP, event loop and connection handling with no work), plus the
in-process index lookup alone.

Requests: 90% a registered person with the right name, 5% the wrong name, 5% an unknown
number; every answer is checked. The access log takes one entry per request (group commit
on the hub's SQLite metadata), as in production. The server's rate and enumeration limits are
raised for the benchmark system (the guard still runs on every request).

    python -m bench.verify [rows] [rate] [seconds]      # defaults 10000000 200 30
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 200.0
CHUNK = 1_000_000
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_DIVISIONS = np.array(
    [110101 + 1000 * (i % 30) + i // 30 for i in range(300)], dtype=np.int64
)  # 300 county-like codes
_DAYS = 32_872  # 1930-01-01 .. 2019-12-31
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰志强晓东海燕春梅国庆小龙"


def identity(i: np.ndarray) -> np.ndarray:
    """Distinct valid identity numbers for row numbers ``i``, as an (n, 18) ASCII matrix.

    Row ``i`` is read in mixed radix as (county, birth day, sequence): a bijection, so
    numbers past the registered rows are never registered.
    """
    division = _DIVISIONS[i % len(_DIVISIONS)]
    born = np.datetime64("1930-01-01", "D") + ((i // len(_DIVISIONS)) % _DAYS).astype("timedelta64[D]")
    months = born.astype("datetime64[M]")
    year = born.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (born - months.astype("datetime64[D]")).astype(np.int64) + 1
    sequence = i // (len(_DIVISIONS) * _DAYS)
    first17 = division * 10**11 + (year * 10000 + month * 100 + day) * 10**3 + sequence
    digits = np.empty((len(i), 18), dtype=np.uint8)
    for position in range(16, -1, -1):
        digits[:, position] = first17 % 10
        first17 //= 10
    digits[:, 17] = _CHECK[(digits[:, :17].astype(np.int64) @ _WEIGHTS) % 11] - 48
    return digits + 48


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _strings(matrix: np.ndarray) -> pa.Array:
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix).tobytes())]
    )


_NAMES = [s + g1 + g2 for s in _SURNAMES for g1 in _GIVEN[:12] for g2 in _GIVEN[12:24]]


def name_of(i: np.ndarray) -> pa.Array:
    return pa.array([_NAMES[k] for k in (i * 2654435761 % len(_NAMES))], pa.string())


def build_index(settings: Any, rows: int) -> tuple[float, int]:
    """Write a ``rows``-row population index; returns (seconds, snapshot id)."""
    from catalog.access import INDEX_NAMESPACE, index_name, index_rows
    from catalog.tables import SharedTables
    from masking.keys import Keyring

    started = time.perf_counter()
    key = Keyring.load(
        settings.masking.keyring_path, master_key_file=settings.masking.master_key_file
    ).current_key("token")
    internal = SharedTables(
        settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=INDEX_NAMESPACE
    )
    snapshot = 0
    for first in range(0, rows, CHUNK):
        numbers = np.arange(first, min(first + CHUNK, rows), dtype=np.int64)
        chunk = index_rows(_strings(identity(numbers)), name_of(numbers), key, "population")
        if first == 0:
            snapshot = internal.upsert_rows(
                index_name("population"), chunk, keys=["key_token"], batch_id="bench"
            )
        else:
            table = internal.load(index_name("population"))
            table.append(chunk)
            snapshot = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        print(f"  index rows {first + len(numbers):,} / {rows:,}", flush=True)
    return time.perf_counter() - started, snapshot


def _register_system(settings: Any) -> str:
    from catalog.metadata import MetadataStore
    from catalog.sharing import add_department, add_person, add_system

    store = MetadataStore(settings.catalog.metadata_url)
    try:
        add_person(store, "bench.steward", roles=["steward"], hub_wide=True, actor=None)
        add_department(store, "111000000000130127", "人力资源和社会保障厅", actor="bench.steward")
        return add_system(store, "bench-sys", "压测系统", "111000000000130127", actor="bench.steward")[1]
    finally:
        store.dispose()


def _requests(rows: int, count: int, seed: int = 7) -> list[tuple[dict[str, str], bool]]:
    rng = random.Random(seed)
    picked = np.array([rng.randrange(rows) for _ in range(count)], dtype=np.int64)
    ids = _strings(identity(picked)).to_pylist()
    names = name_of(picked).to_pylist()
    out: list[tuple[dict[str, str], bool]] = []
    for n, (id_number, name) in enumerate(zip(ids, names, strict=True)):
        roll = rng.random()
        if roll < 0.05:
            name, match = name + "某", False
        elif roll < 0.10:
            unknown = identity(np.array([rows + n], dtype=np.int64))  # never registered
            id_number, match = bytes(unknown[0]).decode(), False
        else:
            match = True
        out.append(({"kind": "person", "id_number": id_number, "name": name, "purpose": "压测"}, match))
    return out


class _Connections:
    """Keep-alive HTTP/1.1 connections for the load generator, reused last-in first-out.

    A dozen lines of asyncio streams instead of a general client: httpx's pool does work
    proportional to open connections times waiting requests on every request, so after any
    server hiccup the generator itself becomes the bottleneck and measures itself.
    """

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        while True:
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            try:
                writer.write(head.encode("latin-1") + body)
                first = await reader.readline()
            except ConnectionError:
                first = b""
            if first or not reused:
                break
            writer.close()  # the server closed this idle connection: the request never arrived
        try:
            status = int(first.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            data = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, data

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _open_loop(
    base: str, rate: float, seconds: float, send: Any, *, warmup: float = 2.0
) -> dict[str, Any]:
    """Send ``rate * seconds`` requests at fixed due times; latency is counted from the due time."""
    total = int(rate * seconds)
    client = _Connections(base)
    loop = asyncio.get_running_loop()
    for k in range(int(rate * warmup)):  # warm-up, not measured: connections, caches
        await send(client, -1 - k)
    start = loop.time() + 0.2
    latencies = np.full(total, np.nan)
    errors: dict[str, int] = {}
    finished = np.zeros(total)

    async def one(i: int) -> None:
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            problem = await asyncio.wait_for(send(client, i), timeout=30)
        except Exception as exc:  # a transport error or time-out counts, and is named
            problem = type(exc).__name__
        now = loop.time()
        latencies[i], finished[i] = now - due, now
        if problem:
            errors[problem] = errors.get(problem, 0) + 1

    await asyncio.gather(*(one(i) for i in range(total)))
    client.close()
    ms = latencies * 1000
    return {
        "requests": total,
        "target_rate": rate,
        "achieved_rate": total / (finished.max() - start),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "connections": client.opened,
    }


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _lookup_baseline(settings: Any, rows: int, asked: list[tuple[dict[str, str], bool]]) -> dict[str, Any]:
    from catalog.access import INDEX_NAMESPACE, load_index
    from catalog.tables import SharedTables
    from masking.keys import Keyring

    keyring = Keyring.load(settings.masking.keyring_path, master_key_file=settings.masking.master_key_file)
    keys = {i.version: keyring.token_key(i.version) for i in keyring.versions("token")}
    internal = SharedTables(
        settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=INDEX_NAMESPACE
    )
    started = time.perf_counter()
    index = load_index(internal, "population")
    load_seconds = time.perf_counter() - started
    assert index is not None and index.rows == rows, "the index does not hold every row"
    sample = asked[:2000]
    started = time.perf_counter()
    wrong = sum(index.lookup(b["id_number"], b["name"], keys).matched != match for b, match in sample)
    per_lookup = (time.perf_counter() - started) / len(sample)
    result = {"load_s": load_seconds, "lookup_us": per_lookup * 1e6, "bytes_per_row": index.nbytes / rows}
    del index
    if wrong:
        raise SystemExit(f"in-process lookup gave {wrong} wrong answers")
    return result


def _generator(kind: str, base: str, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Run the load generator in a fresh process (its own heap and event loop); its figures."""
    command = [sys.executable, "-m", "bench.verify", "--load", kind, base, str(work), str(rate), str(seconds)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds * 10 + 120)
    if done.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def load(kind: str, base: str, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    """One open-loop run of ``GET /healthz`` or ``POST /v1/verify`` (answers checked)."""
    asked = [
        (body, match) for body, match in json.loads((work / "requests.json").read_text(encoding="utf-8"))
    ]
    headers = {"Authorization": f"Bearer {(work / 'credential').read_text(encoding='utf-8')}"}

    async def health(client: _Connections, i: int) -> str | None:
        status, _ = await client.request("GET", "/healthz")
        return None if status == 200 else f"HTTP {status}"

    async def check(client: _Connections, i: int) -> str | None:
        body, match = asked[i % len(asked)]
        status, data = await client.request("POST", "/v1/verify", json.dumps(body).encode(), headers)
        if status != 200:
            return f"HTTP {status}"
        return None if json.loads(data) == {"match": match} else "wrong answer"

    return asyncio.run(_open_loop(base, rate, seconds, health if kind == "healthz" else check))


def run(rows: int = 10_000_000, rate: float = 200.0, seconds: float = 30.0) -> list[dict[str, Any]]:
    """Build the index, serve it, load it; returns the verify and baseline figures.

    The process environment points at a throw-away hub home meanwhile and is restored after.
    """
    from hub.settings import get_settings

    with tempfile.TemporaryDirectory(prefix="hub-bench-verify-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_HOME=f"{tmp}/hub",
            HUB_MASKING__KEYRING_PATH=f"{tmp}/keys/keyring.json",
            HUB_API__VERIFY_RATE="100000",
            HUB_API__VERIFY_BURST="100000",
            HUB_API__ENUMERATION_NO_MATCH="1000000",
        )
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        get_settings.cache_clear()
        try:
            return _measure(tmp, env, rows, rate, seconds)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()


def _measure(tmp: str, env: dict[str, str], rows: int, rate: float, seconds: float) -> list[dict[str, Any]]:
    import httpx

    from hub.settings import get_settings
    from masking.keys import Keyring

    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path, master_key_file=settings.masking.master_key_file)
    credential = _register_system(settings)
    print(f"building a {rows:,}-row verification index ...", flush=True)
    build_seconds, _ = build_index(settings, rows)
    asked = _requests(rows, int(rate * seconds))
    baseline = _lookup_baseline(settings, rows, asked)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tmp) / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("hub")), "serve", "--port", str(port), "--no-access-log"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 600:
                raise SystemExit(f"hub serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        startup = time.perf_counter() - started
        work = Path(tmp)
        (work / "requests.json").write_text(json.dumps(asked, ensure_ascii=False), encoding="utf-8")
        secret = work / "credential"
        secret.touch(mode=0o600)
        secret.write_text(credential, encoding="utf-8")
        print(f"GET /healthz at {rate:g}/s for {seconds:g} s (baseline) ...", flush=True)
        healthz = _generator("healthz", base, work, rate, seconds)
        print(f"POST /v1/verify at {rate:g}/s for {seconds:g} s ...", flush=True)
        verify = _generator("verify", base, work, rate, seconds)
        rss = _rss_mib(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    common = {"rows": rows, "seconds": seconds}
    return [
        {
            "what": "POST /v1/verify",
            **common,
            **verify,
            "target": f"p99 <= {TARGET_P99_MS:g} ms at {rate:g}/s",
            "met": verify["p99_ms"] <= TARGET_P99_MS and verify["errors"] == 0,
            "server_rss_mib": rss,
            "server_startup_s": startup,
            "index_build_s": build_seconds,
        },
        {"what": "GET /healthz (baseline)", **common, **healthz},
        {
            "what": "in-process lookup (baseline)",
            "rows": rows,
            "lookup_us": baseline["lookup_us"],
            "index_load_s": baseline["load_s"],
            "bytes_per_row": baseline["bytes_per_row"],
        },
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--load"]:
        kind, base, work, rate, seconds = sys.argv[2:7]
        print(json.dumps(load(kind, base, Path(work), float(rate), float(seconds))))
        raise SystemExit(0)
    arguments = [float(a) for a in sys.argv[1:]]
    results = run(
        int(arguments[0]) if arguments else 10_000_000,
        arguments[1] if len(arguments) > 1 else 200.0,
        arguments[2] if len(arguments) > 2 else 30.0,
    )
    for result in results:
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
