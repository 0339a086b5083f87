"""A rate budget per Telegram group in which the access link never waits behind anything else.

Telegram lets a bot send about 20 messages a minute to one group (sends and edits count; past
it, a 429 with ``retry_after``) and about 30 a second overall. python-telegram-bot's
``AIORateLimiter`` queues every request first come, first served, so a link could wait seconds
behind courtesy replies and tile edits. Here each group has a sliding window and every request
carries a lane (PTB's ``rate_limit_args``):

=========  ==========================================  =============================================
lane       may use, of the group's 20 per minute       when that is used up
=========  ==========================================  =============================================
LINK       all 20 (the access link and its re-issue)   waits for the first slot that frees
NORMAL     20 − ``link_reserve`` (requests, reports)   waits; a link always leaves first
REPLY      one fewer (answers to commands)             waits; links and NORMAL leave first (the
                                                       room's outbox, where the link queues, is
                                                       then rarely held up by a waiting message)
TILE       20 − ``link_reserve`` − ``tile_headroom``   the room skips that frame (the next one
                                                       replaces it anyway)
=========  ==========================================  =============================================

Waiting requests leave in lane order, then in arrival order. Deletions and callback answers are
not counted by Telegram and never wait. Should a 429 come anyway (another client using the same
token, clock drift), the whole chat is held for ``retry_after`` and the request is made again,
at most ``flood_retries`` times: one 429 on the link means the link is delivered once, after
``retry_after``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)

COUNTED = ("send", "edit", "copy", "forward")  # what Telegram's per-group limit counts
_NAP = 1.0  # real seconds a waiting request sleeps at most before looking again


class Lane(IntEnum):
    """Priority of a request to a group, most urgent first (never 0: PTB drops falsy arguments)."""

    LINK = 1
    NORMAL = 2
    REPLY = 3
    TILE = 4


@dataclass(frozen=True)
class BudgetClock:
    """Seconds as the budget counts them; benchmarks run a faster clock shared with their fake."""

    now: Callable[[], float] = time.monotonic
    speed: float = 1.0  # budget seconds per real second


@dataclass(frozen=True)
class BudgetRules:
    group_per_minute: int = 20
    # A second of margin: Telegram counts requests when they arrive, we when they leave.
    period: float = 61.0
    link_reserve: int = 2  # slots of every window that only a link may take
    tile_headroom: int = 2  # tiles stop this much earlier still, so replies rarely wait for them
    global_per_second: int = 30
    flood_retries: int = 3  # 429s waited out before the caller sees the error


class _Window:
    """Times of the requests of the last ``period`` seconds, and a hold after a 429."""

    def __init__(self, capacity: int, period: float) -> None:
        self.capacity = capacity
        self.period = period
        self.times: deque[float] = deque()
        self.hold_until = 0.0

    def free_at(self, now: float, limit: int) -> float:
        """When fewer than ``limit`` requests will be in the window (now, if already)."""
        times = self.times
        while times and times[0] <= now - self.period:
            times.popleft()
        at = now if len(times) < limit else times[len(times) - limit] + self.period
        return max(at, self.hold_until)


class RateBudget:
    def __init__(self, rules: BudgetRules = BudgetRules(), clock: BudgetClock = BudgetClock()) -> None:
        self.rules = rules
        self.clock = clock
        self._groups: dict[int, _Window] = {}
        self._global = _Window(rules.global_per_second, 1.0)
        self._queues: dict[int | None, list[tuple[int, int]]] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.sent: dict[Lane, int] = dict.fromkeys(Lane, 0)

    def limit(self, lane: Lane) -> int:
        r = self.rules
        if lane is Lane.LINK:
            return r.group_per_minute
        below = {Lane.NORMAL: 0, Lane.REPLY: 1, Lane.TILE: r.tile_headroom}[lane]
        return r.group_per_minute - r.link_reserve - below

    def _window(self, chat: int | None) -> _Window | None:
        if chat is None:
            return None
        window = self._groups.get(chat)
        if window is None:
            window = self._groups[chat] = _Window(self.rules.group_per_minute, self.rules.period)
        return window

    def _ready_at(self, chat: int | None, lane: Lane, now: float) -> float:
        at = self._global.free_at(now, self._global.capacity)
        window = self._window(chat)
        return at if window is None else max(at, window.free_at(now, self.limit(lane)))

    def spare(self, chat: int | None, lane: Lane) -> bool:
        """Whether a request of ``lane`` would leave now, with nobody waiting before it."""
        now = self.clock.now()
        return not self._queues.get(chat) and self._ready_at(chat, lane, now) <= now

    async def acquire(self, chat: int | None, lane: Lane) -> None:
        """Wait for this request's turn in ``chat`` (a group id, or None for a private chat)."""
        queue = self._queues.setdefault(chat, [])
        key = (int(lane), next(self._seq))
        heapq.heappush(queue, key)
        try:
            while True:
                wake = self._wake
                now = self.clock.now()
                at = self._ready_at(chat, lane, now)
                first = queue[0] == key
                if first and at <= now:
                    heapq.heappop(queue)
                    self._take(chat, lane, now)
                    return
                # The first in line sleeps until its slot frees; the others until someone leaves.
                await self._sleep(wake, at - now if first else None)
        finally:
            if key in queue:  # cancelled while waiting
                queue.remove(key)
                heapq.heapify(queue)
            if not queue:
                self._queues.pop(chat, None)
            self._notify()

    def _take(self, chat: int | None, lane: Lane, now: float) -> None:
        self._global.times.append(now)
        window = self._window(chat)
        if window is not None:
            window.times.append(now)
        self.sent[lane] += 1

    def hold(self, chat: int | None, seconds: float) -> None:
        """Telegram said 429: nothing more to ``chat`` (or to anyone, if None) for ``seconds``."""
        window = self._window(chat) or self._global
        window.hold_until = max(window.hold_until, self.clock.now() + seconds)
        self._notify()

    async def wait_hold(self, chat: int | None) -> None:
        """Wait out a hold without taking a slot (requests Telegram does not count)."""
        while True:
            window = self._window(chat) or self._global
            left = max(window.hold_until, self._global.hold_until) - self.clock.now()
            if left <= 0:
                return
            await self._sleep(self._wake, left)

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def _sleep(self, wake: asyncio.Event, seconds: float | None) -> None:
        # Never longer than a second: a clock that jumps (tests, benchmarks) is seen soon enough.
        timeout = min(_NAP, _NAP if seconds is None else max(seconds, 0.0) / self.clock.speed)
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass


def group_of(data: dict[str, Any]) -> int | None:
    """The group a request is for (groups have negative ids), or None."""
    try:
        chat = int(data.get("chat_id") or 0)
    except (TypeError, ValueError):  # an @username: not one of ours
        return None
    return chat if chat < 0 else None


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the attribute will become a timedelta
        warnings.simplefilter("ignore")
        value: float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class LaneLimiter(BaseRateLimiter[Lane]):
    """PTB's rate-limiter hook, driven by a ``RateBudget``."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Lane | None,
    ) -> bool | JSONDict | list[JSONDict]:
        lane = rate_limit_args if isinstance(rate_limit_args, Lane) else Lane.NORMAL
        chat = group_of(data)
        counted = endpoint.startswith(COUNTED)
        retries = self.budget.rules.flood_retries
        for attempt in itertools.count():
            if counted:
                await self.budget.acquire(chat, lane)
            else:
                await self.budget.wait_hold(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self.budget.hold(chat, seconds)
                if attempt >= retries:
                    raise
                logger.info("Telegram %s: flood control, %s waits %.0f s", endpoint,
                            f"group {chat}" if chat is not None else "the bot", seconds)
        raise AssertionError("unreachable")  # pragma: no cover
