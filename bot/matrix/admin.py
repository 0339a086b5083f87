"""Synapse's admin API, for the one thing Vigie needs from it: deleting the tiles it uploaded.

A redaction hides a tile from the room but leaves the file in Synapse's media store. When the
bot's account is a server admin, the file is deleted too. Whether it is one is asked once
(``GET /_synapse/admin/v1/users/<id>/admin``) and remembered: 200 gives the answer; 401/403
mean no, and so does 404, which is what a reverse proxy that hides ``/_synapse/admin`` (as
public homeservers such as Tchap do) answers. Other failures are not remembered: the next tile
asks again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError

logger = logging.getLogger(__name__)


class AdminApiError(RuntimeError):
    """The admin API could not be reached or refused the request."""


class SynapseAdmin:
    def __init__(self, user_id: str, timeout: float) -> None:
        self._user_id = user_id
        self._timeout = timeout
        self.is_admin: bool | None = None

    async def check(self, client: Any) -> bool:
        """Whether the bot's account is a server admin (asked once, then remembered)."""
        if self.is_admin is not None:
            return self.is_admin
        status, body = await self._request(client, "GET", f"/_synapse/admin/v1/users/{quote(self._user_id, safe='@:')}/admin")
        if status == 200 and isinstance(body, dict):
            self.is_admin = bool(body.get("admin"))
        elif status in (401, 403, 404):
            self.is_admin = False
        else:
            raise AdminApiError(f"admin check: HTTP {status}")
        logger.info("matrix: the bot's account is %s", "a server admin: removed tiles are deleted from the media store"
                    if self.is_admin else "not a server admin: removed tiles stay in the media store")
        return self.is_admin

    async def delete_media(self, client: Any, mxc: str) -> bool:
        """Delete ``mxc://server/id`` from the media store if the bot may; True when it is gone."""
        server, _, media_id = mxc.removeprefix("mxc://").partition("/")
        if not mxc.startswith("mxc://") or not server or not media_id:
            return False
        if not await self.check(client):
            return False
        path = f"/_synapse/admin/v1/media/{quote(server, safe='')}/{quote(media_id, safe='')}"
        status, _ = await self._request(client, "DELETE", path)
        if status in (200, 404):
            return True
        raise AdminApiError(f"media delete: HTTP {status}")

    async def _request(self, client: Any, method: str, path: str) -> tuple[int, Any]:
        # nio has no call for the admin API: its raw send() reuses its HTTP session and base URL.
        try:
            resp = await asyncio.wait_for(
                client.send(method, path, None, {"Authorization": f"Bearer {client.access_token}"}), self._timeout)
            async with resp:
                body = await resp.json(content_type=None) if resp.status != 204 else None
                return int(resp.status), body
        except (ClientError, TimeoutError, ValueError) as exc:
            raise AdminApiError(f"{method} admin API: {type(exc).__name__}") from exc
