"""The ingest thread: one event loop, off the bot's, that reads every RTSP camera.

Media stays off the bot's loop (a burst of 40 streams must never delay an /alerte), and in
one thread instead of one per stream: the threads' hand-overs of the GIL were most of the
ingest's cost and of each viewer's (``rtsp_client``). Cameras run here as tasks; what they
publish reaches the bot's loop as before (``relay.Inbox``, ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..loops import new_event_loop

logger = logging.getLogger(__name__)

T = TypeVar("T")


class IngestLoop:
    """Starts its thread on first use; ``stop`` ends it once the cameras are closed."""

    def __init__(self, name: str = "ingest") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._running())

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                loop = new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._loop = loop
                self._thread = threading.Thread(target=run, name=self._name, daemon=True)
                self._thread.start()
                ready.wait(5)
            return self._loop

    def stop(self, timeout: float = 2.0) -> None:
        """End the loop: tasks still running (a camera stuck past its stop timeout) are cancelled."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def wind_down() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=timeout) if tasks else None
            loop.stop()

        try:
            asyncio.run_coroutine_threadsafe(wind_down(), loop)
        except RuntimeError:
            return
        thread.join(timeout + 1)
        if thread.is_alive():
            logger.warning("ingest loop still running after %.1f s", timeout + 1)
            return
        loop.close()
