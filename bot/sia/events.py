"""The events in a DC-09 message's data, once in clear: every one of them, readable or not. No I/O.

A message may carry several events, and losing one may lose a hold-up:

- SIA-DCS (DC-03 data, §5.2 of DC-03): ``#acct|Nri1/BA501/PA502]`` is one *new event* block
  (function code ``N``) holding three packets separated by ``/``: the modifier ``ri1`` (area 1,
  for every event after it in the block) and two events. ``#acct|Nri1BA501|Nri1PA502]`` is the
  same as two blocks. A packet is a two-letter code (``PA``), an address (zone or user, hex
  digits), optional units (``*…``) and an optional text between carets (``^Hall A^``). Modifiers
  are two lower-case letters and a number (``ri1``, ``id12``, ``ti18:30``). Old-event blocks
  (``O``) are read too: they report what is still present, like Contact ID's qualifier 6, and
  never open anything. Account (``#``), text (``A``) and extended blocks carry no event.
- ADM-CID (DC-05 Contact ID): ``#acct|QEEE GG ZZZ]``, one event per message by the standard. A
  panel that packs several ``|``-separated events gets every one read, not only the first.

Each event comes back as a ``PanelEvent`` (``codes``), or as a ``Malformed`` carrying the raw
fields and why it cannot be trusted: a Contact ID qualifier other than 1, 3 and 6, a SIA code
outside the DC-03 table, or text that is not DC-03 at all. A malformed event never opens
anything. The code tables are pysiaalarm's (SIA codes, Contact ID → SIA translation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pysiaalarm.data.data import ADM_MAPPING, SIA_CODES

from .codes import PanelEvent

CID_QUALIFIERS = frozenset({"1", "3", "6"})  # new event / opening, restore / closing, still present

_CID = re.compile(r"(?P<q>[0-9])(?P<event>[0-9]{3}) (?P<group>[0-9A-F]{2}) (?P<zone>[0-9A-F]{3})")
# One DC-03 packet: a modifier, or an event with its address, units and text, then an optional '/'.
_PACKET = re.compile(
    r"(?P<mod>[a-z]{2})(?P<value>[0-9.:-]*)"
    r"|(?P<code>[A-Z]{2})(?P<addr>[0-9A-F:-]*)(?:\*(?P<units>[^/^]*))?(?:\^(?P<text>[^^]*)\^?)?"
)
EVENT_BLOCKS = frozenset("NO")  # new event, old event
QUIET_BLOCKS = frozenset("#A&XLVE@?")  # account, text, origin, extended, listen-in, video, environmental…


class Flaw:
    """Why an event cannot be trusted (the registre's words)."""

    UNDEFINED_QUALIFIER = "undefined_qualifier"
    UNKNOWN_CODE = "unknown_code"
    BAD_FORMAT = "bad_format"


@dataclass(frozen=True)
class Malformed:
    flaw: str  # a ``Flaw``
    raw: str  # the text of the event (or of what could not be read) as received, cut to 80
    fields: dict[str, str] = field(default_factory=dict)  # qualifier, event, group, zone / code, address…

    def details(self) -> dict[str, object]:
        return {"flaw": self.flaw, "raw": self.raw, **self.fields}


Item = PanelEvent | Malformed


def data_part(data: str) -> str:
    """The mandatory data field: what lies before its ']' (extended data ``[…]`` follows it)."""
    end = data.find("]")
    return data[:end] if end >= 0 else data


def read_events(protocol: str, data: str) -> list[Item]:
    """Every event of ``data`` (``#acct|…]``, timestamp already split off), in the order sent."""
    blocks = data_part(data).split("|")
    items: list[Item] = []
    for block in blocks:
        if not block or block.startswith("#"):
            continue  # the account block; it repeats the header's account
        items += _cid_block(block) if protocol == "ADM-CID" else _dcs_block(block)
    return items


def _cid_block(block: str) -> list[Item]:
    m = _CID.fullmatch(block.strip())
    if m is None:
        return [Malformed(Flaw.BAD_FORMAT, block[:80])]
    q, event, group, zone = m.group("q", "event", "group", "zone")
    if q not in CID_QUALIFIERS:
        return [Malformed(Flaw.UNDEFINED_QUALIFIER, block[:80],
                          {"qualifier": q, "event": event, "group": group, "zone": zone})]
    sia = ADM_MAPPING.get(event, {}).get(q, "YN")  # pysiaalarm's translation; "YN": none
    code = SIA_CODES.get(sia)
    return [PanelEvent(protocol="ADM-CID", cid=event, qualifier=q, sia=sia, sia_type=code.type if code else "",
                       zone=zone, zone_name="", partition=group)]


def _dcs_block(block: str) -> list[Item]:
    function, body = block[0], block[1:]
    if function in QUIET_BLOCKS:
        return []
    if function not in EVENT_BLOCKS:
        return [Malformed(Flaw.BAD_FORMAT, block[:80])]
    items: list[Item] = []
    area = ""
    pos = 0
    while pos < len(body):
        m = _PACKET.match(body, pos)
        if m is None or m.end() == pos:
            # What follows is not DC-03: kept as one malformed item, the events before it stand.
            items.append(Malformed(Flaw.BAD_FORMAT, body[pos:][:80]))
            break
        pos = m.end() + (1 if body.startswith("/", m.end()) else 0)
        if m["mod"]:
            if m["mod"] == "ri":
                area = m["value"]
            continue
        code, addr = m["code"], m["addr"] or ""
        known = SIA_CODES.get(code)
        if known is None:
            items.append(Malformed(Flaw.UNKNOWN_CODE, m.group(0)[:80],
                                   {"code": code, "address": addr[:16], "area": area[:8]}))
            continue
        items.append(PanelEvent(protocol="SIA-DCS", cid=None, qualifier=None, sia=code, sia_type=known.type,
                                zone=addr[:16], zone_name=(m["text"] or "").strip()[:60], partition=area[:8],
                                old=function == "O"))
    if not items:
        items.append(Malformed(Flaw.BAD_FORMAT, block[:80]))  # an event block without an event
    return items
