"""A PTZ camera over ONVIF, through onvif-zeep-async (the maintained async client Home Assistant uses).

No hand-written SOAP: the library builds and parses every message from the ONVIF WSDLs. Each call
is bounded by the camera's ``timeout_seconds``, so a camera that hangs never holds a gesture, the
end of a catastrophe or the service's stop; any failure (timeout, refused connection, SOAP fault,
wrong password) becomes a ``PtzError`` naming it, and the next call connects afresh.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from ..ptz_control import PtzError


def _import_client() -> Any:
    """onvif-zeep-async calls ``logging.basicConfig(level=INFO)`` when imported: that would add a plain
    stderr handler to the root logger before Vigie sets up its own (JSON lines, redaction). Undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onvif import ONVIFCamera

    root.handlers[:] = handlers
    root.setLevel(level)
    return ONVIFCamera


ONVIFCamera = _import_client()
logger = logging.getLogger(__name__)
MOVE_TIMEOUT = timedelta(seconds=2)  # the page sends a tick every 250 ms while a finger is held


class OnvifPtz:
    def __init__(self, endpoint: str, username: str, password: str, home_preset: str | None = None,
                 profile: str | None = None, timeout: float = 5.0) -> None:
        parts = urlsplit(endpoint)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._user, self._password = username or None, password or None
        self._home, self._profile, self._timeout = home_preset, profile, timeout
        self._camera: Any = None
        self._ptz: Any = None
        self._token: str | None = None
        self._connecting = asyncio.Lock()

    async def _service(self) -> tuple[Any, str]:
        async with self._connecting:
            if self._ptz is None or self._token is None:
                camera = ONVIFCamera(self._host, self._port, self._user, self._password)
                try:
                    await camera.update_xaddrs()
                    media = await camera.create_media_service()
                    profiles = await media.GetProfiles()
                    tokens = [p.token for p in profiles]
                    token = self._profile if self._profile in tokens else (tokens[0] if tokens else None)
                    if token is None:
                        raise PtzError("the camera has no media profile")
                    self._ptz, self._token = await camera.create_ptz_service(), token
                    self._camera = camera
                except BaseException:
                    await camera.close()
                    raise
            return self._ptz, self._token

    async def _call(self, what: str, method: str, request: dict[str, Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                ptz, token = await self._service()
                return await getattr(ptz, method)({"ProfileToken": token, **request})
        except PtzError:
            raise
        except TimeoutError as exc:
            await self._forget()
            raise PtzError(f"{what}: no answer within {self._timeout:g} s") from exc
        except Exception as exc:  # zeep faults, HTTP and socket errors: the camera did not do it
            await self._forget()
            raise PtzError(f"{what}: {type(exc).__name__}: {str(exc)[:120]}") from exc

    async def _forget(self) -> None:
        camera, self._camera, self._ptz, self._token = self._camera, None, None, None
        if camera is not None:
            try:
                await camera.close()
            except Exception as exc:  # closing a broken session: nothing left to do
                logger.debug("closing ONVIF session: %s", exc)

    async def move(self, pan: float, tilt: float, zoom: float) -> None:
        # The camera stops by itself MOVE_TIMEOUT after the last tick, even if Vigie is gone mid-gesture.
        await self._call("move", "ContinuousMove",
                         {"Velocity": {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}, "Timeout": MOVE_TIMEOUT})

    async def stop(self) -> None:
        await self._call("stop", "Stop", {"PanTilt": True, "Zoom": True})

    async def goto_preset(self, token: str) -> None:
        await self._call("preset", "GotoPreset", {"PresetToken": token})

    async def home(self) -> None:
        if self._home:
            await self.goto_preset(self._home)
        else:
            await self._call("home", "GotoHomePosition", {})

    async def presets(self) -> list[tuple[str, str]]:
        found = await self._call("presets", "GetPresets", {}) or []
        return [(str(p.token), str(getattr(p, "Name", None) or p.token)) for p in found]

    async def close(self) -> None:
        await self._forget()
