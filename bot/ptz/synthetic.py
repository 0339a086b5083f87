"""The demo's synthetic PTZ dome: a position that moves at the commanded speed, presets, a home.

No network: it stands in for an ONVIF camera so a newcomer can try catastrophe mode end to end
(declare, confirm, steer from the page, back home). ``position`` is what the camera would show.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..ptz_control import PtzError

PRESETS = {"origine": ("Origine", (0.0, 0.0, 0.0)), "scene": ("Scène", (0.0, -0.3, 0.5)),
           "entree": ("Entrée", (-0.8, 0.1, 0.2))}


class SyntheticPtz:
    def __init__(self, home_preset: str | None = "origine", clock: Callable[[], float] = time.monotonic) -> None:
        self._home = home_preset if home_preset in PRESETS else "origine"
        self._clock = clock
        self._at = PRESETS[self._home][1]
        self._speed = (0.0, 0.0, 0.0)
        self._since = clock()

    @property
    def position(self) -> tuple[float, float, float]:
        dt = self._clock() - self._since
        return tuple(max(-1.0, min(1.0, p + v * dt * 0.5)) for p, v in zip(self._at, self._speed,  # type: ignore[return-value]
                                                                                  strict=True))

    def _set(self, at: tuple[float, float, float], speed: tuple[float, float, float]) -> None:
        self._at, self._speed, self._since = at, speed, self._clock()

    async def move(self, pan: float, tilt: float, zoom: float) -> None:
        self._set(self.position, (pan, tilt, zoom))

    async def stop(self) -> None:
        self._set(self.position, (0.0, 0.0, 0.0))

    async def goto_preset(self, token: str) -> None:
        if token not in PRESETS:
            raise PtzError(f"preset: no preset {token!r}")
        self._set(PRESETS[token][1], (0.0, 0.0, 0.0))

    async def home(self) -> None:
        await self.goto_preset(self._home)

    async def presets(self) -> list[tuple[str, str]]:
        return [(token, name) for token, (name, _) in PRESETS.items()]

    async def close(self) -> None:
        return None
