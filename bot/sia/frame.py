"""SIA DC-09 on the wire: frames, checks, decryption and the receiver's answers. No I/O.

A frame (ANSI/SIA DC-09-2013 §5.5.1) is ``<LF><crc><0LLL><"id"><seq>[Rrcvr]<Lpref>#<acct>[<data>…<CR>``:
``crc`` is the CRC-16/ARC of everything from the opening quote to the end, as 4 hex digits;
``0LLL`` that part's length in hex. ``id`` is ``SIA-DCS``, ``ADM-CID`` (Contact ID) or ``NULL``
(link test), starred (``*SIA-DCS``) when encrypted: then everything after ``[`` is the hex of
AES-CBC (zero IV) over ``<pad>|<data>]<timestamp>``, the pad (random, without ``|[]``) making
the length a multiple of 16. The timestamp ``_HH:MM:SS,MM-DD-YYYY`` (UTC) is mandatory when
encrypted, optional otherwise.

The checks run cheapest first and each refusal carries the answer the protocol calls for:

- NAK (the panel retransmits): a damaged frame (framing, length, CRC), and a timestamp outside
  the account's window, the NAK carrying our time so the panel can correct its clock (§5.5.3.2);
- DUH (the panel does not retry): a message received intact that we cannot process (§5.5.3.3):
  unknown account, unsupported protocol, encryption where none is configured or the reverse,
  a wrong key, data none of whose events can be trusted (see ``parse_events``).

The data in clear is read by ``events`` (every event of the message). Framing, CRC, length,
decryption and the answers are done here, not by pysiaalarm (whose code tables ``events`` uses):
it cannot report why a message failed, does not check the length, checks timestamps against the
wall clock only, cannot tell a wrong key from bad data, reads only the first event of a message,
and frames its NAK with the receiver and line fields swapped.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from Crypto.Cipher import AES

from .codes import PanelEvent
from .events import Item, Malformed, data_part, read_events

logger = logging.getLogger(__name__)

# Longest frame accepted; DC-09's 3-hex-digit length field caps a body at 0xFFF.
MAX_FRAME = 4200
SUPPORTED = frozenset({"SIA-DCS", "ADM-CID", "NULL"})

_FRAME = re.compile(r"([0-9A-Fa-f]{4})([0-9A-Fa-f]{4})(.*)", re.S)
_HEADER = re.compile(
    r'"(?P<enc>\*)?(?P<token>[A-Za-z0-9-]{1,16})"(?P<seq>\d{4})(?P<rcv>R[0-9A-Fa-f]{1,6})?'
    r"(?P<line>L[0-9A-Fa-f]{1,6})?#(?P<acct>[0-9A-Fa-f]{3,16})\[(?P<rest>.*)",
    re.S,
)
_TIMESTAMP = re.compile(r"_(\d{2}):(\d{2}):(\d{2}),(\d{2})-(\d{2})-(\d{4})$")
_PRINTABLE = frozenset(range(0x20, 0x7F))
_PAD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits + string.punctuation if c not in "|[]")


class Answer(StrEnum):
    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"


class Reason(StrEnum):
    """Why a message was refused, as written to the registre."""

    BAD_FRAME = "bad_frame"
    BAD_LENGTH = "bad_length"
    BAD_CRC = "bad_crc"
    BAD_FORMAT = "bad_format"
    UNKNOWN_ACCOUNT = "unknown_account"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    ENCRYPTION_REQUIRED = "encryption_required"
    UNEXPECTED_ENCRYPTION = "unexpected_encryption"
    WRONG_KEY = "wrong_key"
    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUTSIDE_WINDOW = "timestamp_outside_window"
    UNKNOWN_CODE = "unknown_code"
    UNDEFINED_QUALIFIER = "undefined_qualifier"
    REPLAYED = "replayed"
    INTERNAL_ERROR = "internal_error"


ANSWERS: dict[Reason, Answer] = {
    Reason.BAD_FRAME: Answer.NAK,
    Reason.BAD_LENGTH: Answer.NAK,
    Reason.BAD_CRC: Answer.NAK,
    Reason.BAD_FORMAT: Answer.DUH,
    Reason.UNKNOWN_ACCOUNT: Answer.DUH,
    Reason.UNSUPPORTED_PROTOCOL: Answer.DUH,
    Reason.ENCRYPTION_REQUIRED: Answer.DUH,
    Reason.UNEXPECTED_ENCRYPTION: Answer.DUH,
    Reason.WRONG_KEY: Answer.DUH,
    Reason.MISSING_TIMESTAMP: Answer.NAK,
    Reason.BAD_TIMESTAMP: Answer.NAK,
    Reason.TIMESTAMP_OUTSIDE_WINDOW: Answer.NAK,
    Reason.UNKNOWN_CODE: Answer.DUH,
    Reason.UNDEFINED_QUALIFIER: Answer.DUH,
    # A retransmission (our ACK was lost) or a replay: acknowledged so the panel stops, not acted on twice.
    Reason.REPLAYED: Answer.ACK,
    # Our fault, not the panel's: a NAK makes it retry.
    Reason.INTERNAL_ERROR: Answer.NAK,
}


@dataclass(frozen=True)
class Header:
    protocol: str  # "SIA-DCS", "ADM-CID", "NULL" or anything the panel sent
    encrypted: bool
    seq: str
    receiver: str  # "R1", or "" when the panel sent none
    line: str  # "L0", or "" when the panel sent none
    account: str  # upper-case hex
    rest: str = field(repr=False)  # everything after '[' (hex when encrypted)


class Refusal(Exception):
    """A message refused, with the reason for the registre and the answer for the panel."""

    def __init__(self, reason: Reason, header: Header | None = None, *, reply: Answer | None = None,
                 **details: object) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.answer = reply or ANSWERS[reason]
        self.header = header
        self.details = details


@dataclass(frozen=True)
class Body:
    """The data of a message once in clear: without pad, with its timestamp split off."""

    data: str  # "#1234|Nri1/PA501]" (NULL: "]")
    timestamp: datetime | None


@dataclass(frozen=True)
class Message:
    header: Header
    body: Body
    items: tuple[Item, ...]  # every event in the order sent, readable or not; () for a NULL

    @property
    def events(self) -> tuple[PanelEvent, ...]:
        return tuple(i for i in self.items if isinstance(i, PanelEvent))

    @property
    def replay_key(self) -> tuple[str, str, str, str, str]:
        """What a retransmission repeats: the sequence, the timestamp and the data (not the pad).

        A panel that gets no ACK sends the same message again: same sequence, same timestamp, same
        data (re-encrypted with a fresh pad). A new report differs in one of them: a new sequence
        number, or, after a dialler reboot that restarts its sequence, a new timestamp. Only the
        first case may be ignored.
        """
        stamp = self.body.timestamp.isoformat() if self.body.timestamp else ""
        return (self.header.account, self.header.protocol, self.header.seq, stamp, self.body.data)


def crc16(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005 reflected, initial value 0), as DC-07/DC-09 specify."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def read_header(raw: bytes) -> Header:
    """Frame, length and CRC checks, then the header fields. ``raw`` is one frame, LF/CR optional."""
    frame = raw.strip(b"\r\n\x00 ")
    if not frame or len(frame) > MAX_FRAME:
        raise Refusal(Reason.BAD_FRAME, size=len(frame))
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(Reason.BAD_FRAME, size=len(frame)) from None
    m = _FRAME.fullmatch(text)
    if m is None:
        raise Refusal(Reason.BAD_FRAME, size=len(frame))
    crc_field, length_field, body = m.groups()
    if int(length_field, 16) != len(body):
        raise Refusal(Reason.BAD_LENGTH, announced=int(length_field, 16), actual=len(body))
    if int(crc_field, 16) != crc16(body.encode("ascii")):
        raise Refusal(Reason.BAD_CRC)
    h = _HEADER.fullmatch(body)
    if h is None:
        # Intact but not DC-09: without a sequence and an account, only a NAK can be framed.
        raise Refusal(Reason.BAD_FORMAT, reply=Answer.NAK)
    return Header(
        protocol=h["token"].upper(),
        encrypted=bool(h["enc"]),
        seq=h["seq"],
        receiver=(h["rcv"] or "").upper(),
        line=(h["line"] or "").upper(),
        account=h["acct"].upper(),
        rest=h["rest"],
    )


def _timestamp(m: re.Match[str], header: Header) -> datetime:
    hh, mi, ss, mo, dd, yyyy = (int(g) for g in m.groups())
    try:
        return datetime(yyyy, mo, dd, hh, mi, ss, tzinfo=UTC)
    except ValueError:
        raise Refusal(Reason.BAD_TIMESTAMP, header) from None


def open_body(header: Header, key: bytes | None) -> Body:
    """The data in clear, checked against the account's encryption setting."""
    if not header.encrypted:
        # Anyone who knows the account number could forge a plain frame: on an account with a key,
        # a plain event could open access and a plain NULL could keep a cut panel "alive".
        if key is not None:
            raise Refusal(Reason.ENCRYPTION_REQUIRED, header)
        data = header.rest
        m = _TIMESTAMP.search(data)
        return Body(data[: m.start()] if m else data, _timestamp(m, header) if m else None)
    if key is None:
        raise Refusal(Reason.UNEXPECTED_ENCRYPTION, header)
    try:
        cipher = bytes.fromhex(header.rest)
    except ValueError:
        raise Refusal(Reason.BAD_FORMAT, header) from None
    if not cipher or len(cipher) % 16:
        raise Refusal(Reason.BAD_FORMAT, header)
    plain = AES.new(key, AES.MODE_CBC, iv=bytes(16)).decrypt(cipher)
    sep = plain.find(b"|")
    # The pad may be anything; what follows it is printable ASCII ending in the timestamp. Random
    # bytes (what a wrong key decrypts to) pass that test with a probability of about (95/256)^21.
    tail = plain[sep + 1 :] if sep >= 0 else plain[-21:]
    if not tail or any(b not in _PRINTABLE for b in tail):
        raise Refusal(Reason.WRONG_KEY, header)
    text = tail.decode("ascii")
    m = _TIMESTAMP.search(text)
    if m is None:
        raise Refusal(Reason.MISSING_TIMESTAMP, header)
    # Without a separator (some senders omit it after the pad) only a NULL's "]" survives: an event
    # then fails to parse, which is the honest answer.
    return Body(text[: m.start()], _timestamp(m, header))


