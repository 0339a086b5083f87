"""Telegram: the link under the group's flood limit, per-group budget vs python-telegram-bot's FIFO limiter.

Run:  .venv/bin/python -m bench.bench_telegram [--incidents 20] [--every 15] [--tiles 5] [--speed 2]

The whole bot (build_app) runs against the fake Bot API enforcing Telegram's limits: 20 sends or
edits per group in any minute (429 ``retry_after`` past it) and 30 per second overall. A chief
types ``/alerte`` every ``--every`` seconds; the mosaic tile is posted every ``--tiles`` seconds
while access is open; the police ends each incident with ``/fin`` two thirds of the way to the
next one (its answer, two deletions and the closure report follow).

Time runs ``--speed`` times faster than the wall clock, on one clock shared by the fake's
limiter, Vigie's budget and the baseline's limiter (5 minutes of Telegram time take 2.5 at the
default). Latencies are in that clock: the bot's own processing is inflated by ``--speed``
(pessimistic; on a loaded machine use --speed 1 for real-time figures). For each trigger: the
time from the ``/alerte`` reaching the fake to the link's accepted ``sendMessage``, and whether
the link was the first request to the group.

The baseline is the code before the budget: PTB's ``AIORateLimiter`` (first come, first served,
leaky bucket; its time periods and 429 sleeps scaled the same way), tiles always edited, and a
separate acknowledgement of ``/alerte`` before the link.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import telegram.ext._aioratelimiter as ptb_limiter
from telegram.ext import AIORateLimiter

import bot.telegram.transport as transport
from bot.telegram.budget import BudgetClock, RateBudget
from bot.telegram.updates import TelegramInput
from tests.fakes import FakeTelegram
from tests.telegram.support import (
    CHIEF,
    CIC,
    GROUP,
    Vigie,
    caption,
    free_port,
    jpeg,
    make_fake,
    make_settings,
)

LINK_MARK = "ACCÈS VIDÉO OUVERT"


class VirtualClock:
    """Seconds since the epoch, running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._wall0, self._mono0 = time.time(), time.monotonic()

    def __call__(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


@dataclass
class Result:
    name: str
    latencies_ms: list[float]
    link_first: int
    violations: int
    tiles_edited: int
    tiles_skipped: int
    replies: int


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@contextmanager
def fifo_baseline(clock: VirtualClock) -> Iterator[None]:
    """The code before the budget: PTB's limiter, every tile frame sent, /alerte acknowledged apart."""

    class ScaledAsyncio:  # the limiter's 429 sleeps on the benchmark's clock
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        sleep = staticmethod(clock.sleep)

    class Fifo(AIORateLimiter):
        async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                                  kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                                  rate_limit_args: Any) -> Any:
            return await super().process_request(callback, args, kwargs, endpoint, data, None)

    saved = (transport.LaneLimiter, RateBudget.spare, TelegramInput._opening_states, ptb_limiter.asyncio)
    transport.LaneLimiter = lambda _budget: Fifo(  # type: ignore[assignment,misc]
        overall_time_period=1 / clock.speed, group_time_period=60 / clock.speed, max_retries=5)
    RateBudget.spare = lambda self, chat, lane: True  # type: ignore[method-assign]
    TelegramInput._opening_states = lambda self: set()  # type: ignore[method-assign]
    ptb_limiter.asyncio = ScaledAsyncio()  # type: ignore[assignment]
    try:
        yield
    finally:
        (transport.LaneLimiter, RateBudget.spare, TelegramInput._opening_states, ptb_limiter.asyncio) = saved


def group_requests(fake: FakeTelegram) -> list[tuple[float, str, dict[str, Any]]]:
    """Counted requests to the group, in arrival order: (time, method, params)."""
    out = []
    for (name, params), at in zip(fake.calls, fake.call_times, strict=True):
        if name.startswith(("send", "edit")) and str(params.get("chat_id")) == str(GROUP):
            out.append((at, name, params))
    return out


