"""The per-group rate budget: never past Telegram's limit, and a link never waits behind the rest."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.telegram.budget import BudgetClock, BudgetRules, Lane, RateBudget

GROUP = -100123
SPEED = 2000.0  # budget seconds per real second: a minute of budget time is 30 ms


@dataclass
class Request:
    lane: Lane
    asked: float
    granted: float | None = None


def scaled_clock() -> BudgetClock:
    loop = asyncio.get_running_loop()
    start = loop.time()
    return BudgetClock(now=lambda: (loop.time() - start) * SPEED, speed=SPEED)


async def run(arrivals: list[tuple[float, Lane]], rules: BudgetRules) -> tuple[list[Request], int]:
    budget = RateBudget(rules, scaled_clock())
    done: list[Request] = []
    skipped = 0

    async def one(at: float, lane: Lane) -> None:
        nonlocal skipped
        await asyncio.sleep(at / SPEED)
        if lane is Lane.TILE and not budget.spare(GROUP, lane):
            skipped += 1  # what TelegramRoom.replace_tile does: this frame is not sent
            return
        req = Request(lane, budget.clock.now())
        await budget.acquire(GROUP, lane)
        req.granted = budget.clock.now()
        done.append(req)

    await asyncio.wait_for(asyncio.gather(*(one(at, lane) for at, lane in arrivals)), 10.0)
    return done, skipped


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 90), st.sampled_from(list(Lane))), max_size=60))
def test_never_past_the_limit_and_links_first(arrivals: list[tuple[float, Lane]]) -> None:
    rules = BudgetRules()
    done, skipped = asyncio.run(run(arrivals, rules))
    assert len(done) + skipped == len(arrivals)
    granted = sorted(r.granted for r in done if r.granted is not None)
    for i, t in enumerate(granted):  # no more than 20 in any minute (the budget's window is 61 s)
        assert sum(1 for u in granted[i:] if u < t + 60) <= rules.group_per_minute
    links = [r for r in done if r.lane is Lane.LINK]
    others = [r for r in done if r.lane is not Lane.LINK]
    for link in links:
        assert link.granted is not None
        # nothing else left while this link was waiting (allow for the clock's tick)
        assert not [o for o in others if o.granted is not None and link.asked + 1 < o.granted < link.granted - 1]


async def test_lanes_share_the_minute_as_documented() -> None:
    budget = RateBudget(BudgetRules(), scaled_clock())
    for _ in range(16):
        assert budget.spare(GROUP, Lane.TILE)
        await budget.acquire(GROUP, Lane.TILE)
    assert not budget.spare(GROUP, Lane.TILE) and budget.spare(GROUP, Lane.REPLY)
    await budget.acquire(GROUP, Lane.REPLY)
    assert not budget.spare(GROUP, Lane.REPLY) and budget.spare(GROUP, Lane.NORMAL)
    await budget.acquire(GROUP, Lane.NORMAL)
    assert not budget.spare(GROUP, Lane.NORMAL) and budget.spare(GROUP, Lane.LINK)
    await budget.acquire(GROUP, Lane.LINK)
    await budget.acquire(GROUP, Lane.LINK)
    assert not budget.spare(GROUP, Lane.LINK)
    assert budget.spare(None, Lane.REPLY)  # a private chat has no group window
    budget.hold(None, 5.0)  # a 429 for the whole bot
    assert not budget.spare(None, Lane.REPLY)