def check_clock(header: Header, body: Body, now: datetime, max_past: float, max_future: float) -> None:
    """§5.5.1.8: an encrypted message must carry a timestamp within the window; a plain one may."""
    if body.timestamp is None:
        if header.encrypted:
            raise Refusal(Reason.MISSING_TIMESTAMP, header)
        return
    skew = (body.timestamp - now).total_seconds()
    if skew < -max_past or skew > max_future:
        raise Refusal(Reason.TIMESTAMP_OUTSIDE_WINDOW, header, skew_seconds=round(skew))


def parse_events(header: Header, body: Body) -> tuple[Item, ...]:
    """Every event of the message (none for a NULL), refused when not one of them can be trusted.

    The answer for a message none of whose events can be trusted (an undefined Contact ID
    qualifier, a SIA code outside the DC-03 table, data that is not DC-03/DC-05) is DUH, not NAK
    nor ACK: DC-09 §5.5.3 keeps NAK for a frame damaged in transit or a rejected timestamp (the
    panel retransmits the same message, which would be refused again), and ACK means "received
    and accepted", which would tell the panel and its installer the event was understood. DUH
    says "received intact, cannot be processed" and the panel does not retry. A message of which
    at least one event was read and acted on is ACKed: it was accepted, and a DUH could make the
    panel report a failure and resend, through a backup path, a message already acted on; its
    unreadable events are in the registre as malformed, with their raw fields.
    """
    if header.protocol == "NULL":
        return ()
    items = tuple(read_events(header.protocol, body.data))
    if not any(isinstance(i, PanelEvent) for i in items):
        flaws = [i for i in items if isinstance(i, Malformed)]
        reason = Reason(flaws[0].flaw) if flaws else Reason.BAD_FORMAT
        raise Refusal(reason, header, events=[f.details() for f in flaws] or [{"raw": data_part(body.data)[:80]}])
    return items