async def run(name: str, incidents: int, every: float, tiles: float, speed: float, data: Path) -> Result:
    clock = VirtualClock(speed)
    fake = make_fake()
    fake._clock = clock  # the fake's limiter and message dates on the benchmark's clock
    fake.rate_limits = True
    await fake.start()
    options = transport.TelegramOptions(
        api_url=fake.url, poll_timeout=2, budget_clock=BudgetClock(now=clock, speed=speed),
        wall_clock=lambda: datetime.fromtimestamp(clock(), UTC))
    port = free_port()
    vigie = Vigie(fake, data, make_settings(port), port, options)
    await vigie.start()
    start = clock()
    triggers: list[float] = []
    stop_tiles = asyncio.Event()

    async def tile_loop() -> None:
        frame = jpeg(320, 180)
        while not stop_tiles.is_set():
            for inc in vigie.desk.open_incidents():
                vigie.desk.post_tile(inc.id, frame, caption)
            await clock.sleep(tiles)

    tiler = asyncio.create_task(tile_loop())
    for i in range(incidents):
        await clock.sleep(max(0.0, start + i * every - clock()))
        triggers.append(clock())
        fake.user_sends(GROUP, CHIEF, "/alerte attaque_armee Hall A")
        await clock.sleep(every * 2 / 3)
        fake.user_sends(GROUP, CIC, "/fin")
    await clock.sleep(every / 3)
    stop_tiles.set()
    await tiler
    await clock.sleep(30)  # what waits for the group's budget leaves
    await vigie.stop()
    await fake.stop()

    requests = group_requests(fake)
    latencies, first = [], 0
    for t in triggers:
        after = [(at, n, p) for at, n, p in requests if at >= t]
        links = [(at, n) for at, n, p in after if n == "sendMessage" and LINK_MARK in str(p.get("text"))]
        accepted = [at for at, _ in links if at in fake.accepted.get(GROUP, [])]
        if accepted:
            latencies.append((accepted[0] - t) * 1000)
        first += bool(after) and after[0][1] == "sendMessage" and LINK_MARK in str(after[0][2].get("text"))
    edits = sum(1 for _, n, _ in requests if n == "editMessageMedia")
    skipped = sum(getattr(o.room, "tiles_skipped", 0) for o in vigie.desk.fanout.outboxes)
    replies = sum(1 for _, n, p in requests if n == "sendMessage" and p.get("reply_parameters"))
    violations = sum(1 for e in fake.errors if e[1] == 429)
    missing = incidents - len(latencies)
    if missing:
        print(f"  {name}: {missing} link(s) never delivered")
    return Result(name, latencies, first, violations, edits, skipped, replies)


def show(r: Result, incidents: int) -> None:
    lat = r.latencies_ms or [float("nan")]
    print(f"{r.name:<22} link p50 {statistics.median(lat):8.0f} ms  p95 {pct(lat, 95):8.0f} ms  max {max(lat):8.0f} ms"
          f"  link first {r.link_first}/{incidents}  429s {r.violations}  tile edits {r.tiles_edited}"
          f" (skipped {r.tiles_skipped})"
          f"  replies {r.replies}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=20)
    ap.add_argument("--every", type=float, default=15.0)
    ap.add_argument("--tiles", type=float, default=5.0)
    ap.add_argument("--speed", type=float, default=2.0)
    a = ap.parse_args()
    print(f"{a.incidents} incidents every {a.every:.0f} s, a tile every {a.tiles:.0f} s, "
          f"fake enforcing 20/min per group; time x{a.speed:g}")

    async def both() -> list[Result]:
        with tempfile.TemporaryDirectory() as tmp:
            budget = await run("per-group budget", a.incidents, a.every, a.tiles, a.speed, Path(tmp) / "budget")
            with fifo_baseline(VirtualClock(a.speed)):
                fifo = await run("baseline (FIFO limiter)", a.incidents, a.every, a.tiles, a.speed, Path(tmp) / "fifo")
        return [budget, fifo]

    results = asyncio.run(both())
    for r in results:
        show(r, a.incidents)
    budget, fifo = results
    if budget.latencies_ms and fifo.latencies_ms:
        print(f"link p95: budget / baseline = {pct(budget.latencies_ms, 95) / pct(fifo.latencies_ms, 95):.3f}")


if __name__ == "__main__":
    main()
