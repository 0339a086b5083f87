"""One viewer's live video over its WebSocket, fitted to the viewer's link.

Two qualities: ``hd`` (the camera's main stream) and ``saver``, "économie de données" (the
camera's substream, ~0.25 Mbit/s instead of ~4; for a camera without substream, the main
stream's keyframes only). The page picks one at the start (``?quality=``); it may also switch
by sending ``hd`` or ``saver`` as a text message (the live page reconnects instead, which
drops what the old connection still had in flight).

The server moves a viewer down on its own when its link cannot carry what it gets: the
fragments waiting for the socket (aiohttp holds a send until the socket drains, so a slow
link shows up as the viewer's queue growing) pass ``BACKLOG_DOWN``, or the queue overflowed.
An HD viewer then goes to the substream; a viewer already there (or without substream)
gets keyframes only, and goes back to every frame once its link has kept up for
``RECOVER_AFTER`` keyframes in a row. Only past that does its queue drop to the next
keyframe. Each viewer only fills its own queue: one slow phone never holds the others back.

A fragment that finds nothing ahead of it (the viewer's queue empty, the socket's buffer
empty) is written straight to the socket by the relay, as one WebSocket frame, without
waking this viewer's task: that wake-up per frame and per viewer was most of what a viewer
cost the event loop. Anything else goes through the queue and this task, in order; so does
every init segment and every frame of a keyframes-only viewer.

Each change of stream is announced by a JSON text message before the new MIME type and
init segment: ``{"quality": "saver", "keyframes_only": false, "reason": "link"}``. The page
starts a new media source on it (the substream has its own timeline).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from aiohttp import WSMsgType, web

from ..media.fmp4 import Parts
from ..media.relay import Batch, Relay, Viewer

logger = logging.getLogger(__name__)

# Two seconds of video (25 fps) waiting for the socket: the link does not carry this stream.
# One second is not enough: a phone busy for a moment (or a loaded test machine) holds its
# reads that long without its link being short.
BACKLOG_DOWN = 50
# Fragments in one batch once the cached GOP's burst is through: those of one or two hand-overs.
LIVE_BATCH = 3
# Keyframes sent in a row with nothing waiting before a keyframes-only viewer gets every frame again.
RECOVER_AFTER = 3


@runtime_checkable
class Link(Protocol):
    """What a fragment written straight to the socket needs of its transport: asyncio's own, or
    uvloop's (which are not ``asyncio.WriteTransport`` subclasses)."""

    def writelines(self, list_of_data: Parts) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...


class Quality(StrEnum):
    HD = "hd"
    SAVER = "saver"


@dataclass(eq=False)
class VideoChoice:
    """What one viewer gets, and the viewer currently feeding it."""

    quality: Quality
    reason: str = "page"
    viewer: Viewer | None = field(default=None, repr=False)
    reopen: bool = False

    def switch(self, quality: Quality, reason: str) -> None:
        """Change the stream: the current viewer ends and the feed opens the other one."""
        if quality is self.quality:
            return
        self.quality, self.reason, self.reopen = quality, reason, True
        if self.viewer is not None:
            self.viewer.close()


