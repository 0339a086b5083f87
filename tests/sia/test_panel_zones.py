"""A panel's zone (or partition) number names a zone of the venue: the incident looks there first."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.policy.zones import Focus, Zone, ZoneMap
from bot.sia.receiver import ReceiverConfig, SiaReceiver
from bot.sia.sender import Link, Panel
from tests.harness import Harness
from tests.sia.rig import MARGIN, PLAIN, panel_convention

ZONED = dataclasses.replace(PLAIN, zones={"007": "salle"}, partitions={"02": "hall-a"})
ZONES = ZoneMap((Zone("hall-a", "Hall A", ("hall",)), Zone("salle", "Salle", ("fosse",))))


async def hold_up(tmp_path: Path, zone: int, partition: int) -> Focus:
    tmp_path.mkdir()
    h = await Harness(tmp_path, conv=dataclasses.replace(panel_convention((ZONED,)), zones=ZONES)).start()
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, False, MARGIN, (ZONED,)), h.desk, h.clock, h.scheduler)
    await rx.start()
    try:
        _, data = Panel(ZONED.account).cid(1, 122, partition=partition, zone=zone, at=h.clock())
        link = await Link.open("127.0.0.1", rx.port)
        assert (await link.send(data, None)).kind == "ACK"
        await link.close()
        [inc] = h.desk.open_incidents()
        await h.fanout.drain()
        assert any("📍 Zone" in t for t in h.rooms[0].texts())
        return inc.focus
    finally:
        await rx.stop()
        await h.stop()


async def test_panel_zone_then_partition_name_the_venue_zone(tmp_path: Path) -> None:
    assert await hold_up(tmp_path / "a", zone=7, partition=2) == Focus("salle")
    assert await hold_up(tmp_path / "b", zone=9, partition=2) == Focus("hall-a")  # zone 009 unmapped: its partition
    unmapped = await hold_up(tmp_path / "c", zone=9, partition=5)
    assert unmapped.zone is None and unmapped.text  # kept as the panel said it
