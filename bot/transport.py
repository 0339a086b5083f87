"""What every transport (Telegram, Matrix, the console, DC-09 panels) offers the composition root.

A transport brings zero or more chat rooms (they join the one fan-out) and attaches itself to
the application: its routes and its lifecycle, as ``cleanup_ctx`` entries that ``web.run_app``
starts after the outboxes and the restored desk, and stops before them. ``bot/app.py`` loops
over the enabled transports; it knows none of their insides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from .desk_port import DeskPort
from .rooms import Room


class Transport(Protocol):
    @property
    def chat_rooms(self) -> Sequence[Room]:
        """The rooms this transport delivers to (none for an alarm receiver)."""
        ...

    def attach(self, app: web.Application, desk: DeskPort) -> None:
        """Add this transport's routes and lifecycle (``app.cleanup_ctx``) to ``app``."""
        ...
