"""Every event of a DC-09 message's data: the parser, and the order of events never changing the outcome."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.policy.incident import State
from bot.sia import frame as sia_frame
from bot.sia.codes import PanelEvent
from bot.sia.events import Flaw, Malformed, read_events
from bot.sia.receiver import PanelAccount, ReceiverConfig, SiaReceiver
from bot.sia.sender import Panel, read_reply
from tests.harness import Harness
from tests.sia.rig import CRYPT, KEY_B, MARGIN, PLAIN, panel_convention


def summary(protocol: str, data: str) -> list[tuple[str, str, str] | str]:
    out: list[tuple[str, str, str] | str] = []
    for item in read_events(protocol, data):
        if isinstance(item, PanelEvent):
            out.append((item.code, item.zone, item.partition) if not item.old else ("old " + item.code, item.zone, ""))
        else:
            out.append(item.flaw)
    return out


@pytest.mark.parametrize("data,expected", [
    ("#0C1B|Nri1/BA501/PA502]", [("SIA BA", "501", "1"), ("SIA PA", "502", "1")]),
    ("#0C1B|Nri1BA501|Nri1PA502]", [("SIA BA", "501", "1"), ("SIA PA", "502", "1")]),
    ("#0C1B|NBA501PA502]", [("SIA BA", "501", ""), ("SIA PA", "502", "")]),  # no separator at all
    ("#0C1B|Nti18:30/id12/ri2/HA7^Caisse 2^/ri3/PA8]", [("SIA HA", "7", "2"), ("SIA PA", "8", "3")]),
    ("#0C1B|Nri1/PA501][X2E][Y4N]", [("SIA PA", "501", "1")]),  # extended data after the field
    ("#0C1B|Ori1/PA5|NPA6]", [("old SIA PA", "5", ""), ("SIA PA", "6", "")]),
    ("#0C1B|AHello|Nri1/PA5]", [("SIA PA", "5", "1")]),  # a text block carries no event
    ("#0C1B|Nri1/PA5/%%garbage]", [("SIA PA", "5", "1"), Flaw.BAD_FORMAT]),
    ("#0C1B|Nri1/QQ5/PA6]", [Flaw.UNKNOWN_CODE, ("SIA PA", "6", "1")]),
    ("#0C1B|Nri1]", [Flaw.BAD_FORMAT]),
    ("#0C1B|PA501]", [Flaw.BAD_FORMAT]),  # not a DC-03 event block
])
def test_sia_dcs_data(data: str, expected: list[object]) -> None:
    assert summary("SIA-DCS", data) == expected


@pytest.mark.parametrize("data,expected", [
    ("#0C1B|1120 01 005]", [("CID 1120", "005", "01")]),
    ("#0C1B|3122 02 001]", [("CID 3122", "001", "02")]),
    ("#0C1B|1130 01 004|1120 01 002]", [("CID 1130", "004", "01"), ("CID 1120", "002", "01")]),
    ("#0C1B|9122 01 001]", [Flaw.UNDEFINED_QUALIFIER]),
    ("#0C1B|11x0 01 001]", [Flaw.BAD_FORMAT]),
])
def test_contact_id_data(data: str, expected: list[object]) -> None:
    assert summary("ADM-CID", data) == expected


def test_malformed_keeps_the_raw_fields() -> None:
    [item] = read_events("ADM-CID", "#0C1B|5121 03 017]")
    assert isinstance(item, Malformed)
    assert item.details() == {"flaw": "undefined_qualifier", "raw": "5121 03 017", "qualifier": "5", "event": "121",
                              "group": "03", "zone": "017"}


def test_pad_is_16_to_31_characters() -> None:
    for n in range(200):
        pad = sia_frame.pad_length(n)
        assert 16 <= pad <= 31 and (pad + n) % 16 == 0


# A grave multi-event message: hold-ups among a burglary, restores, a test and an unknown code.
PACKETS = ("PA501", "HA502", "BA503", "BR504", "PH505", "RP0", "QQ7")
GRAVE = ("PA501", "HA502")


async def _one_message(panel: PanelAccount, packets: list[str], form: str) -> tuple[str, list[str], list[State]]:
    with tempfile.TemporaryDirectory(prefix="vigie-sia-") as d:
        h = await Harness(Path(d), conv=panel_convention()).start()
        rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, False, MARGIN, (PLAIN, CRYPT)), h.desk, h.clock, h.scheduler)
        try:
            body = "/".join(packets) if form == "slash" else "|N".join(packets)
            sender = Panel(panel.account, key=KEY_B if panel.key else None)
            _, raw = sender.message("SIA-DCS", f"#{panel.account}|Nri1/{body}]", at=h.clock())
            reply = read_reply(await rx.handle_frame(raw, "prop"), sender.key)
            outcomes = [r.details["outcome"] for r in h.registre.records() if r.kind == "sia_message"]
            return reply.kind, outcomes, [i.state for i in h.desk.open_incidents()]
        finally:
            await h.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), panel=st.sampled_from([PLAIN, CRYPT]), form=st.sampled_from(["slash", "blocks"]))
def test_any_order_of_a_grave_message_opens_exactly_one_incident(data: st.DataObject, panel: PanelAccount,
                                                                 form: str) -> None:
    chosen = data.draw(st.lists(st.sampled_from(PACKETS), min_size=1, unique=True)
                       .filter(lambda ps: any(p in GRAVE for p in ps)))
    packets = data.draw(st.permutations(chosen))
    kind, outcomes, states = asyncio.run(_one_message(panel, packets, form))
    assert kind == "ACK"
    assert states == [State.ACTIVE]  # one incident, and a hold-up opens it whatever came first
    assert len(outcomes) == len(packets) and outcomes.count("opened") == 1
    assert outcomes.count("malformed") == packets.count("QQ7")
