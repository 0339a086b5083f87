"""The receiver driven by third-party DC-09 diallers from PyPI, written to the standard without Vigie.

``siadc09`` (DC-09-2026 primitives) builds every frame here that it can: encrypted and plain
events with any data (multi-event SIA-DCS, any Contact ID qualifier), NULLs, chosen sequence and
timestamp; it also reads the receiver's answers, so the ACK's framing and pad are checked by an
independent reader. ``my-dc09-spt`` (an older dialler) sends the plain Contact ID frames with the
qualifiers its own event builder refuses (its frame builder takes any payload). Neither can
stall a socket on purpose: the idle sockets are plain asyncio connections.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from my_dc09_spt.msg.dc09_msg import dc09_msg
from siadc09 import account, message, xdata
from siadc09.message import parse_frame

from bot.policy.incident import State
from bot.sia.connections import Limits
from bot.sia.receiver import PanelAccount, ReceiverConfig, SiaReceiver
from tests.harness import Harness
from tests.sia.rig import CRYPT, KEY_B, MARGIN, PLAIN, Rig, panel_convention, start_rig, stop_rig


@pytest.fixture
async def rig(tmp_path: Path):
    r = await start_rig(tmp_path)
    yield r
    await stop_rig(r)


def dialler(panel: PanelAccount) -> account.Account:
    return account.Account(acct=int(panel.account, 16), key=panel.key, rcvr=1, pref=None)


def event(acct: account.Account, token: str, data: str, seq: int, at: datetime) -> bytes:
    """One siadc09 event frame: ``data`` is the DC-09 data field without its closing bracket."""
    msg = message.EventMessage(acct, config={"idtoken": token, "seqno": seq, "data": xdata.Data(data.encode()),
                                             "timestamp": at})
    return bytes(msg.encode())


def null(acct: account.Account, seq: int, at: datetime, *, encrypt: bool) -> bytes:
    return bytes(message.NullMessage(acct, timestamp=at).encode(seq=seq, encrypt=encrypt))


async def tcp(port: int, *frames: bytes) -> list[bytes]:
    """Send every frame on one connection, one at a time; the raw answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for f in frames:
            writer.write(f)
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(b"\r"), 10)
            out.append(raw[raw.index(b"\n"):])
    finally:
        writer.close()
        await writer.wait_closed()
    return out


