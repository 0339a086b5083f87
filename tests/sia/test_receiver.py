"""The DC-09 receiver on a real socket, fed by the panel simulator, in front of a real desk."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.policy.incident import State
from bot.sia import frame as sia_frame
from bot.sia.receiver import PanelAccount, ReceiverConfig, SiaReceiver
from bot.sia.sender import Link, Panel, crc16_arc, frame, read_reply, send_udp
from tests.harness import Harness
from tests.sia.rig import CRYPT, KEY_B, MARGIN, PLAIN, Rig, panel_convention, start_rig, stop_rig

LINK = re.compile(r"https://vigie\.test/live/\S+")


@pytest.fixture
async def rig(tmp_path: Path):
    r = await start_rig(tmp_path)
    yield r
    await stop_rig(r)


async def send(rig: Rig, data: bytes, key: str | None = None) -> sia_frame.Answer:
    link = await rig.link()
    try:
        return sia_frame.Answer((await link.send(data, key)).kind)
    finally:
        await link.close()


def test_crc_is_crc16_arc() -> None:
    # The standard's check value for CRC-16/ARC; the receiver and the simulator agree on it independently.
    assert crc16_arc(b"123456789") == sia_frame.crc16(b"123456789") == 0xBB3D


@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "aes"])
@pytest.mark.parametrize("event", ["cid-120", "cid-121", "cid-122", "cid-123", "sia-PA", "sia-HA"])
async def test_hold_up_opens_incident_and_posts_link(rig: Rig, event: str, encrypted: bool) -> None:
    panel = rig.panel_b() if encrypted else rig.panel_a()
    now = rig.h.clock()
    kind, code = event.split("-")
    seq, data = (panel.cid(1, int(code), partition=2, zone=7, at=now) if kind == "cid"
                 else panel.sia(code, zone="7", partition="2", at=now))
    link = await rig.link()
    reply = await link.send(data, panel.key)
    await link.close()
    assert reply.kind == "ACK" and reply.seq == seq and reply.account == panel.account
    assert reply.encrypted is encrypted

    [inc] = rig.h.desk.open_incidents()
    assert inc.state is State.ACTIVE and inc.category == "attaque_armee"  # a venue request: no confirmation
    source = CRYPT if encrypted else PLAIN
    assert inc.trigger.actor == source.name and inc.trigger.alarm_type == "hold_up"
    texts = await rig.texts()
    link_text = next(t for t in texts if "ACCÈS VIDÉO OUVERT" in t)
    assert LINK.search(link_text) and source.label in link_text
    # zone and partition travel into the room message
    where = {"cid": "zone 007, partition 02", "sia": "zone 7, partition 2"}[kind]
    if code == "121":  # duress: Contact ID carries the user who was forced, not a zone
        where = "zone utilisateur 007, partition 02"
    assert where in link_text

    [msg] = rig.records("sia_message")
    assert msg.incident == inc.id and msg.actor == source.name
    assert msg.details["outcome"] == "opened" and msg.details["answer"] == "ACK"
    assert msg.details["encrypted"] is encrypted and msg.details["account"] == panel.account
    assert rig.h.registre.verify().ok


async def test_bad_crc_is_naked_and_opens_nothing(rig: Rig) -> None:
    _, data = rig.panel_a().cid(1, 120, at=rig.h.clock(), bad_crc=True)
    reply = read_reply(await _raw(rig, data), None)
    assert reply.kind == "NAK" and reply.timestamp == rig.h.clock().replace(microsecond=0)
    assert rig.h.desk.open_incidents() == []
    [refused] = rig.records("sia_refused")
    assert refused.details["reason"] == "bad_crc" and refused.details["answer"] == "NAK"
    assert "trigger" not in rig.h.kinds()


async def _raw(rig: Rig, data: bytes) -> bytes:
    link = await rig.link()
    try:
        link.writer.write(data)
        await link.writer.drain()
        return await link.receive()
    finally:
        await link.close()


@pytest.mark.parametrize("offset,skew", [(-300, -300), (-41, -41), (+21, 21), (+3600, 3600)])
async def test_timestamp_outside_window_is_naked_with_our_time(rig: Rig, offset: int, skew: int) -> None:
    now = rig.h.clock()
    for panel in (rig.panel_a(), rig.panel_b()):
        _, data = panel.cid(1, 122, at=now + timedelta(seconds=offset))
        link = await rig.link()
        reply = await link.send(data, panel.key)
        await link.close()
        # §5.5.3.2: never encrypted, and carries the receiver's time so the panel can set its clock
        assert reply.kind == "NAK" and not reply.encrypted and reply.timestamp == now.replace(microsecond=0)
    assert rig.h.desk.open_incidents() == []
    refusals = rig.records("sia_refused")
    assert [r.details["reason"] for r in refusals] == ["timestamp_outside_window"] * 2
    assert all(r.details["skew_seconds"] == skew for r in refusals)


async def test_timestamp_inside_window_is_accepted(rig: Rig) -> None:
    now = rig.h.clock()
    panel = rig.panel_b()
    assert await send(rig, panel.null(at=now - timedelta(seconds=39))[1], KEY_B) == "ACK"
    assert await send(rig, panel.null(at=now + timedelta(seconds=19))[1], KEY_B) == "ACK"


async def test_encrypted_message_without_timestamp_is_naked(rig: Rig) -> None:
    _, data = rig.panel_b().cid(1, 122, timestamp=False)
    assert await send(rig, data, KEY_B) == "NAK"
    assert rig.records("sia_refused")[0].details["reason"] == "missing_timestamp"
    # in clear the timestamp is optional (§5.5.2.1.1)
    _, data = rig.panel_a().cid(1, 122, timestamp=False)
    assert await send(rig, data) == "ACK"


async def test_encrypted_round_trip(rig: Rig) -> None:
    panel = rig.panel_b()
    now = rig.h.clock()
    link = await rig.link()
    try:
        for data in (panel.null(at=now), panel.cid(1, 122, zone=3, at=now), panel.sia("HA", "4", "1", at=now)):
            seq, raw = data
            reply = await link.send(raw, KEY_B)
            # the ACK of an encrypted message is encrypted (*ACK) and carries our time inside (§5.5.3.1)
            assert (reply.kind, reply.encrypted, reply.seq, reply.account) == ("ACK", True, seq, CRYPT.account)
            assert reply.timestamp == now.replace(microsecond=0)
    finally:
        await link.close()
    assert [r.details["outcome"] for r in rig.records("sia_message")] == ["link_test", "opened", "joined"]
    # the key is never in the registre
    assert all(KEY_B not in str(r.details) for r in rig.h.registre.records())


async def test_wrong_key_is_refused(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for wrong in ("0000111122223333", "Zq3xW8pL2mN7vR4u", "A" * 32):
        _, data = rig.panel_b().cid(1, 120, at=rig.h.clock(), key=wrong)
        assert await send(rig, data, wrong) == "DUH"
    assert rig.h.desk.open_incidents() == []
    assert {r.details["reason"] for r in rig.records("sia_refused")} == {"wrong_key"}
    assert KEY_B not in caplog.text


@pytest.mark.parametrize("case,reason,answer", [
    ("unknown account", "unknown_account", "DUH"),
    ("plain event on an encrypted account", "encryption_required", "DUH"),
    ("encrypted event on a plain account", "unexpected_encryption", "DUH"),
    ("unknown protocol", "unsupported_protocol", "DUH"),
    ("unknown SIA code", "unknown_code", "DUH"),
    ("garbled Contact ID", "bad_format", "DUH"),
    ("bad length", "bad_length", "NAK"),
    ("not DC-09", "bad_format", "NAK"),
])
async def test_refusals_answer_and_reason(rig: Rig, case: str, reason: str, answer: str) -> None:
    now = rig.h.clock()
    data = {
        "unknown account": lambda: Panel("FFFF").cid(1, 120, at=now)[1],
        "plain event on an encrypted account": lambda: Panel(CRYPT.account).cid(1, 120, at=now)[1],
        "encrypted event on a plain account": lambda: Panel(PLAIN.account, key=KEY_B).cid(1, 120, at=now)[1],
        "unknown protocol": lambda: Panel(PLAIN.account).message("SIA-XYZ", "#A1B2|NPA1]", at=now)[1],
        "unknown SIA code": lambda: Panel(PLAIN.account).sia("QQ", "1", at=now)[1],
        "garbled Contact ID": lambda: Panel(PLAIN.account).message("ADM-CID", "#A1B2|11x0 01 001]", at=now)[1],
        "bad length": lambda: Panel(PLAIN.account).cid(1, 120, at=now)[1].replace(b"\n", b"", 1)[:8] + b"X"
        + Panel(PLAIN.account).cid(1, 120, at=now)[1][9:],
        "not DC-09": lambda: frame("hello panel"),
    }[case]()
    raw = await _raw(rig, data)
    reply = read_reply(raw, None)
    assert reply.kind == answer, case
    if answer == "DUH" and reason != "unknown_account":
        assert reply.seq == 1  # a DUH echoes the sequence and the account
    assert rig.h.desk.open_incidents() == []
    [refused] = rig.records("sia_refused")
    assert refused.details["reason"] == reason and refused.details["answer"] == answer


async def test_plain_link_test_on_encrypted_account_is_refused(rig: Rig) -> None:
    # Anyone who knows the account number could send it: it must not pass for a sign of life.
    assert await send(rig, Panel(CRYPT.account).null(at=rig.h.clock())[1]) == "DUH"
    [refused] = rig.records("sia_refused")
    assert refused.details["reason"] == "encryption_required" and refused.details["protocol"] == "NULL"
    assert rig.records("sia_message") == []


async def test_retransmission_is_acknowledged_but_not_acted_on_twice(rig: Rig) -> None:
    now = rig.h.clock()
    panel = rig.panel_b()
    seq, data = panel.cid(1, 122, at=now)
    assert await send(rig, data, KEY_B) == "ACK"
    assert await send(rig, data, KEY_B) == "ACK"  # the same bytes again (a replay)
    # a retransmission: same sequence, timestamp and event, re-encrypted with a fresh pad
    _, again = panel.cid(1, 122, seq=seq, at=now)
    assert again != data
    assert await send(rig, again, KEY_B) == "ACK"
    assert [r.details["reason"] for r in rig.records("sia_refused")] == ["replayed", "replayed"]
    assert rig.h.kinds().count("trigger") == 1
    # a new sequence number is a new report
    assert await send(rig, panel.cid(1, 122, at=now)[1], KEY_B) == "ACK"
    assert rig.h.kinds().count("trigger") == 2


async def test_same_sequence_with_a_new_timestamp_is_a_new_report(rig: Rig) -> None:
    """A dialler that reboots restarts its sequence: its hold-up two seconds later must act."""
    now = rig.h.clock()
    before = rig.panel_b()
    assert await send(rig, before.cid(1, 122, seq=1, at=now)[1], KEY_B) == "ACK"
    rebooted = rig.panel_b()
    assert await send(rig, rebooted.cid(1, 122, seq=1, at=now + timedelta(seconds=2))[1], KEY_B) == "ACK"
    assert rig.records("sia_refused") == []
    assert rig.h.kinds().count("trigger") == 2
    assert [r.details["outcome"] for r in rig.records("sia_message")] == ["opened", "joined"]


async def test_restores_and_status_are_recorded_and_open_nothing(rig: Rig) -> None:
    now = rig.h.clock()
    a = rig.panel_a()
    for data in (a.cid(3, 120, at=now), a.cid(3, 122, at=now), a.cid(6, 120, at=now), a.sia("PH", "1", at=now),
                 a.sia("BR", "1", at=now), a.cid(1, 602, at=now), a.cid(1, 401, zone=12, at=now)):
        assert await send(rig, data[1]) == "ACK"
    assert rig.h.desk.open_incidents() == []
    outcomes = [r.details["outcome"] for r in rig.records("sia_message")]
    assert outcomes == ["restore", "restore", "status", "restore", "restore", "test", "not_mapped"]
    assert "trigger" not in rig.h.kinds()


async def test_burglary_needs_confirmation_only_where_mapped(rig: Rig) -> None:
    now = rig.h.clock()
    # panel B does not map burglary: recorded, nothing else
    assert await send(rig, rig.panel_b().cid(1, 130, at=now)[1], KEY_B) == "ACK"
    assert rig.h.desk.open_incidents() == []
    assert rig.records("sia_message")[-1].details["outcome"] == "not_mapped"
    # panel A maps it: an alarm awaiting a person's confirmation, from the panel's ".intrusion" source
    assert await send(rig, rig.panel_a().sia("BA", "12", "3", at=now)[1]) == "ACK"
    [inc] = rig.h.desk.open_incidents()
    assert inc.state is State.PENDING and inc.category == "intrusion_armee"
    assert inc.trigger.actor == "centrale-a.intrusion"
    texts = await rig.texts()
    assert any("ALERTE À CONFIRMER" in t and "zone 12, partition 3" in t for t in texts)


async def test_heartbeat_loss_is_reported_then_back(rig: Rig) -> None:
    clock = rig.h.clock
    a = rig.panel_a()
    assert await send(rig, a.null(at=clock())[1]) == "ACK"
    clock.advance(seconds=(PLAIN.heartbeat + MARGIN).total_seconds() - 1)  # type: ignore[operator]
    rig.rx.supervise()
    assert not any("ne répond plus" in t for t in await rig.texts())
    clock.advance(seconds=2)
    rig.rx.supervise()
    rig.rx.supervise()  # said once, not at every check
    texts = await rig.texts()
    silent = [t for t in texts if "ne répond plus" in t]
    assert len(silent) == 1 and PLAIN.label in silent[0] and "depuis 19:00" in silent[0]  # T0, 18:00 UTC, in Europe/Paris
    assert any("is not responding" in t for t in rig.h.rooms[1].texts())
    # CRYPT has no heartbeat: never reported
    assert CRYPT.label not in silent[0]
    # a refused message is no sign of life
    assert await send(rig, a.cid(1, 120, at=clock(), bad_crc=True)[1]) == "NAK"
    assert not any("de nouveau" in t for t in await rig.texts())
    assert await send(rig, a.null(at=clock())[1]) == "ACK"
    back = [t for t in await rig.texts() if "répond de nouveau" in t]
    assert len(back) == 1 and PLAIN.label in back[0]
    kinds = rig.h.kinds()
    assert kinds.count("panel_silent") == 1 and kinds.count("panel_back") == 1
    silent_rec = next(r for r in rig.h.registre.records() if r.kind == "panel_silent")
    assert silent_rec.details["panel"] == PLAIN.name and silent_rec.details["account"] == PLAIN.account


async def test_supervision_runs_on_the_desk_scheduler(rig: Rig) -> None:
    job = rig.h.scheduler.get_job("sia:supervision")
    assert job is not None
    await rig.rx.stop()
    assert rig.h.scheduler.get_job("sia:supervision") is None


async def test_burst_of_100_from_two_panels_is_one_incident(rig: Rig) -> None:
    now = rig.h.clock()
    a, b = rig.panel_a(), rig.panel_b()
    frames_a = [a.cid(1, 122, zone=i % 5, at=now) for i in range(50)]
    frames_b = [b.sia("HA" if i % 2 else "PA", str(i % 3), "1", at=now) for i in range(50)]

    async def pipelined(frames: list[tuple[int, bytes]], key: str | None) -> list[int]:
        # all 50 frames written at once, before reading a single answer
        link = await rig.link()
        try:
            link.writer.write(b"".join(f for _, f in frames))
            await link.writer.drain()
            return [read_reply(await link.receive(), key).seq for _ in frames]
        finally:
            await link.close()

    async def one_by_one(frames: list[tuple[int, bytes]], key: str | None) -> list[int]:
        link = await rig.link()
        try:
            out = []
            for _, f in frames:
                reply = await link.send(f, key)
                assert reply.kind == "ACK"
                out.append(reply.seq)
            return out
        finally:
            await link.close()

    seqs_a, seqs_b = await asyncio.gather(pipelined(frames_a, None), one_by_one(frames_b, KEY_B))
    assert seqs_a == [s for s, _ in frames_a] and seqs_b == [s for s, _ in frames_b]
    [inc] = rig.h.desk.open_incidents()
    msgs = rig.records("sia_message")
    assert len(msgs) == 100 and {r.incident for r in msgs} == {inc.id}
    outcomes = [r.details["outcome"] for r in msgs]
    assert outcomes.count("opened") == 1 and outcomes.count("joined") == 99
    assert {(r.actor, r.details["sequence"]) for r in msgs} == (
        {(PLAIN.name, f"{s:04d}") for s, _ in frames_a} | {(CRYPT.name, f"{s:04d}") for s, _ in frames_b})
    texts = await rig.texts()
    assert sum("ACCÈS VIDÉO OUVERT" in t for t in texts) == 1
    assert rig.h.registre.verify().ok


async def test_udp(rig: Rig) -> None:
    now = rig.h.clock()
    reply = await send_udp("127.0.0.1", rig.port, rig.panel_b().cid(1, 121, zone=9, at=now)[1], KEY_B)
    assert reply.kind == "ACK" and reply.encrypted
    reply = await send_udp("127.0.0.1", rig.port, rig.panel_a().cid(1, 120, at=now, bad_crc=True)[1], None)
    assert reply.kind == "NAK"
    assert len(rig.h.desk.open_incidents()) == 1
    assert [r.details["transport"] for r in rig.records("sia_message")] == ["udp"]


async def test_garbage_never_stops_the_receiver(rig: Rig) -> None:
    rng = random.Random(6)
    now = rig.h.clock()
    valid = rig.panel_a().cid(1, 120, at=now)[1]
    frames = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) + b"\r" for _ in range(100)]
    frames += [valid[: rng.randrange(1, len(valid) - 1)] + b"\r" for _ in range(50)]  # truncated
    frames += [_flip(valid, rng) for _ in range(50)]  # one byte changed
    frames += [frame(body) for body in (  # intact frames (good CRC) with hostile data
        '"SIA-DCS"0001L0#A1B2[#A1B2|Nri1/PQ1][]_18:00:00,11-25-2026',  # empty extended data
        '"SIA-DCS"0001L0#A1B2[#A1B2|Nri1/PQ1][a][_18:00:00,11-25-2026',
        '"ADM-CID"0001L0#A1B2[#A1B2|1120 01 001]_99:99:99,13-45-2026',  # impossible time
        '"*SIA-DCS"0001L0#C3D4E5[ABC',  # odd hex
        '"*SIA-DCS"0001L0#C3D4E5[' + "00" * 15,  # not a whole block
        '"NULL"0001L0#A1B2[' + "]" * 2000,
    )]
    frames.append(b"\n" + b"7" * 5000)  # no CR at all, longer than any frame
    for raw in frames:
        reply = await rig.rx.handle_frame(raw, "fuzz")
        assert reply.startswith(b"\n") and reply.endswith(b"\r")
        assert read_reply(reply, None).kind in ("NAK", "DUH", "ACK")
    link = await rig.link()
    link.writer.write(b"".join(frames[:120]))  # the same garbage through a socket
    await link.writer.drain()
    await link.close()
    # still standing, and still right
    assert rig.h.desk.open_incidents() == []
    assert await send(rig, rig.panel_a().cid(1, 120, at=now)[1]) == "ACK"
    assert len(rig.h.desk.open_incidents()) == 1
    assert rig.h.registre.verify().ok


def _flip(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(1, len(data) - 1)
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(7))]) + data[i + 1 :]


async def test_every_frame_is_in_the_registre(rig: Rig) -> None:
    now = rig.h.clock()
    a, b = rig.panel_a(), rig.panel_b()
    sent = [a.null(at=now)[1], a.cid(1, 120, at=now, bad_crc=True)[1], b.cid(1, 120, at=now, key="X" * 16)[1],
            Panel("ABCDEF").null(at=now)[1], a.cid(1, 120, at=now - timedelta(minutes=2))[1], a.cid(3, 120, at=now)[1]]
    for data in sent:
        await _raw(rig, data)
    records = [r for r in rig.h.registre.records() if r.kind in ("sia_message", "sia_refused")]
    assert [r.details.get("reason") or r.details["outcome"] for r in records] == [
        "link_test", "bad_crc", "wrong_key", "unknown_account", "timestamp_outside_window", "restore"]
    assert all(r.details["client"] == "127.0.0.1" for r in records)


async def test_stop_closes_connections_and_listeners(tmp_path: Path) -> None:
    r = await start_rig(tmp_path)
    idle = await r.link()  # a panel that keeps its connection open
    assert await idle.send(r.panel_a().null()[1], None)
    port = r.port
    await stop_rig(r)
    assert await idle.reader.read() == b""  # closed by the receiver
    with pytest.raises(OSError):
        await Link.open("127.0.0.1", port)


async def test_every_key_size(tmp_path: Path) -> None:
    """AES-128/192/256 from 16/24/32 characters, and AES-128 from 32 hex digits (Ajax's "32 HEX")."""
    keys: dict[str, bytes] = {
        "A128": b"0123456789abcdef", "A192": b"0123456789abcdefGHIJKLMN", "A256": b"0123456789abcdef" * 2,
        "B128": bytes.fromhex("FA415FA2FB3C7F13FA415FA2FB3C7F13"),
    }
    panels = tuple(PanelAccount(f"p-{acct.lower()}", acct, acct, key, {"hold_up": "attaque_armee"}, None)
                   for acct, key in keys.items())
    h = await Harness(tmp_path, conv=panel_convention(panels)).start()
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, False, MARGIN, panels), h.desk, h.clock, h.scheduler)
    await rx.start()
    try:
        for acct, key in keys.items():
            link = await Link.open("127.0.0.1", rx.port)
            reply = await link.send(Panel(acct, key=key).cid(1, 120, at=h.clock())[1], key)
            await link.close()
            assert reply.kind == "ACK" and reply.encrypted, acct
        assert [r.details["outcome"] for r in h.registre.records() if r.kind == "sia_message"] == [
            "opened", "joined", "joined", "joined"]
    finally:
        await rx.stop()
        await h.stop()


async def test_hold_up_activates_an_intrusion_alarm_awaiting_confirmation(rig: Rig) -> None:
    """Two messages: a burglary (a person must confirm), then a hold-up, which opens at once."""
    now = rig.h.clock()
    a = rig.panel_a()
    assert await send(rig, a.sia("BA", "12", "3", at=now)[1]) == "ACK"
    [pending] = rig.h.desk.open_incidents()
    assert pending.state is State.PENDING
    assert await send(rig, a.cid(1, 122, zone=4, at=now)[1]) == "ACK"
    [inc] = rig.h.desk.open_incidents()
    assert inc.id == pending.id and inc.state is State.ACTIVE
    assert [r.details["outcome"] for r in rig.records("sia_message")] == ["pending", "confirmed"]
    texts = await rig.texts()
    assert any("ACCÈS VIDÉO OUVERT" in t for t in texts)
    assert any(f"confirmée par {PLAIN.label}" in t for t in texts)
