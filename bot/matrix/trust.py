"""Which devices get the room keys: trust on first use for the roster, nothing for anyone else.

A bot cannot do interactive verification with officers' phones, and an unverified device makes
nio refuse to encrypt at all. The rule, applied after every keys query and before every
encrypted send (see bot/matrix/transport.py for the why):

* every device of a person whose Matrix id is on the convention's roster is marked verified
  the first time it is seen (a blacklist left from before they were on the roster is lifted);
* every device of anyone else, the bot's own other sessions included, is blacklisted: it never
  receives a Megolm key, so it cannot read the link nor see a tile, even if it sits in the room
  (only individually designated, habilitated agents may receive images, CSI L252-3);
* the bot's own current device is left alone.

Devices are never "ignored" (nio's middle state that still shares keys): a device is either
trusted because its owner is on the roster, or shut out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nio

logger = logging.getLogger(__name__)


@dataclass
class TrustChanges:
    trusted: list[tuple[str, str]] = field(default_factory=list)
    shut_out: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.trusted or self.shut_out)


def apply_trust(client: Any, on_roster: Callable[[str], bool]) -> TrustChanges:
    """Bring every known device of every tracked user in line with the rule; return what changed."""
    changes = TrustChanges()
    olm = client.olm
    if olm is None:
        return changes
    for user_id in list(client.device_store.users):
        roster = on_roster(user_id)
        for dev in list(client.device_store.active_user_devices(user_id)):
            if user_id == client.user_id and dev.id == client.device_id:
                continue
            if roster:
                if olm.is_device_blacklisted(dev):
                    client.unblacklist_device(dev)
                if olm.is_device_ignored(dev):
                    client.unignore_device(dev)
                if not olm.is_device_verified(dev):
                    client.verify_device(dev)
                    changes.trusted.append((user_id, dev.id))
            else:
                if olm.is_device_verified(dev):
                    client.unverify_device(dev)
                if olm.is_device_ignored(dev):
                    client.unignore_device(dev)
                if not olm.is_device_blacklisted(dev):
                    client.blacklist_device(dev)
                    changes.shut_out.append((user_id, dev.id))
    for user_id, device_id in changes.trusted:
        logger.info("matrix: trusting device %s of roster member %s (first use)", device_id, user_id)
    for user_id, device_id in changes.shut_out:
        logger.warning("matrix: device %s of %s (not on the roster) gets no room keys", device_id, user_id)
    return changes


class KeyKeeper:
    """Keys housekeeping for the sync loop and the senders, one at a time.

    nio only does keys upload/query/claim and to-device sending inside ``sync_forever``; the bot
    runs its own loop, so it does them here after each sync, and applies the trust rule right
    after every keys query so that no device is ever left unclassified when a message goes out.
    """

    def __init__(self, on_roster: Callable[[str], bool]) -> None:
        self._on_roster = on_roster
        self._lock = asyncio.Lock()

    def apply(self, client: Any) -> TrustChanges:
        return apply_trust(client, self._on_roster)

    async def after_sync(self, client: Any) -> None:
        async with self._lock:
            if client.should_query_keys:
                _warn("keys query", await client.keys_query())
            self.apply(client)
            if client.should_claim_keys:
                _warn("keys claim", await client.keys_claim(client.get_users_for_key_claiming()))
            await client.send_to_device_messages()

    async def before_send(self, client: Any, room_id: str) -> None:
        """Members known, their keys queried, every device classified: nio will not refuse to encrypt."""
        async with self._lock:
            room = client.rooms.get(room_id)
            if room is not None and not room.members_synced:
                resp = await client.joined_members(room_id)
                if isinstance(resp, nio.ErrorResponse):
                    raise RuntimeError(f"members of {room_id}: {resp}")
            if client.should_query_keys:
                _warn("keys query", await client.keys_query())
            self.apply(client)


def _warn(what: str, resp: Any) -> None:
    if isinstance(resp, nio.ErrorResponse):
        logger.warning("matrix: %s: %s", what, resp)
