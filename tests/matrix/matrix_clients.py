"""matrix-nio E2EE test clients against the test Synapse, with a timeout on everything.

nio's ``AsyncClient.sync()`` does not upload/query/claim keys nor send queued to-device messages: only
``sync_forever()`` does. :func:`sync_once` does the same steps for one round, so a test (or a bot
driving its own loop) gets working E2EE without ``sync_forever``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    Event,
    LoginResponse,
    MatrixRoom,
    SyncResponse,
)
from synapse_server import Synapse, User

#: Every awaited call in the Matrix tests is bounded by this (seconds), so a hung request fails the test.
STEP_TIMEOUT = 15.0

ENCRYPTION_STATE = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


def client_config() -> AsyncClientConfig:
    return AsyncClientConfig(
        store_sync_tokens=True,
        encryption_enabled=True,
        request_timeout=10,
        # nio retries a request on connection errors forever, backing off up to this (default 60 s):
        # keep it short so a client resumes quickly once Synapse is back after a restart.
        max_timeout_retry_wait_time=1,
    )


def check(resp: Any) -> Any:
    if isinstance(resp, ErrorResponse):
        raise AssertionError(f"Matrix error: {resp}")
    return resp


async def step(aw: Any, timeout: float = STEP_TIMEOUT) -> Any:
    return await asyncio.wait_for(aw, timeout)


@dataclass
class MxClient:
    """An ``AsyncClient`` plus a record of every room timeline event its syncs delivered."""

    client: AsyncClient
    password: str
    events: list[tuple[str, Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client.add_event_callback(self._on_event, Event)

    async def _on_event(self, room: MatrixRoom, event: Event) -> None:
        self.events.append((room.room_id, event))

    @property
    def user_id(self) -> str:
        return self.client.user_id

    @property
    def device_id(self) -> str:
        return self.client.device_id

    async def sync_once(self, timeout_ms: int = 0, full_state: bool = False) -> SyncResponse:
        """One sync round done like ``sync_forever``: keys upload, sync, keys query/claim, to-device."""
        c = self.client

        async def round_() -> SyncResponse:
            if c.should_upload_keys:
                check(await c.keys_upload())
            resp = check(await c.sync(timeout=timeout_ms, full_state=full_state or None))
            if c.should_query_keys:
                check(await c.keys_query())
            if c.should_claim_keys:
                check(await c.keys_claim(c.get_users_for_key_claiming()))
            await c.send_to_device_messages()
            return resp

        return await step(round_(), timeout=STEP_TIMEOUT + timeout_ms / 1000)

    async def wait_for(
        self,
        match: Callable[[str, Event], bool],
        timeout: float = 10.0,
        since: int = 0,
    ) -> Event:
        """Sync until an event recorded at index >= ``since`` matches; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for room_id, ev in self.events[seen:]:
                if match(room_id, ev):
                    return ev
            seen = len(self.events)
            if time.monotonic() > deadline:
                got = [(type(e).__name__, e.source.get("type")) for _, e in self.events[since:]]
                raise AssertionError(f"{self.user_id}: no matching event within {timeout} s; got {got}")
            await self.sync_once(timeout_ms=300)

    def trust_devices_of(self, user_id: str) -> list[str]:
        """Mark every known device of ``user_id`` verified (needs a prior keys query: sync_once)."""
        devices = list(self.client.device_store.active_user_devices(user_id))
        for dev in devices:
            self.client.verify_device(dev)
        return [d.id for d in devices]

    async def close(self) -> None:
        await self.client.close()


async def login(synapse: Synapse, user: User, store_dir: Path, device_id: str) -> MxClient:
    """Password login with a fixed ``device_id`` and a persistent nio store (Olm/Megolm keys, sync token)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        synapse.base_url, user.user_id, device_id=device_id, store_path=str(store_dir), config=client_config()
    )
    resp = await step(client.login(user.password, device_name=f"vigie-test {device_id}"))
    if not isinstance(resp, LoginResponse):
        await client.close()
        raise AssertionError(f"login {user.user_id}: {resp}")
    tc = MxClient(client, user.password)
    await tc.sync_once()  # uploads the device keys
    return tc


async def restore(
    synapse: Synapse, user_id: str, device_id: str, access_token: str, store_dir: Path
) -> MxClient:
    """A new client process for an existing device: same store, same token, no login."""
    client = AsyncClient(
        synapse.base_url, user_id, device_id=device_id, store_path=str(store_dir), config=client_config()
    )
    client.restore_login(user_id, device_id, access_token)  # loads the store, incl. the saved sync token
    return MxClient(client, "")
