"""The relations API: which events relate to one of ours (here, our own edits of a message).

Redacting a message leaves its ``m.replace`` edits on the server, and an edit of the link message
carries the link. The room remembers the edits it made, but not across a restart: the server is
asked (``GET /_matrix/client/v1/rooms/<room>/relations/<event>/m.replace``). It answers in
encrypted rooms too, where ``m.relates_to`` stays in clear beside the ciphertext.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError

logger = logging.getLogger(__name__)

MAX_PAGES = 20  # 2 000 edits: the link is edited every few minutes at most


async def own_edits(client: Any, room_id: str, event_id: str, own_user: str, timeout: float) -> list[str]:
    """Event ids of ``own_user``'s edits of ``event_id``; [] (logged) when the server cannot say."""
    base = f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/relations/{quote(event_id, safe='')}/m.replace"
    found: list[str] = []
    page: str | None = None
    for _ in range(MAX_PAGES):
        path = base + "?limit=100" + (f"&from={quote(page, safe='')}" if page else "")
        status: int | None = None
        try:
            # nio has no call for it: its raw send() reuses its HTTP session and base URL.
            resp = await asyncio.wait_for(
                client.send("GET", path, None, {"Authorization": f"Bearer {client.access_token}"}), timeout)
            async with resp:
                status = resp.status
                body = await resp.json(content_type=None) if status == 200 else None
        except (ClientError, TimeoutError, ValueError) as exc:
            logger.warning("matrix: edits of %s not listed: %s", event_id, type(exc).__name__)
            break
        if not isinstance(body, dict):
            logger.warning("matrix: edits of %s not listed: HTTP %s", event_id, status)
            break
        found += [str(e["event_id"]) for e in body.get("chunk", [])
                  if isinstance(e, dict) and e.get("sender") == own_user and e.get("event_id")]
        page = body.get("next_batch")
        if not page:
            break
    return found