async def udp(port: int, frame: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(frame)
        return await asyncio.wait_for(got, 10)
    finally:
        transport.close()


def kind(raw: bytes, key: bytes | None = None) -> tuple[str, int]:
    """The answer as siadc09 reads it: its id token and sequence."""
    m = parse_frame(raw, keys=key)
    return m.idtoken, m.seq


async def send(rig: Rig, transport: str, frame: bytes, key: bytes | None) -> tuple[str, int]:
    raw = (await tcp(rig.port, frame))[0] if transport == "tcp" else await udp(rig.port, frame)
    return kind(raw, key)


FORMS = {"one block": "#{a}|Nri1/BA501/PA502", "two blocks": "#{a}|Nri1BA501|Nri1PA502"}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize("form", sorted(FORMS))
async def test_multi_event_message_acts_on_every_event(rig: Rig, transport: str, form: str) -> None:
    now = rig.h.clock()
    # Panel B maps hold-ups only: the burglary is recorded, the panic behind it opens access.
    frame = event(dialler(CRYPT), "SIA-DCS", FORMS[form].format(a=CRYPT.account), 7, now)
    assert await send(rig, transport, frame, CRYPT.key) == ("ACK", 7)
    [inc] = rig.h.desk.open_incidents()
    assert inc.state is State.ACTIVE and inc.category == "attaque_armee"
    msgs = rig.records("sia_message")
    assert [(m.details["event"], m.details["outcome"]) for m in msgs] == [("SIA BA", "not_mapped"), ("SIA PA", "opened")]
    assert [(m.details["event_index"], m.details["events"]) for m in msgs] == [(1, 2), (2, 2)]
    assert all(m.details["zone"] in ("501", "502") and m.details["partition"] == "1" for m in msgs)
    assert msgs[1].incident == inc.id and msgs[0].incident is None
    assert rig.records("sia_refused") == []


async def test_one_answer_per_multi_event_message(rig: Rig) -> None:
    now = rig.h.clock()
    acct = dialler(CRYPT)
    answers = await tcp(rig.port, event(acct, "SIA-DCS", f"#{CRYPT.account}|Nri1/HA1/PA2/BA3", 21, now),
                        null(acct, 22, now, encrypt=True))
    # the second answer read on the connection is the NULL's: the message got exactly one
    assert [kind(a, CRYPT.key) for a in answers] == [("ACK", 21), ("ACK", 22)]
    assert len(rig.records("sia_message")) == 4


async def test_hold_up_first_whatever_the_order(rig: Rig) -> None:
    """Panel A maps burglary too (confirmation needed): the hold-up after it still opens at once."""
    now = rig.h.clock()
    frame = event(dialler(PLAIN), "SIA-DCS", f"#{PLAIN.account}|Nri3/BA12/PA13", 3, now)
    assert await send(rig, "tcp", frame, None) == ("ACK", 3)
    [inc] = rig.h.desk.open_incidents()
    assert inc.state is State.ACTIVE and inc.category == "attaque_armee"
    assert [m.details["outcome"] for m in rig.records("sia_message")] == ["joined", "opened"]


async def test_sequence_restart_after_a_reboot_acts(rig: Rig) -> None:
    now = rig.h.clock()
    hold_up = f"#{CRYPT.account}|Nri1/HA5"
    assert await send(rig, "tcp", event(dialler(CRYPT), "SIA-DCS", hold_up, 1, now), CRYPT.key) == ("ACK", 1)
    # its retransmission (same sequence, timestamp and data; a fresh pad) is not acted on again
    assert await send(rig, "tcp", event(dialler(CRYPT), "SIA-DCS", hold_up, 1, now), CRYPT.key) == ("ACK", 1)
    # the dialler reboots, restarts at 0001 and repeats the hold-up two seconds later
    later = now + timedelta(seconds=2)
    assert await send(rig, "udp", event(dialler(CRYPT), "SIA-DCS", hold_up, 1, later), CRYPT.key) == ("ACK", 1)
    assert [r.details["reason"] for r in rig.records("sia_refused")] == ["replayed"]
    assert [m.details["outcome"] for m in rig.records("sia_message")] == ["opened", "joined"]
    assert rig.h.kinds().count("trigger") == 2


@pytest.mark.parametrize("qualifier", ["0", "2", "5", "9"])
async def test_undefined_contact_id_qualifier_never_opens(rig: Rig, qualifier: str) -> None:
    now = rig.h.clock()
    # my-dc09-spt, plain (its own event builder accepts only 1, 3 and 6; its frame builder anything)
    plain = dc09_msg(PLAIN.account, receiver=1, line=0).dc09block(5, "ADM-CID", f"#{PLAIN.account}|{qualifier}122 01 001]")
    assert kind((await tcp(rig.port, plain.encode("ascii")))[0]) == ("DUH", 5)
    # siadc09, encrypted, over UDP
    crypt = event(dialler(CRYPT), "ADM-CID", f"#{CRYPT.account}|{qualifier}120 02 007", 6, now)
    assert await send(rig, "udp", crypt, CRYPT.key) == ("DUH", 6)
    assert rig.h.desk.open_incidents() == [] and "trigger" not in rig.h.kinds()
    refusals = rig.records("sia_refused")
    assert [r.details["reason"] for r in refusals] == ["undefined_qualifier"] * 2
    assert refusals[0].details["events"] == [{"flaw": "undefined_qualifier", "raw": f"{qualifier}122 01 001",
                                              "qualifier": qualifier, "event": "122", "group": "01", "zone": "001"}]
    assert refusals[1].details["events"][0]["zone"] == "007" and refusals[1].details["encrypted"] is True


async def test_malformed_event_beside_a_hold_up(rig: Rig) -> None:
    """The hold-up is read and acted on; the undefined qualifier and the unknown code are recorded."""
    now = rig.h.clock()
    cid = dc09_msg(PLAIN.account, receiver=1, line=0).dc09block(8, "ADM-CID", f"#{PLAIN.account}|9130 01 004|1120 01 002]")
    assert kind((await tcp(rig.port, cid.encode("ascii")))[0]) == ("ACK", 8)
    dcs = event(dialler(PLAIN), "SIA-DCS", f"#{PLAIN.account}|Nri1/QQ7/HA8", 9, now)
    assert await send(rig, "tcp", dcs, None) == ("ACK", 9)
    [inc] = rig.h.desk.open_incidents()
    assert inc.state is State.ACTIVE
    rows = [(m.details["outcome"], m.details.get("flaw"), m.details.get("code") or m.details.get("qualifier"))
            for m in rig.records("sia_message")]
    assert rows == [("malformed", "undefined_qualifier", "9"), ("opened", None, None),
                    ("malformed", "unknown_code", "QQ"), ("joined", None, None)]


async def test_sia_code_outside_the_table_is_refused(rig: Rig) -> None:
    frame = event(dialler(CRYPT), "SIA-DCS", f"#{CRYPT.account}|Nri1/JJ501", 4, rig.h.clock())
    assert await send(rig, "tcp", frame, CRYPT.key) == ("DUH", 4)
    [refused] = rig.records("sia_refused")
    assert refused.details["reason"] == "unknown_code"
    assert refused.details["events"] == [{"flaw": "unknown_code", "raw": "JJ501", "code": "JJ", "address": "501",
                                          "area": "1"}]


async def test_encrypted_ack_pad_is_a_whole_block(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """siadc09 (DC-09-2026) logs an ACK whose pad is shorter than 16 characters as too short."""
    caplog.set_level(logging.DEBUG, logger="siadc09")
    now = rig.h.clock()
    acct = dialler(CRYPT)
    answers = await tcp(rig.port, *(null(acct, n, now, encrypt=True) for n in range(1, 41)))
    assert {kind(a, CRYPT.key)[0] for a in answers} == {"ACK"}
    assert "Short pad" not in caplog.text


async def test_plain_null_never_keeps_a_keyed_panel_alive(tmp_path: Path) -> None:
    keyed = PanelAccount("centrale-k", "Centrale du quai", "5E6F", KEY_B.encode("ascii"), {"hold_up": "attaque_armee"},
                         heartbeat=timedelta(seconds=60))
    h = await Harness(tmp_path, conv=panel_convention((keyed,))).start()
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, True, MARGIN, (keyed,)), h.desk, h.clock, h.scheduler)
    await rx.start()
    acct = dialler(keyed)
    try:
        # someone who knows the account number sends a plain NULL every 10 s, over TCP and UDP
        for n in range(1, 11):
            h.clock.advance(seconds=10)
            frame = null(acct, n, h.clock(), encrypt=False)
            raw = (await tcp(rx.port, frame))[0] if n % 2 else await udp(rx.port, frame)
            assert kind(raw) == ("DUH", n)
            rx.supervise()
        await h.fanout.drain()
        texts = h.rooms[0].texts()
        assert sum("ne répond plus" in t for t in texts) == 1
        assert {r.details["reason"] for r in h.registre.records() if r.kind == "sia_refused"} == {"encryption_required"}
        # the panel's own, encrypted, NULL is a sign of life
        assert kind((await tcp(rx.port, null(acct, 11, h.clock(), encrypt=True)))[0], keyed.key) == ("ACK", 11)
        await h.fanout.drain()
        assert any("répond de nouveau" in t for t in h.rooms[0].texts())
    finally:
        await rx.stop()
        await h.stop()