def read(raw: bytes, keys: dict[str, bytes | None], now: datetime, window: dict[str, tuple[float, float]]) -> Message:
    """Every check of one frame for the accounts in ``keys``; raise ``Refusal`` at the first failure."""
    header = read_header(raw)
    if header.account not in keys:
        raise Refusal(Reason.UNKNOWN_ACCOUNT, header)
    if header.protocol not in SUPPORTED:
        raise Refusal(Reason.UNSUPPORTED_PROTOCOL, header, protocol=header.protocol[:16])
    body = open_body(header, keys[header.account])
    max_past, max_future = window[header.account]
    check_clock(header, body, now, max_past, max_future)
    return Message(header, body, parse_events(header, body))


# ---------- answers ----------


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")


def frame(body: str) -> bytes:
    data = body.encode("ascii")
    return b"\n" + f"{crc16(data):04X}{len(data):04X}".encode("ascii") + data + b"\r"


def pad_length(length: int) -> int:
    """16 to 31 pad characters, bringing pad + ``length`` to a multiple of 16 (DC-09-2026 §5.4.4.3).

    The 2013 edition asked only for the multiple of 16 (1 to 16 characters); the current edition
    wants at least a whole block of pad before the data, and its receivers (siadc09, written to
    DC-09-2026) log a shorter pad as too short.
    """
    return 16 + (-length) % 16


