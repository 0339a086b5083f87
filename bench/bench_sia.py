"""SIA DC-09 benchmark: a hold-up frame → its ACK, and → the link posted in the console room.

Run:  .venv/bin/python -m bench.bench_sia [--holdups 100] [--idle 200]

The demo app (real desk, registre, store, console room) with its DC-09 receiver; each hold-up is
an AES-128 Contact ID 122 sent by a panel on a fresh TCP connection (connect on demand), then
``/end`` closes the incident so the next hold-up opens a new one. Three runs, p50/p95 each:

- baseline: no other connection;
- ``--idle`` idle sockets opened from the panel's own address first, default limits: the
  receiver keeps ``per_source`` of them and closes the oldest idle one for each newcomer;
- the same sockets all held open by the receiver (per-source cap raised, under the global cap):
  what 200 silent connections cost a hold-up when nothing evicts them.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from aiohttp import web

from bench.bench_core import FAST, LinkSink, pct
from bot import commands
from bot.app import DESK, ConsoleOptions, build_app
from bot.demo import CONSOLE_PERSON, PANEL_ACCOUNT, build_demo
from bot.sia.connections import Limits, Pool
from bot.sia.receiver import SIA
from bot.sia.sender import Link, Panel


async def hold_ups(n: int, idle: int, limits: Limits | None, tmp: Path) -> tuple[list[float], list[float], int]:
    """(frame → ACK ms, frame → link ms, connections the receiver held open at the end)."""
    demo = build_demo(8080, 4, date.today(), FAST)
    sink = LinkSink()
    app = build_app(demo.settings, tmp, console=ConsoleOptions(CONSOLE_PERSON, io.StringIO(), sink, lambda: None))
    rx = app[SIA]
    if limits is not None:
        rx.pool = Pool(limits)
    runner = web.AppRunner(app)
    await runner.setup()
    desk = app[DESK]
    person = desk.conv.person(CONSOLE_PERSON)
    panel = Panel(PANEL_ACCOUNT, key=demo.sia_key)
    writers = []
    acks, links = [], []
    try:
        for _ in range(idle):
            _, w = await asyncio.open_connection("127.0.0.1", demo.sia_port)
            writers.append(w)
        await asyncio.sleep(0.2)  # let the receiver admit (or evict) every one of them
        for _ in range(n):
            _, frame = panel.cid(1, 122, partition=1, zone=4)
            link = await Link.open("127.0.0.1", demo.sia_port)
            sink.event.clear()
            t0 = time.perf_counter()
            reply = await link.send(frame, demo.sia_key)
            acks.append((time.perf_counter() - t0) * 1000)
            await sink.event.wait()
            links.append((time.perf_counter() - t0) * 1000)
            await link.close()
            assert reply.kind == "ACK", reply
            await commands.run(desk, commands.parse("/end"), person, "console", "fr")  # type: ignore[arg-type]
            await desk.fanout.drain()
        held = len(rx.pool)
    finally:
        for w in writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await runner.cleanup()
    return acks, links, held


def line(label: str, acks: list[float], links: list[float], base: tuple[list[float], list[float]] | None) -> str:
    a50, a95, l50, l95 = statistics.median(acks), pct(acks, 95), statistics.median(links), pct(links, 95)
    text = f"  {label:<34} ACK p50 {a50:6.2f} p95 {a95:6.2f} ms   link p50 {l50:6.2f} p95 {l95:6.2f} ms"
    if base is not None:
        text += f"   ratio to baseline p95: ACK {a95 / pct(base[0], 95):4.2f}×, link {l95 / pct(base[1], 95):4.2f}×"
    return text


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--holdups", type=int, default=100)
    ap.add_argument("--idle", type=int, default=200)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the synthetic cameras' stop messages are not figures
    with tempfile.TemporaryDirectory(prefix="vigie-bench-sia-") as d:
        tmp = Path(d)
        base_acks, base_links, _ = await hold_ups(args.holdups, 0, None, tmp / "base")
        base = (base_acks, base_links)
        ev_acks, ev_links, ev_held = await hold_ups(args.holdups, args.idle, None, tmp / "evict")
        held_limits = Limits(per_source=args.idle + 16, total=max(Limits.total, args.idle + 16))
        h_acks, h_links, h_held = await hold_ups(args.holdups, args.idle, held_limits, tmp / "held")
    print(f"SIA DC-09 hold-up (AES-128 Contact ID 122, TCP, a connection each), {args.holdups} hold-ups:")
    print(line("baseline, no idle socket", base_acks, base_links, None))
    print(line(f"{args.idle} idle sockets, default limits", ev_acks, ev_links, base))
    print(f"    (the receiver kept {ev_held} of them open, per-source cap {Limits.per_source})")
    print(line(f"{args.idle} idle sockets all held open", h_acks, h_links, base))
    print(f"    (the receiver held {h_held} connections)")
    worst = max(pct(ev_acks, 95), pct(h_acks, 95))
    print(f"  target: a hold-up answered within 100 ms behind {args.idle} idle sockets — worst ACK p95 {worst:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
