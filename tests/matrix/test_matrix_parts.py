"""The Matrix room's small parts, without a server: message contents, references, transaction ids,
late decryption, the saved session file."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nio
import pytest
from pydantic import SecretStr
from vigie_bot import jpeg

from bot.matrix import inbox as inbox_module
from bot.matrix.inbox import Inbox, strip_reply_fallback
from bot.matrix.room import MatrixRoom, edit, image, notice, op_key, split_ref
from bot.matrix.session import SavedSession, load_session, save_session
from bot.matrix.transport import MatrixConnection, MatrixRequestError, Tuning
from bot.rooms import Outgoing, PermanentRoomError
from bot.settings import MatrixCfg


def test_reply_fallback_is_stripped() -> None:
    assert strip_reply_fallback("> <@bot:x> ALERTE\n> suite\n\n/confirm") == "/confirm"
    assert strip_reply_fallback("/confirm") == "/confirm"
    assert strip_reply_fallback("a > b\n/x") == "a > b\n/x"


def test_contents() -> None:
    n = notice("a\nb", "a<br>b", reply_to="$e")
    assert n == {"msgtype": "m.notice", "body": "a\nb", "format": "org.matrix.custom.html", "formatted_body": "a<br>b",
                 "m.relates_to": {"m.in_reply_to": {"event_id": "$e"}}}
    e = edit("$link", "new", "<b>new</b>")
    assert e["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$link"}
    assert e["m.new_content"]["formatted_body"] == "<b>new</b>" and e["body"] == "* new"
    data = jpeg((1, 2, 3), 40, 20)
    keys = {"key": {"k": "x"}, "iv": "y", "hashes": {"sha256": "z"}, "v": "v2"}
    enc = image("Mosaïque", data, "mxc://s/m", keys)
    assert enc["file"]["url"] == "mxc://s/m" and enc["file"]["mimetype"] == "image/jpeg" and "url" not in enc
    assert enc["info"] == {"mimetype": "image/jpeg", "size": len(data), "w": 40, "h": 20}
    plain = image("Mosaïque", data, "mxc://s/m", None)
    assert plain["url"] == "mxc://s/m" and "file" not in plain and plain["body"] == "Mosaïque"


def test_refs_and_keys() -> None:
    assert split_ref("$ev mxc://s/m") == ("$ev", "mxc://s/m")
    assert split_ref("$ev") == ("$ev", None)
    assert op_key("!r", "text", "x") == op_key("!r", "text", "x") != op_key("!r", "text", "y")


def _conn(tmp: Path) -> MatrixConnection:
    cfg = MatrixCfg(enabled=True, homeserver="http://127.0.0.1:1", user_id="@bot:s", rooms=("!r:s",))
    return MatrixConnection(cfg, SecretStr("pw"), tmp, Tuning())


async def test_transaction_id_kept_until_success(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    first = conn.writes.tx("k")
    assert conn.writes.tx("k") == first  # a retry of the same operation
    assert conn.writes.tx("other") != first
    conn.writes._pending_tx["k"] = (first, asyncio.get_running_loop().time() - 3600)
    assert conn.writes.tx("k") != first  # long after: the same words are a new message


async def test_late_room_key_event_is_retried(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    got: list[Any] = []
    conn._inbox = SimpleNamespace(put=lambda room, ev: got.append((room, ev)),  # type: ignore[assignment]
                                  put_position=lambda since: None)
    megolm = object.__new__(nio.MegolmEvent)
    decrypted = object()
    answers: list[Any] = [nio.EncryptionError("no session yet"), decrypted]

    def decrypt(event: Any) -> Any:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    client = SimpleNamespace(decrypt_event=decrypt)
    timeline = SimpleNamespace(events=[megolm])
    resp = SimpleNamespace(rooms=SimpleNamespace(join={"!r:s": SimpleNamespace(timeline=timeline)}), next_batch="s1")
    conn._dispatch(client, resp, first=False)
    assert got == []  # kept back
    empty = SimpleNamespace(rooms=SimpleNamespace(join={}), next_batch="s2")
    conn._dispatch(client, empty, first=False)
    assert got == []  # key still missing
    conn._dispatch(client, empty, first=False)
    assert got == [("!r:s", decrypted)]  # the key came: handled in order after all


async def test_first_sync_reads_what_was_said_while_away(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    got: list[Any] = []
    positions: list[str] = []
    conn._inbox = SimpleNamespace(put=lambda room, ev: got.append(ev),  # type: ignore[assignment]
                                  put_position=positions.append)
    ev = object()
    timeline = SimpleNamespace(events=[ev], limited=False)
    resp = SimpleNamespace(rooms=SimpleNamespace(join={"!r:s": SimpleNamespace(timeline=timeline)}), next_batch="s9")
    conn._dispatch(SimpleNamespace(), resp, first=True)
    assert got == [] and positions == ["s9"]  # a new device: the timeline is history
    conn._resume_from = "s5"  # a position was saved by the inbox before the stop
    conn._dispatch(SimpleNamespace(), resp, first=True)
    assert got == [ev] and positions == ["s9", "s9"]


async def test_inbox_position_saved_after_the_events_before_it(tmp_path: Path) -> None:
    handled: list[str] = []

    class Probe(Inbox):
        async def handle(self, room_id: str, event: Any) -> None:
            assert self.saved_position() is None  # not saved before the event is handled
            handled.append(event)

    inbox = Probe(SimpleNamespace(), _conn(tmp_path).cfg, "@bot:s", None, None, None, tmp_path)  # type: ignore[arg-type]
    inbox.start()
    inbox.put("!r:s", "cmd")
    inbox.put_position("s42")
    for _ in range(50):
        await asyncio.sleep(0.01)
        if inbox.saved_position():
            break
    await inbox.stop()
    assert handled == ["cmd"] and inbox.saved_position() == "s42"


async def test_send_retried_when_device_lists_change_under_it(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    calls: list[str] = []

    async def room_send(room_id: str, event_type: str, content: Any, tx_id: str) -> Any:
        calls.append(tx_id)
        if len(calls) == 1:
            raise KeyError("@officer:s")  # what nio raises when the sync loop changes the device lists
        return nio.RoomSendResponse("$sent", room_id)

    client = SimpleNamespace(rooms={"!r:s": SimpleNamespace(encrypted=False)}, room_send=room_send)
    conn._client = client
    conn._ready.set()
    assert await conn.send("!r:s", {"body": "x"}, "k") == "$sent"
    assert len(calls) == 2 and calls[0] == calls[1]  # the same transaction: never posted twice


async def test_reply_not_delivered_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "REPLY_DEADLINE", 0.3)
    records: list[tuple[str, dict[str, Any]]] = []
    desk = SimpleNamespace(record=lambda kind, **kw: records.append((kind, kw["details"])))

    async def send(room_id: str, content: Any, key: str) -> str:
        raise KeyError("@officer:s")

    inbox = Inbox(desk, _conn(tmp_path).cfg, "@bot:s", send, None, None, tmp_path)  # type: ignore[arg-type]
    await inbox._reply("!r:s", "Accès INC-1 terminé.", "reply:$x", "$x")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if records:
            break
    [(kind, details)] = records
    assert kind == "room_error" and details["operation"] == "reply" and "KeyError" in details["error"]


def test_session_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert load_session(store) is None
    s = SavedSession("http://hs/", "@bot:s", "DEV", "secret-token")
    save_session(store, s)
    assert load_session(store) == s and s.matches("http://hs", "@bot:s", "DEV")
    assert not s.matches("http://hs", "@bot:s", "OTHER")
    assert stat.S_IMODE((store / "session.json").stat().st_mode) == 0o600
    assert "secret-token" not in repr(s)
    (store / "session.json").write_text("{not json")
    assert load_session(store) is None


@pytest.mark.parametrize("key", ["✅", "✔️", "✔", "☑️"])
def test_confirm_keys(key: str) -> None:
    from bot.matrix.inbox import CONFIRM_KEYS

    assert key.replace("\ufe0f", "") in CONFIRM_KEYS


async def test_a_refused_inbox_position_is_dropped(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    conn._inbox = Inbox(SimpleNamespace(), conn.cfg, "@bot:s", None, None, None, tmp_path)  # type: ignore[arg-type]
    conn._inbox._save_position("s_from_another_server")
    refused = nio.SyncError("Unknown since token", "M_INVALID_PARAM")
    refused.transport_response = SimpleNamespace(status=400)  # type: ignore[assignment]
    asked: list[Any] = []

    async def sync(**kw: Any) -> Any:
        asked.append(kw["since"])
        return refused

    client = SimpleNamespace(should_upload_keys=False, sync=sync)
    with pytest.raises(MatrixRequestError):
        await conn._round_once(client, first=True)
    assert asked == ["s_from_another_server"] and conn._inbox.saved_position() is None  # next round: nio's token


class _Refusing:
    """A connection whose writes the homeserver answers with ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def send(self, room_id: str, content: dict[str, Any], key: str, event_type: str = "m.room.message",
                   durable: bool = False) -> str:
        raise MatrixRequestError(f"send to {room_id}: refused", self.status)

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        raise MatrixRequestError(f"redact in {room_id}: refused", self.status)

    async def edits_of(self, room_id: str, event_id: str) -> list[str]:
        return []


@pytest.mark.parametrize(("status", "for_good"), [(403, True), (404, True), (400, True), (429, False), (502, False)])
async def test_edits_and_redactions_refused_for_good(status: int, for_good: bool) -> None:
    room = MatrixRoom(_Refusing(status), "!r:test", "fr")  # type: ignore[arg-type]
    for attempt in (room.edit_text("$ev", Outgoing("x", "x")), room.remove("$ev")):
        with pytest.raises(MatrixRequestError) as err:
            await attempt
        assert isinstance(err.value, PermanentRoomError) is for_good
    with pytest.raises(MatrixRequestError) as sent:  # a new post is never "for good": retried by the outbox
        await room.send_text(Outgoing("x", "x"))
    assert not isinstance(sent.value, PermanentRoomError)
