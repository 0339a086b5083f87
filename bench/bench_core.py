"""Core benchmarks: trigger → link delivered to the console room, and an alarm-webhook storm.

Run:  .venv/bin/python -m bench.bench_core [--triggers 200] [--storm 1000]

Each figure is printed beside a baseline measured in the same process, as a ratio:
- trigger → link: the floor is one registre append + one state save + one asyncio queue hop
  (the I/O a trigger cannot avoid);
- webhook storm: the baseline is the same server answering GET /healthz at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from bot import commands
from bot.alarms.verify import sign
from bot.app import DESK, REGISTRE, STORE, build_app
from bot.audit import Registre
from bot.console import ConsoleOptions
from bot.demo import ALARM_SOURCE, CONSOLE_PERSON, build_demo
from bot.store import Store

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class LinkSink(io.StringIO):
    """The console room's output: notes when a line carrying a link arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def write(self, s: str) -> int:
        if "/live/" in s and "OUVERT" in s:
            self.event.set()
        return len(s)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def floor_ms(n: int, tmp: Path) -> list[float]:
    reg, store = Registre(tmp / "floor-registre.sqlite3"), Store(tmp / "floor-state.sqlite3")
    q: asyncio.Queue[int] = asyncio.Queue()
    out = []
    from datetime import UTC, datetime

    from bot.config_load import build_convention
    from bot.policy.decide import Trigger, evaluate
    from bot.policy.incident import Source

    demo = build_demo(8080, 4, date.today(), FAST)
    conv = build_convention(demo.settings)
    for i in range(n):
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        d = evaluate(conv, Trigger(Source.PERSON, CONSOLE_PERSON, now, category="attaque_armee"), None, now, f"F{i}")
        reg.append("trigger", incident=f"F{i}", actor=CONSOLE_PERSON, details={"n": i})
        assert d.incident is not None
        store.save(d.incident)
        q.put_nowait(i)
        await q.get()
        out.append((time.perf_counter() - t0) * 1000)
    reg.close()
    store.close()
    return out


async def trigger_to_link(n: int, tmp: Path) -> list[float]:
    demo = build_demo(8080, 4, date.today(), FAST)
    sink = LinkSink()
    app = build_app(demo.settings, tmp / "t2l", console=ConsoleOptions(CONSOLE_PERSON, io.StringIO(), sink, lambda: None))
    runner = web.AppRunner(app)
    await runner.setup()
    desk = app[DESK]
    person = desk.conv.person(CONSOLE_PERSON)
    out = []
    try:
        for _ in range(n):
            sink.event.clear()
            t0 = time.perf_counter()
            await commands.run(desk, commands.parse("/alert attaque_armee Hall A"), person, "console", "fr")  # type: ignore[arg-type]
            await sink.event.wait()
            out.append((time.perf_counter() - t0) * 1000)
            await commands.run(desk, commands.parse("/end"), person, "console", "fr")  # type: ignore[arg-type]
            await desk.fanout.drain()
    finally:
        await runner.cleanup()
    return out


async def storm(n: int, concurrency: int, tmp: Path) -> dict[str, float]:
    demo = build_demo(8080, 4, date.today(), FAST)
    app = build_app(demo.settings, tmp / "storm")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"type": "panic", "zone": "Hall A"}).encode()
    statuses: list[int] = []

    async def worker(session: aiohttp.ClientSession, ids: list[int], alarm: bool) -> None:
        for i in ids:
            if alarm:
                ts = int(time.time())
                mid = f"storm_{i}"
                headers = {"webhook-id": mid, "webhook-timestamp": str(ts), "content-type": "application/json",
                           "webhook-signature": sign(demo.alarm_secret, mid, ts, body)}
                async with session.post(f"{base}/hooks/alarm/{ALARM_SOURCE}", data=body, headers=headers) as r:
                    statuses.append(r.status)
                    await r.read()
            else:
                async with session.get(f"{base}/healthz") as r:
                    await r.read()

    async def run(alarm: bool) -> float:
        chunks = [list(range(i, n, concurrency)) for i in range(concurrency)]
        async with aiohttp.ClientSession() as s:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(s, c, alarm) for c in chunks))
            return n / (time.perf_counter() - t0)

    try:
        base_rps = await run(alarm=False)
        alarm_rps = await run(alarm=True)
        open_ = app[DESK].open_incidents()
        records = app[REGISTRE].records()
        joined = sum(1 for r in records if r.kind == "joined")
        result = {"rps": alarm_rps, "baseline_rps": base_rps, "accepted": statuses.count(202),
                  "incidents": len(open_), "joined": joined, "store_ok": float(app[STORE] is not None)}
    finally:
        await runner.cleanup()
    return result


def registre_append(n: int, tmp: Path) -> tuple[float, float]:
    """Median µs of one registre append vs one plain SQLite insert+commit (same WAL settings)."""
    import sqlite3

    reg = Registre(tmp / "append-registre.sqlite3")
    raw = sqlite3.connect(tmp / "append-raw.sqlite3", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE t (a TEXT)")
    ours, base = [], []
    for i in range(n):
        t0 = time.perf_counter()
        reg.append("stream_opened", incident="INC-1", actor="p1", details={"camera": "hall", "i": i})
        t1 = time.perf_counter()
        raw.execute("INSERT INTO t VALUES (?)", (json.dumps({"camera": "hall", "i": i}),))
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1e6)
        base.append((t2 - t1) * 1e6)
    reg.close()
    raw.close()
    return statistics.median(ours), statistics.median(base)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--triggers", type=int, default=200)
    ap.add_argument("--storm", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as d:
        tmp = Path(d)
        floor = await floor_ms(args.triggers, tmp)
        t2l = await trigger_to_link(args.triggers, tmp)
        f50, f95 = statistics.median(floor), pct(floor, 95)
        p50, p95 = statistics.median(t2l), pct(t2l, 95)
        print(f"trigger → link in console room, {args.triggers} triggers:")
        print(f"  p50 {p50:7.2f} ms   floor {f50:6.2f} ms   ratio {p50 / f50:5.1f}×")
        print(f"  p95 {p95:7.2f} ms   floor {f95:6.2f} ms   ratio {p95 / f95:5.1f}×   (target p95 ≤ 200 ms)")
        ours, base = registre_append(2000, tmp)
        print(f"registre append: median {ours:6.1f} µs   plain SQLite insert {base:6.1f} µs   ratio {ours / base:4.1f}×")
        s = await storm(args.storm, args.concurrency, tmp)
        print(f"alarm webhook storm, {args.storm} signed requests, concurrency {args.concurrency}:")
        print(f"  {s['rps']:7.0f} req/s   /healthz baseline {s['baseline_rps']:7.0f} req/s   ratio {s['rps'] / s['baseline_rps']:.2f}×")
        lost = args.storm - int(s["accepted"])
        print(f"  accepted {int(s['accepted'])}/{args.storm} (lost {lost}), open incidents {int(s['incidents'])}, "
              f"joined records {int(s['joined'])} (expected {args.storm - 1})")


if __name__ == "__main__":
    asyncio.run(main())