class VideoFeed:
    """The feed of one WebSocket: the chosen relay's fragments, switched as the link requires."""

    def __init__(self, ws: web.WebSocketResponse, camera_id: str, main: Relay, sub: Relay,
                 choice: VideoChoice, transport: asyncio.BaseTransport | None = None) -> None:
        self._ws = ws
        # the socket under the WebSocket (the request's), for the fragments written straight to it
        self._transport = transport if isinstance(transport, Link) else None
        self._camera = camera_id
        self._main = main
        self._sub = sub
        self.choice = choice
        self.downgrades = 0

    async def run(self) -> None:
        """Feed until the relay ends the stream (shutdown, access revoked)."""
        while True:
            choice = self.choice
            on_sub = choice.quality is Quality.SAVER and self._sub.has(self._camera)
            relay = self._sub if on_sub else self._main
            viewer = relay.open_viewer(self._camera)
            # no substream: data saving is the main stream's keyframes, a picture per GOP
            viewer.keyframes_only = choice.quality is Quality.SAVER and not on_sub
            choice.viewer, choice.reopen = viewer, False
            viewer.direct = self._direct if self._transport is not None else None
            try:
                await self._announce(viewer)
                await self._feed(relay, viewer, can_recover=not viewer.keyframes_only)
            finally:
                viewer.close()
            if not choice.reopen:
                return

    def _direct(self, parts: Parts) -> bool:
        """A live fragment, already framed (``Segment.parts``), straight to the socket if the
        socket takes it now: nothing in its buffer (the link keeps up) and the WebSocket not
        closing. aiohttp writes every frame whole and at once (no compression here), and so does
        this (the buffers in one call), so a frame never lands inside another."""
        transport = self._transport
        if transport is None or self._ws.closed or transport.is_closing() or transport.get_write_buffer_size():
            return False
        try:
            transport.writelines(parts)  # one call, one send (uvloop: one writev, nothing copied)
        except (OSError, RuntimeError):  # the socket just went: the task's own send will say so
            return False
        return True

    async def _announce(self, viewer: Viewer) -> None:
        await self._ws.send_str(json.dumps({"quality": self.choice.quality.value,
                                            "keyframes_only": viewer.keyframes_only, "reason": self.choice.reason}))

    async def _feed(self, relay: Relay, viewer: Viewer, *, can_recover: bool) -> None:
        overflows = viewer.overflows
        kept_up = 0
        live = False  # the cached GOP comes as one burst: judge the link once it is through
        async for batch in viewer.batches():
            waiting = None if batch.init is not None else batch.waiting
            await self._send(viewer, relay, batch)
            # the batch (the cached GOP, ~1 MB) is not kept while the next one is awaited: with
            # live fragments going the short way, that may be for the rest of the stream
            del batch
            if waiting is None:
                continue
            live = live or waiting <= LIVE_BATCH
            if not live:
                continue
            if waiting >= BACKLOG_DOWN or viewer.overflows != overflows:
                overflows = viewer.overflows
                kept_up = 0
                await self._slow(viewer, waiting)
            elif viewer.keyframes_only and can_recover and waiting == 1:
                kept_up += 1
                if kept_up >= RECOVER_AFTER:
                    viewer.keyframes_only = False
                    logger.info("viewer of %s keeps up again: every frame", self._camera)
                    self.choice.reason = "link"
                    await self._announce(viewer)

    async def _send(self, viewer: Viewer, relay: Relay, batch: Batch) -> None:
        if batch.init is not None:  # an init segment: its MIME type goes first
            await self._ws.send_str(viewer.mime or relay.camera_relay(self._camera).mime or "")
            await self._ws.send_bytes(batch.init)
        else:
            await self._ws.send_bytes(batch.data)

    async def _slow(self, viewer: Viewer, waiting: int) -> None:
        """The link does not keep up: substream first, then keyframes only."""
        self.downgrades += 1
        if self.choice.quality is Quality.HD and self._sub.has(self._camera):
            logger.info("viewer of %s too slow for HD (%d waiting): substream", self._camera, waiting)
            self.choice.switch(Quality.SAVER, "link")
        elif not viewer.keyframes_only:
            logger.info("viewer of %s too slow (%d waiting): keyframes only", self._camera, waiting)
            viewer.keyframes_only = True
            self.choice.reason = "link"
            await self._announce(viewer)


CONTROL_WORDS = ("ptz", "pan", "tilt", "zoom", "preset", "move", "home")


async def read_choices(ws: web.WebSocketResponse, choice: VideoChoice,
                       on_control: Callable[[], None] | None = None) -> None:
    """The page's messages: ``hd`` or ``saver`` switches the stream; a message that tries to steer the
    camera is refused (``on_control``: the video socket never steers; the PTZ routes do, in a
    catastrophe); anything else is ignored."""
    async for msg in ws:
        if msg.type is WSMsgType.TEXT and msg.data in {q.value for q in Quality}:
            choice.switch(Quality(msg.data), "page")
        elif msg.type is WSMsgType.TEXT and on_control is not None and any(w in msg.data[:200].lower()
                                                                           for w in CONTROL_WORDS):
            on_control()
        elif msg.type is WSMsgType.TEXT:
            logger.debug("ignored a page message of %d characters", len(msg.data))
