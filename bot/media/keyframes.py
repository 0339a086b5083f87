"""Bounded per-consumer queues that drop to the next keyframe instead of growing.

A consumer that cannot keep up (a viewer on a weak 4G link) loses whole GOPs, never
makes the process buffer for it: on overflow the queue is emptied and refills only
from the next keyframe, so what the consumer gets next is always decodable.
These queues live on the event loop; producers in threads reach them through the relay's
`Inbox`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class DropToKeyframeQueue(Generic[T]):
    """Single-consumer async queue bounded in items and bytes. Event-loop thread only."""

    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        size: Callable[[T], int],
        is_key: Callable[[T], bool],
    ) -> None:
        self._items: deque[T] = deque()
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._size = size
        self._is_key = is_key
        self._skipping = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.overflows = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    @property
    def idle(self) -> bool:
        """Nothing waiting, nothing being skipped, still open: a new item would be next in line."""
        return not self._items and not self._skipping and not self._closed

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, item: T) -> None:
        if self._closed:
            return
        key = self._is_key(item)
        if self._skipping:
            if not key:
                self.dropped += 1
                return
            self._skipping = False
        size = self._size(item)
        if len(self._items) >= self._max_items or self._bytes + size > self._max_bytes:
            self.overflows += 1
            self.dropped += len(self._items)
            self._items.clear()
            self._bytes = 0
            if not key:
                self._skipping = True
                self.dropped += 1
                return
        self._items.append(item)
        self._bytes += size
        self._wake()

    def skip_to_key(self) -> None:
        """Take nothing until the next keyframe (a consumer that starts without one)."""
        self._skipping = True

    def close(self) -> None:
        """End the consumer's iteration promptly; pending items are discarded."""
        self._closed = True
        self._items.clear()
        self._bytes = 0
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _ready(self) -> bool:
        """Wait for an item; False once the queue is closed."""
        while not self._items:
            if self._closed:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return not self._closed

    async def get(self) -> T | None:
        """The next item, or None once the queue is closed."""
        if not await self._ready():
            return None
        item = self._items.popleft()
        self._bytes -= self._size(item)
        return item

    async def get_batch(self, limit: int) -> list[T]:
        """Every item waiting (at most ``limit``), at least one; empty once the queue is closed.
        One wake-up of the consumer for what came together (a link that fell behind, a GOP)."""
        if not await self._ready():
            return []
        items = self._items
        if len(items) <= limit:
            batch = list(items)
            items.clear()
            self._bytes = 0
        else:
            batch = [items.popleft() for _ in range(limit)]
            self._bytes -= sum(map(self._size, batch))
        return batch

    def __aiter__(self) -> DropToKeyframeQueue[T]:
        return self

    async def __anext__(self) -> T:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item
