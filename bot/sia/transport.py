"""DC-09 panels as a transport: no room of their own; the receiver listens once the desk is restored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web
from apscheduler.schedulers.base import BaseScheduler

from ..desk_port import DeskPort
from ..settings import Settings
from .receiver import SIA, ReceiverConfig, SiaReceiver, receiver_config


class SiaTransport:
    def __init__(self, config: ReceiverConfig, clock: Callable[[], datetime], scheduler: BaseScheduler) -> None:
        self._config = config
        self._clock = clock
        self._scheduler = scheduler

    @property
    def chat_rooms(self) -> tuple[()]:
        return ()

    def attach(self, app: web.Application, desk: DeskPort) -> None:
        receiver = SiaReceiver(self._config, desk, self._clock, self._scheduler)
        app[SIA] = receiver

        async def sia_ctx(_: web.Application) -> AsyncIterator[None]:
            await receiver.start()
            yield
            await receiver.stop()

        app.cleanup_ctx.append(sia_ctx)


def build_sia(settings: Settings, clock: Callable[[], datetime], scheduler: BaseScheduler) -> SiaTransport | None:
    """The panels' transport, or None when no panel is configured."""
    config = receiver_config(settings)
    return SiaTransport(config, clock, scheduler) if config is not None else None