async def _idle_sockets(port: int, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        _, w = await asyncio.open_connection("127.0.0.1", port)
        writers.append(w)
    return writers


async def _close(writers: list[asyncio.StreamWriter]) -> None:
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


@pytest.mark.parametrize("limits", [None, Limits(per_source=1000, total=50)], ids=["per-source cap", "global cap"])
async def test_hold_up_answered_behind_200_idle_sockets(tmp_path: Path, limits: Limits | None) -> None:
    h = await Harness(tmp_path, conv=panel_convention()).start()
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, True, MARGIN, (PLAIN, CRYPT)), h.desk, h.clock, h.scheduler, limits)
    await rx.start()
    idle = await _idle_sockets(rx.port, 200)
    try:
        now = h.clock()
        frame = event(dialler(CRYPT), "ADM-CID", f"#{CRYPT.account}|1122 01 004", 30, now)
        assert kind((await tcp(rx.port, frame))[0], CRYPT.key) == ("ACK", 30)
        [inc] = h.desk.open_incidents()
        assert inc.state is State.ACTIVE
        cap = rx.pool.limits.per_source if limits is None else rx.pool.limits.total
        assert len(rx.pool) <= cap and rx.pool.evicted >= 200 - cap
        # UDP never waits for a connection slot
        udp_frame = event(dialler(CRYPT), "ADM-CID", f"#{CRYPT.account}|1120 01 005", 31, now)
        assert kind(await udp(rx.port, udp_frame), CRYPT.key) == ("ACK", 31)
    finally:
        await _close(idle)
        await rx.stop()
        await h.stop()


async def test_idle_and_trickling_connections_are_closed(tmp_path: Path) -> None:
    h = await Harness(tmp_path, conv=panel_convention()).start()
    limits = Limits(idle_new=0.2, frame_time=0.3)
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, False, MARGIN, (PLAIN, CRYPT)), h.desk, h.clock, h.scheduler, limits)
    await rx.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # silent: closed
        writer.close()
        frame = event(dialler(PLAIN), "SIA-DCS", f"#{PLAIN.account}|Nri1/PA1", 2, h.clock())
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        for byte in frame[:-1]:  # one byte at a time, never finishing the frame in time
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert h.desk.open_incidents() == [] and len(rx.pool) == 0
    finally:
        await rx.stop()
        await h.stop()
