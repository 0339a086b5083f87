"""Access under attack: /healthz latency while anyone floods the service with forged requests.

Run:  .venv/bin/python -m bench.bench_access [--requests 10000] [--concurrency 32]

The demo runs in its own process (production argon2, its own event loop). This process sends
``--requests`` forged link requests and as many unknown-source webhooks, ``--concurrency`` at a
time, while it polls ``/healthz`` every 20 ms. Printed: /healthz p50 / p95 / max idle and under
the flood, their ratio, the flood's rate, and how many registre records the flood added (read
after a clean stop, so the last grouped record is in).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.audit import Registre

ROOT = Path(__file__).resolve().parents[1]
FORGED = "/live/" + "A" * 40 + ".Zz0.forgedsignature0123456789"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def healthy(s: aiohttp.ClientSession, base: str) -> None:
    for _ in range(300):
        try:
            async with s.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the demo did not answer /healthz")


async def probe(s: aiohttp.ClientSession, base: str) -> float:
    t = time.perf_counter()
    async with s.get(f"{base}/healthz") as r:
        await r.read()
        assert r.status == 200
    return (time.perf_counter() - t) * 1000


async def idle(s: aiohttp.ClientSession, base: str, n: int = 300) -> list[float]:
    out = []
    for _ in range(n):
        out.append(await probe(s, base))
        await asyncio.sleep(0.005)
    return out


async def flood(base: str, n: int, concurrency: int) -> tuple[list[float], float]:
    """(/healthz latencies in ms during the flood, flood requests per second)."""
    done = asyncio.Event()
    health: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as s, \
            aiohttp.ClientSession() as poller_session:

        async def worker(k: int) -> None:
            for i in range(k, 2 * n, concurrency):
                if i % 2:
                    async with s.post(f"{base}/hooks/alarm/src-{i}", data=b"{}") as r:
                        await r.read()
                else:
                    async with s.get(base + FORGED) as r:
                        await r.read()

        async def poll() -> None:
            while not done.is_set():
                health.append(await probe(poller_session, base))
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(poll())
        t = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t
        done.set()
        await poller
    return health, 2 * n / elapsed


def line(label: str, values: list[float]) -> str:
    return (f"  {label:<16} p50 {pct(values, 50):6.2f} ms   p95 {pct(values, 95):6.2f} ms   "
            f"max {max(values):7.2f} ms   ({len(values)} probes)")


async def main(n: int, concurrency: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="vigie-bench-access-") as tmp:
        data = Path(tmp) / "data"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--port", str(port), "--data-dir", str(data), "--cameras", "1",
             "--sia-port", "0"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            async with aiohttp.ClientSession() as s:
                await healthy(s, base)
                quiet = await idle(s, base)
            with Registre(data / "registre.sqlite3", readonly=True) as reg:
                before = len(reg.records())
            loaded, rate = await flood(base, n, concurrency)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()  # end of console input: the demo stops cleanly and writes what it counted
            proc.wait(30)
        with Registre(data / "registre.sqlite3", readonly=True) as reg:
            added = reg.records()[before:]
            ok = reg.verify().ok
    print(f"Flood: {n} forged links + {n} unknown-source webhooks, {concurrency} at a time: {rate:.0f} req/s")
    print(line("/healthz idle", quiet))
    print(line("/healthz flood", loaded))
    print(f"  p95 under flood / p95 idle: {pct(loaded, 95) / pct(quiet, 95):.1f}×")
    kinds = sorted({r.kind for r in added})
    print(f"  registre: {len(added)} record(s) added ({', '.join(kinds) or 'none'}), "
          f"{sum(r.details.get('count', 0) for r in added)} refusals counted in them, chain {'intact' if ok else 'BROKEN'}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=32)
    a = p.parse_args()
    asyncio.run(main(a.requests, a.concurrency))
