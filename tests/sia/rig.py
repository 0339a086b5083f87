"""A real DC-09 receiver on 127.0.0.1 (free port, TCP and UDP) in front of a harness desk."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from bot.audit import AuditRecord
from bot.policy.convention import ConfirmRule, Convention
from bot.sia.codes import panel_sources
from bot.sia.receiver import PanelAccount, ReceiverConfig, SiaReceiver
from bot.sia.sender import Link, Panel
from tests.harness import Harness
from tests.policy_fixtures import convention

KEY_B = "Zq3xW8pL2mN7vR4t"  # 16 characters: AES-128, as a panel's installer would type it

PLAIN = PanelAccount(
    name="centrale-a", label="Centrale du hall", account="A1B2", key=None,
    types={"hold_up": "attaque_armee", "burglary": "intrusion_armee"}, heartbeat=timedelta(seconds=60),
)
CRYPT = PanelAccount(
    name="centrale-b", label="Centrale des loges", account="C3D4E5", key=KEY_B.encode("ascii"),
    types={"hold_up": "attaque_armee"}, heartbeat=None,
)
MARGIN = timedelta(seconds=30)


def panel_convention(panels: tuple[PanelAccount, ...] = (PLAIN, CRYPT)) -> Convention:
    base = convention()
    extra = tuple(src for p in panels
                  for src in panel_sources(p.name, p.label, p.types, ConfirmRule.NONE, ConfirmRule.ANY))
    return replace(base, alarm_sources=base.alarm_sources + extra)


@dataclass
class Rig:
    h: Harness
    rx: SiaReceiver

    @property
    def port(self) -> int:
        return self.rx.port

    def panel_a(self) -> Panel:
        return Panel(PLAIN.account)

    def panel_b(self) -> Panel:
        return Panel(CRYPT.account, key=KEY_B)

    async def link(self) -> Link:
        return await Link.open("127.0.0.1", self.port)

    def records(self, kind: str) -> list[AuditRecord]:
        return [r for r in self.h.registre.records() if r.kind == kind]

    async def texts(self) -> list[str]:
        await self.h.fanout.drain()
        return self.h.rooms[0].texts()


async def start_rig(tmp_path: Path, udp: bool = True) -> Rig:
    h = await Harness(tmp_path, conv=panel_convention()).start()
    rx = SiaReceiver(ReceiverConfig("127.0.0.1", 0, udp, MARGIN, (PLAIN, CRYPT)), h.desk, h.clock, h.scheduler)
    await rx.start()
    return Rig(h, rx)


async def stop_rig(rig: Rig) -> None:
    await rig.rx.stop()
    await rig.h.stop()