def _pad(length: int) -> str:
    return "".join(secrets.choice(_PAD_ALPHABET) for _ in range(pad_length(length)))


def encrypt(key: bytes, text: str) -> str:
    """``<pad>|`` + text, AES-CBC with a zero IV, as upper-case hex."""
    plain = "|" + text
    plain = _pad(len(plain)) + plain
    return AES.new(key, AES.MODE_CBC, iv=bytes(16)).encrypt(plain.encode("ascii")).hex().upper()


def ack(header: Header, key: bytes | None, now: datetime) -> bytes:
    """§5.5.3.1; an encrypted message gets an encrypted ACK carrying our timestamp."""
    ids = f"{header.seq}{header.receiver}{header.line or 'L0'}#{header.account}["
    if header.encrypted and key is not None:
        return frame(f'"*ACK"{ids}{encrypt(key, "]" + _stamp(now))}')
    return frame(f'"ACK"{ids}]')


def nak(now: datetime) -> bytes:
    """§5.5.3.2: never encrypted, no sequence or account, our time for the panel's clock."""
    return frame(f'"NAK"0000R0L0A0[]{_stamp(now)}')


def duh(header: Header | None, now: datetime) -> bytes:
    """§5.5.3.3; without a readable header there is nothing to echo, so a NAK is framed instead."""
    if header is None:
        return nak(now)
    return frame(f'"DUH"{header.seq}{header.receiver}{header.line or "L0"}#{header.account}[]')


def answer(refusal: Refusal, key: bytes | None, now: datetime) -> bytes:
    if refusal.answer is Answer.ACK and refusal.header is not None:
        return ack(refusal.header, key, now)
    if refusal.answer is Answer.DUH:
        return duh(refusal.header, now)
    return nak(now)
