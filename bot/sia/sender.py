"""A DC-09 transmitter (the panel's side), written from ANSI/SIA DC-09-2013, not from the receiver.

It builds frames (§5.5.1): ``<LF><crc><0LLL><"id"><seq>[Rrcvr]<Lpref>#<acct>[<data>…<CR>`` where
``crc`` is CRC-16/ARC over everything from the first quote to the end of the timestamp (4 upper-case
hex digits) and ``0LLL`` the length of that part (hex, leading zero). Encrypted accounts star the
id (``"*SIA-DCS"``) and send, after ``[``, the hex of AES-CBC with a zero IV over
``<pad>|<data><timestamp>``, the pad being 16 to 31 random characters other than ``|``, ``[`` and
``]`` that bring the length to a multiple of 16 (§5.4; 2026 edition). The timestamp
``_HH:MM:SS,MM-DD-YYYY`` is UTC.

It also reads the receiver's answers (ACK, NAK, DUH; ``*ACK`` decrypted) and checks their CRC
and length. Run it by hand against the demo::

    python -m bot.sia.sender --port 8081 --account D3E0 --key <key> panic
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from Crypto.Cipher import AES


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC: polynomial x^16 + x^15 + x^2 + 1, reflected (0xA001), initial value 0."""
    crc = 0
    for byte in data:
        for bit in range(8):
            mix = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if mix:
                crc ^= 0xA001
    return crc


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")


def frame(body: str, *, bad_crc: bool = False) -> bytes:
    crc = crc16_arc(body.encode("ascii"))
    if bad_crc:
        crc ^= 0x0101
    return f"\n{crc:04X}0{len(body):03X}{body}\r".encode("ascii")


PAD_CHARS = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "|[]"]


def encrypt(key: bytes, text: str, rng: random.Random) -> str:
    """``<pad>|text`` under AES-CBC (zero IV), upper-case hex.

    The pad fills to a multiple of 16 with 16 to 31 characters: DC-09-2026 wants a whole block
    of pad at least (the 2013 edition's 1 to 16 characters are logged as too short).
    """
    clear = "|" + text
    pad = "".join(rng.choice(PAD_CHARS) for _ in range(16 + (16 - len(clear) % 16) % 16))
    cipher = AES.new(key, AES.MODE_CBC, iv=b"\x00" * 16)
    return cipher.encrypt((pad + clear).encode("ascii")).hex().upper()


def sia_dcs(account: str, code: str, zone: str = "", partition: str = "", zone_name: str = "") -> str:
    """DC-03 data (SIA Level 2/3) as carried in DC-09: ``#acct|Nri<area>/<code><zone>]``."""
    area = f"ri{partition}/" if partition else ""
    name = f"^{zone_name}^" if zone_name else ""
    return f"#{account}|N{area}{code}{zone}{name}]"


def contact_id(account: str, qualifier: int, event: int, partition: int, zone: int) -> str:
    """DC-05 (Ademco Contact ID) as carried in DC-09: ``#acct|QEEE GG ZZZ]``."""
    return f"#{account}|{qualifier}{event:03d} {partition:02d} {zone:03d}]"


