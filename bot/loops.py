"""The event loops Vigie runs on: uvloop's, for the bot's loop and for the ingest thread's.

Why (measured on the GStreamer farm with ``bench/media/bench_threads.py``, 20 viewers each on its
own camera, paired 0/20 levels in one bot): the bot's loop spends most of a viewer's cost
writing fragments to sockets and waking up every 20 ms to take the cameras' frames
(``relay.Inbox``); asyncio's own loop runs both in Python, uvloop in C (libuv), and its
``writelines`` sends a fragment's buffers in one ``writev`` where asyncio's joins them first.
Everything Vigie runs on the loop (aiohttp, matrix-nio, python-telegram-bot's httpx, APScheduler)
only uses the asyncio API, which uvloop implements.
"""

from __future__ import annotations

import asyncio

import uvloop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind Vigie runs on (not set as the thread's current loop)."""
    return uvloop.new_event_loop()
