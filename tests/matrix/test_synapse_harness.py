"""The real-Synapse harness, proven with two matrix-nio E2EE clients.

A plays the bot (a server admin, as the bot's account may be), B an officer's client.

Trust, and what a bot should do: nio refuses to share a Megolm session with a device that is neither
verified nor ignored (``OlmUnverifiedDeviceError`` from ``room_send``). Two ways out, both shown here:

* ``client.verify_device(device)`` for each device, after a keys query (``sync_once`` does it);
* ``room_send(..., ignore_unverified_devices=True)``: the unverified devices are marked *ignored* (kept
  in the store) and still get the room key.

Interactive verification of officers' phones is not something a bot can do, so the bot should trust on
first use: send with ``ignore_unverified_devices=True`` (or ``verify_device`` every device of a roster
member after each keys query) and let room membership, which it controls against the roster, decide
who reads. Devices of anyone not on the roster should be blacklisted (``blacklist_device``) and such
members kicked, not silently trusted.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from matrix_clients import ENCRYPTION_STATE, MxClient, check, login, restore, step
from nio import (
    DownloadError,
    MegolmEvent,
    OlmUnverifiedDeviceError,
    ReactionEvent,
    RedactionEvent,
    RoomEncryptedImage,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendResponse,
)
from nio.crypto.attachments import decrypt_attachment
from PIL import Image
from synapse_server import Synapse


@dataclass
class Pair:
    a: MxClient
    b: MxClient
    room_id: str
    b_store: Path
    b_token: str


@pytest.fixture
async def pair(synapse: Synapse, tmp_path: Path) -> AsyncIterator[Pair]:
    a_user = synapse.register(synapse.unique_localpart("bot"), admin=True)
    b_user = synapse.register(synapse.unique_localpart("officer"))
    a = await login(synapse, a_user, tmp_path / "a-store", "BOTDEVICE")
    b = await login(synapse, b_user, tmp_path / "b-store", "OFFICERPHONE")
    try:
        created = check(
            await step(
                a.client.room_create(name="Vigie test", invite=[b.user_id], initial_state=[ENCRYPTION_STATE])
            )
        )
        room_id = created.room_id
        await b.sync_once()
        assert room_id in b.client.invited_rooms
        check(await step(b.client.join(room_id)))
        # nio knows a room only from a sync (room_create/join responses do not fill client.rooms).
        await b.sync_once()
        await a.wait_for(
            lambda r, e: (
                r == room_id
                and e.source.get("state_key") == b.user_id
                and e.source.get("content", {}).get("membership") == "join"
            )
        )
        assert a.client.rooms[room_id].encrypted and b.client.rooms[room_id].encrypted
        yield Pair(a, b, room_id, tmp_path / "b-store", b.client.access_token)
    finally:
        await a.close()
        await b.close()


def notice(body: str, html: str) -> dict:
    return {"msgtype": "m.notice", "body": body, "format": "org.matrix.custom.html", "formatted_body": html}


def jpeg(w: int = 64, h: int = 36) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def test_register_and_admin_api(synapse: Synapse) -> None:
    user = synapse.register(synapse.unique_localpart("plain"))
    assert user.user_id == f"@{user.localpart}:vigie.test" and user.access_token and not user.admin
    status, body = synapse.request("GET", "/_matrix/client/v3/account/whoami", token=user.access_token)
    assert status == 200 and body["user_id"] == user.user_id
    status, body = synapse.admin_request("GET", f"/v2/users/{user.user_id}")
    assert status == 200 and body["admin"] is False
    status, body = synapse.request("GET", f"/_synapse/admin/v2/users/{user.user_id}", token=user.access_token)
    assert status == 403, body
    # Open registration is off, federation is not served.
    status, _ = synapse.request(
        "POST", "/_matrix/client/v3/register", {"username": "x", "password": "y" * 12}
    )
    assert status in (401, 403)
    status, _ = synapse.request("GET", "/_matrix/federation/v1/version")
    assert status == 404


async def test_unverified_device_blocks_until_verified(pair: Pair) -> None:
    a, b, room_id = pair.a, pair.b, pair.room_id
    with pytest.raises(OlmUnverifiedDeviceError):
        await step(a.client.room_send(room_id, "m.room.message", notice("x", "<b>x</b>")))

    assert a.trust_devices_of(b.user_id) == ["OFFICERPHONE"]
    mark = len(b.events)
    sent = check(
        await step(
            a.client.room_send(
                room_id, "m.room.message", notice("Alerte: intrusion", "<b>Alerte</b>: intrusion")
            )
        )
    )
    assert isinstance(sent, RoomSendResponse)
    got = await b.wait_for(lambda r, e: e.event_id == sent.event_id, since=mark)
    assert isinstance(got, RoomMessageNotice), got  # decrypted, not a MegolmEvent
    assert got.decrypted and got.source["type"] == "m.room.message"
    assert got.body == "Alerte: intrusion"
    assert got.formatted_body == "<b>Alerte</b>: intrusion" and got.format == "org.matrix.custom.html"


async def test_ignore_unverified_devices(pair: Pair) -> None:
    a, b, room_id = pair.a, pair.b, pair.room_id
    mark = len(b.events)
    sent = check(
        await step(
            a.client.room_send(
                room_id, "m.room.message", notice("hello", "<i>hello</i>"), ignore_unverified_devices=True
            )
        )
    )
    got = await b.wait_for(lambda r, e: e.event_id == sent.event_id, since=mark)
    assert isinstance(got, RoomMessageNotice) and got.formatted_body == "<i>hello</i>"
    # The device is now remembered as ignored (not verified): later sends need no flag.
    dev = a.client.device_store[b.user_id]["OFFICERPHONE"]
    assert a.client.olm.is_device_ignored(dev) and not a.client.olm.is_device_verified(dev)


async def test_image_edit_redaction_and_media_deletion(synapse: Synapse, pair: Pair) -> None:
    a, b, room_id = pair.a, pair.b, pair.room_id
    a.trust_devices_of(b.user_id)

    # An encrypted attachment uploaded from memory.
    data = jpeg()
    up, keys = await step(
        a.client.upload(
            io.BytesIO(data),
            content_type="image/jpeg",
            filename="tuile.jpg",
            encrypt=True,
            filesize=len(data),
        )
    )
    up = check(up)
    assert up.content_uri.startswith("mxc://vigie.test/")
    assert keys is not None and set(keys) >= {"key", "iv", "hashes", "v"}
    image = {
        "msgtype": "m.image",
        "body": "tuile.jpg",
        "info": {"mimetype": "image/jpeg", "size": len(data), "w": 64, "h": 36},
        "file": {**keys, "url": up.content_uri, "mimetype": "image/jpeg"},
    }
    mark = len(b.events)
    img_sent = check(await step(a.client.room_send(room_id, "m.room.message", image)))
    got = await b.wait_for(lambda r, e: e.event_id == img_sent.event_id, since=mark)
    assert isinstance(got, RoomEncryptedImage), got
    dl = check(await step(b.client.download(got.url)))
    assert dl.body != data  # the server only ever holds ciphertext
    plain = decrypt_attachment(dl.body, got.key["k"], got.hashes["sha256"], got.iv)
    assert plain == data

    # An edit (m.replace): nio keeps m.relates_to in the clear, the new content is encrypted.
    orig = check(
        await step(a.client.room_send(room_id, "m.room.message", notice("3 caméras", "<b>3</b> caméras")))
    )
    edit = {
        **notice("* 4 caméras", "* <b>4</b> caméras"),
        "m.new_content": notice("4 caméras", "<b>4</b> caméras"),
        "m.relates_to": {"rel_type": "m.replace", "event_id": orig.event_id},
    }
    edit_sent = check(await step(a.client.room_send(room_id, "m.room.message", edit)))
    got = await b.wait_for(lambda r, e: e.event_id == edit_sent.event_id, since=mark)
    assert isinstance(got, RoomMessageNotice)
    assert got.source["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": orig.event_id}
    assert got.source["content"]["m.new_content"]["formatted_body"] == "<b>4</b> caméras"

    # Redaction of the image, seen by B.
    check(await step(a.client.room_redact(room_id, img_sent.event_id, reason="fin de l'incident")))
    red = await b.wait_for(
        lambda r, e: isinstance(e, RedactionEvent) and e.redacts == img_sent.event_id, since=mark
    )
    assert red.reason == "fin de l'incident"

    # A redaction leaves the media on the server: the bot, being an admin, deletes it.
    media_id = up.content_uri.removeprefix("mxc://vigie.test/")
    status, body = await asyncio.to_thread(
        synapse.request,
        "DELETE",
        f"/_synapse/admin/v1/media/vigie.test/{media_id}",
        token=a.client.access_token,
    )
    assert status == 200 and body == {"deleted_media": [media_id], "total": 1}
    gone = await step(b.client.download(up.content_uri))
    assert isinstance(gone, DownloadError) and gone.status_code == "M_NOT_FOUND", gone
    assert gone.transport_response is not None and gone.transport_response.status == 404


async def test_reaction_from_officer(synapse: Synapse, pair: Pair) -> None:
    a, b, room_id = pair.a, pair.b, pair.room_id
    sent = check(
        await step(
            a.client.room_send(
                room_id,
                "m.room.message",
                notice("Confirmer ?", "Confirmer ?"),
                ignore_unverified_devices=True,
            )
        )
    )
    await b.wait_for(lambda r, e: e.event_id == sent.event_id)
    mark = len(a.events)
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": sent.event_id, "key": "✅"}}
    # nio sends m.reaction unencrypted even in an encrypted room (room_send skips encryption for that
    # type), yet it still shares its Megolm session first: an untrusted device blocks a reaction too.
    with pytest.raises(OlmUnverifiedDeviceError):
        await step(b.client.room_send(room_id, "m.reaction", reaction))
    assert b.trust_devices_of(a.user_id) == ["BOTDEVICE"]
    r = check(await step(b.client.room_send(room_id, "m.reaction", reaction)))
    got = await a.wait_for(lambda rid, e: e.event_id == r.event_id, since=mark)
    assert isinstance(got, ReactionEvent) and not isinstance(got, MegolmEvent)
    assert got.source["type"] == "m.reaction"  # in the clear on the server
    assert got.reacts_to == sent.event_id and got.key == "✅" and got.sender == b.user_id
    # Element encrypts reactions in encrypted rooms (m.relates_to stays in the clear), so the bot must
    # accept both forms. Send one the way Element does: Megolm-encrypt it, PUT it as m.room.encrypted.
    check(await step(b.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "vu"})))
    enc_type, enc_content = b.client.encrypt(
        room_id,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": sent.event_id, "key": "👍"}},
    )
    assert enc_type == "m.room.encrypted" and enc_content["m.relates_to"]["key"] == "👍"
    status, body = await asyncio.to_thread(
        synapse.request,
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/send/{enc_type}/txn-react-1",
        enc_content,
        token=b.client.access_token,
    )
    assert status == 200, body
    got = await a.wait_for(lambda rid, e: e.event_id == body["event_id"], since=mark)
    assert isinstance(got, ReactionEvent), got  # nio decrypts it into the same class
    assert got.decrypted and got.key == "👍" and got.reacts_to == sent.event_id


async def test_restart_mid_incident(synapse: Synapse, pair: Pair) -> None:
    a, b, room_id = pair.a, pair.b, pair.room_id
    before = check(
        await step(
            a.client.room_send(
                room_id, "m.room.message", notice("avant", "avant"), ignore_unverified_devices=True
            )
        )
    )
    await b.wait_for(lambda r, e: e.event_id == before.event_id)
    saved_token = b.client.next_batch
    await b.close()  # the officer's app (or the bot) goes away, keeping its store and access token

    synapse.stop()
    # A keeps syncing while Synapse is down: nio retries on connection errors (backoff capped by
    # max_timeout_retry_wait_time), so this sync completes once Synapse is back.
    a_sync = asyncio.create_task(a.sync_once(timeout_ms=0))
    await asyncio.sleep(0.5)
    assert not a_sync.done()
    t0 = time.monotonic()
    await asyncio.to_thread(synapse.start)
    await step(a_sync, timeout=30)
    print(
        f"synapse restart: stop {synapse.last_stop_seconds:.2f} s, start {synapse.last_start_seconds:.2f} s, "
        f"A resumed {time.monotonic() - t0:.2f} s after start began"
    )

    after = check(await step(a.client.room_send(room_id, "m.room.message", notice("après", "<b>après</b>"))))

    b2 = await restore(synapse, b.user_id, "OFFICERPHONE", pair.b_token, pair.b_store)
    try:
        assert b2.client.loaded_sync_token == saved_token
        # Gotcha: nio does not persist room state. Resumed from a token, the client does not know its
        # rooms (room_send would raise "No such room"), nor that they are encrypted. The first sync
        # after a restart must be full_state=True (still incremental for the timeline).
        assert room_id not in b2.client.rooms
        await b2.sync_once(full_state=True)
        assert b2.client.rooms[room_id].encrypted
        got = await b2.wait_for(lambda r, e: e.event_id == after.event_id)
        # Decrypted with the Megolm session B received before the restart, read back from its store.
        assert isinstance(got, RoomMessageNotice) and got.formatted_body == "<b>après</b>"
        # Resumed from the stored token: nothing from before it comes again.
        assert before.event_id not in {e.event_id for _, e in b2.events}
        # And the resumed client can still send encrypted messages.
        b2.trust_devices_of(a.user_id)
        reply = check(
            await step(b2.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "reçu"}))
        )
        got = await a.wait_for(lambda r, e: e.event_id == reply.event_id)
        assert isinstance(got, RoomMessageText) and got.decrypted and got.body == "reçu"
    finally:
        await b2.close()