@dataclass
class Panel:
    account: str
    key: str | bytes | None = None  # AES key: characters as entered in the panel, or the raw bytes
    receiver: int | None = 1
    line: int = 0
    seq: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 - padding, not a secret

    def next_seq(self) -> int:
        self.seq = self.seq % 9999 + 1
        return self.seq

    def message(self, token: str, data: str, *, at: datetime | None = None, seq: int | None = None,
                key: str | bytes | None = None, bad_crc: bool = False, timestamp: bool = True) -> tuple[int, bytes]:
        """One frame; ``key`` overrides the panel's (a wrong key), ``timestamp=False`` omits it."""
        n = self.next_seq() if seq is None else seq
        key = key if key is not None else self.key
        ids = f"{n:04d}" + (f"R{self.receiver:X}" if self.receiver is not None else "") + f"L{self.line:X}#{self.account}["
        ts = stamp(at or datetime.now(UTC)) if timestamp else ""
        if key:
            body = f'"*{token}"{ids}{encrypt(key_bytes(key), data + ts, self.rng)}'
        else:
            body = f'"{token}"{ids}{data}{ts}'
        return n, frame(body, bad_crc=bad_crc)

    def null(self, **kw: object) -> tuple[int, bytes]:
        return self.message("NULL", "]", **kw)  # type: ignore[arg-type]

    def sia(self, code: str, zone: str = "", partition: str = "", **kw: object) -> tuple[int, bytes]:
        return self.message("SIA-DCS", sia_dcs(self.account, code, zone, partition), **kw)  # type: ignore[arg-type]

    def cid(self, qualifier: int, event: int, partition: int = 1, zone: int = 0, **kw: object) -> tuple[int, bytes]:
        return self.message("ADM-CID", contact_id(self.account, qualifier, event, partition, zone), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Reply:
    kind: str  # "ACK" | "NAK" | "DUH" | "RSP"
    encrypted: bool
    seq: int
    account: str | None
    timestamp: datetime | None


_REPLY = re.compile(r'"(\*?)(ACK|NAK|DUH|RSP)"(\d{4})(R[0-9A-F]+)?(L[0-9A-F]+)?(?:#([0-9A-F]+)|A0)?\[(.*)$', re.S)
_TS = re.compile(r"_(\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})$")


def key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode("ascii")


class BadReply(ValueError):
    """The receiver's answer is not a well-formed DC-09 answer; the message says what is wrong."""


def _check(ok: object, what: object) -> None:
    if not ok:
        raise BadReply(str(what))


def read_reply(raw: bytes, key: str | bytes | None) -> Reply:
    """Parse and check one answer from the receiver; BadReply says what is wrong with it."""
    _check(raw.startswith(b"\n") and raw.endswith(b"\r"), raw)
    text = raw[1:-1].decode("ascii")
    crc, length, body = text[:4], text[4:8], text[8:]
    _check(length[0] == "0" and int(length, 16) == len(body), f"length field {length} for {len(body)} characters")
    _check(int(crc, 16) == crc16_arc(body.encode("ascii")), "bad CRC in the answer")
    m = _REPLY.fullmatch(body)
    if m is None:
        raise BadReply(body)
    star, kind, seq, _rcv, _line, account, rest = m.groups()
    ts_text: str | None = None
    if star:
        if not key:
            raise BadReply("an encrypted answer to a panel without a key")
        clear = AES.new(key_bytes(key), AES.MODE_CBC, iv=b"\x00" * 16).decrypt(bytes.fromhex(rest)).decode("ascii")
        _check("|" in clear, clear)
        rest = clear.split("|", 1)[1]
    tm = _TS.search(rest)
    if tm:
        ts_text = tm.group(1)
    at = datetime.strptime(ts_text, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC) if ts_text else None
    return Reply(kind, bool(star), int(seq), account, at)


class Link:
    """A TCP connection to the receiver, as a panel keeps one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Link:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes, key: str | bytes | None, timeout: float = 10) -> Reply:
        self.writer.write(data)
        await self.writer.drain()
        return read_reply(await self.receive(timeout), key)

    async def receive(self, timeout: float = 10) -> bytes:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r"), timeout)
        return raw[raw.index(b"\n"):]

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def send_udp(host: str, port: int, data: bytes, key: str | bytes | None, timeout: float = 10) -> Reply:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class _Proto(asyncio.DatagramProtocol):
        def datagram_received(self, d: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(d)

    transport, _ = await loop.create_datagram_endpoint(_Proto, remote_addr=(host, port))
    try:
        transport.sendto(data)
        return read_reply(await asyncio.wait_for(got, timeout), key)
    finally:
        transport.close()


EVENTS: dict[str, tuple[str, Any]] = {
    "panic": ("ADM-CID", (1, 120)),
    "duress": ("ADM-CID", (1, 121)),
    "hold-up": ("ADM-CID", (1, 122)),
    "burglary": ("ADM-CID", (1, 130)),
    "restore": ("ADM-CID", (3, 120)),
    "test": ("ADM-CID", (1, 602)),
    "sia-panic": ("SIA-DCS", "PA"),
    "sia-hold-up": ("SIA-DCS", "HA"),
    "sia-burglary": ("SIA-DCS", "BA"),
    "null": ("NULL", None),
}


async def _main(args: argparse.Namespace) -> int:
    panel = Panel(args.account.upper(), args.key, rng=random.Random())  # noqa: S311 - a pad, not a secret
    proto, what = EVENTS[args.event]
    if proto == "NULL":
        _, data = panel.null()
    elif proto == "ADM-CID":
        q, e = what
        _, data = panel.cid(q, e, int(args.partition), int(args.zone))
    else:
        _, data = panel.sia(str(what), args.zone, args.partition)
    link = await Link.open(args.host, args.port)
    try:
        reply = await link.send(data, args.key)
    finally:
        await link.close()
    print(f"{args.event}: {reply.kind}")
    return 0 if reply.kind == "ACK" else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``sia-send`` options, shared by ``python -m bot sia-send`` and ``python -m bot.sia.sender``."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--key", help="AES key (16, 24 or 32 characters) for an encrypted account")
    p.add_argument("--zone", default="5")
    p.add_argument("--partition", default="1")
    p.add_argument("event", choices=sorted(EVENTS))


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bot.sia.sender", description="Send one DC-09 event, as a panel would.")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
