"""A desk wired to real parts (registre, store, access, scheduler) and recording rooms, for tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from argon2 import PasswordHasher

from bot.access import Access
from bot.audit import Registre
from bot.desk import Desk, DeskConfig
from bot.fanout import Fanout
from bot.messages import Renderer
from bot.outbox_store import Journal
from bot.policy.convention import Convention
from bot.room_failures import record_room_failure
from bot.rooms import Outgoing
from bot.store import Store
from tests.policy_fixtures import T0, convention

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class RecordingRoom:
    """A room that keeps what it was asked to do; can be told to fail."""

    room_id: str
    lang: str = "fr"
    fail: int = 0
    live: dict[str, str] = field(default_factory=dict)
    log: list[tuple[str, str, str]] = field(default_factory=list)
    n: int = 0

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("room down")

    def _new(self, kind: str, text: str) -> str:
        self._maybe_fail()
        self.n += 1
        ref = f"{self.room_id}#{self.n}"
        self.live[ref] = text
        self.log.append((kind, ref, text))
        return ref

    async def send_text(self, msg: Outgoing) -> str:
        return self._new("send", msg.text)

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        self._maybe_fail()
        if ref not in self.live:
            raise KeyError(f"edit of unknown message {ref}")
        self.live[ref] = msg.text
        self.log.append(("edit", ref, msg.text))

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str:
        assert msg.buttons, "a confirmation request carries its buttons"
        return self._new("ask", msg.text)

    async def send_tile(self, jpeg: bytes, caption: str) -> str:
        return self._new("tile", f"{caption} ({len(jpeg)} B)")

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        self._maybe_fail()
        self.live.pop(ref, None)
        self.n += 1
        new = f"{self.room_id}#{self.n}"
        self.live[new] = f"{caption} ({len(jpeg)} B)"
        self.log.append(("replace_tile", new, caption))
        return new

    async def remove(self, ref: str) -> None:
        self._maybe_fail()
        if ref not in self.live:
            raise KeyError(f"remove of unknown message {ref}")
        del self.live[ref]
        self.log.append(("remove", ref, ""))

    def texts(self) -> list[str]:
        return [t for k, _, t in self.log if k in ("send", "ask", "edit")]


class Harness:
    def __init__(self, data_dir: Path, conv: Convention | None = None, clock: Clock | None = None,
                 rooms: list[RecordingRoom] | None = None, config: DeskConfig | None = None,
                 venue: str | None = None) -> None:
        self.data_dir = data_dir
        self.conv = conv or convention()
        self.clock = clock or Clock()
        self.rooms = rooms if rooms is not None else [RecordingRoom("console"), RecordingRoom("matrix:!r", lang="en")]
        self.registre = Registre(data_dir / "registre.sqlite3", venue=venue)
        self.store = Store(data_dir / "state.sqlite3")
        self.journal = Journal(data_dir / "state.sqlite3")
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.access = Access(self.conv, ["k" * 40], self.registre, self.store, self.clock, self.store.get,
                             "https://vigie.test", hasher=FAST_HASHER)
        self.fanout = Fanout(self.rooms, self.store, record_room_failure(self.registre, self.store), self.clock,
                             journal=self.journal, base_delay=0.01, max_delay=0.05)
        self.desk = Desk(self.conv, self.store, self.registre, self.fanout, self.access, self.scheduler,
                         Renderer(self.conv, ZoneInfo("Europe/Paris"), venue), self.clock,
                         {"hall": "Hall d'entrée", "fosse": "Fosse", "loges": "Loges"},
                         config or DeskConfig(closing_retry_max=0.2))

    async def start(self) -> Harness:
        self.scheduler.start(paused=True)  # timers are driven by the test through desk.sweep()
        self.fanout.start()
        await self.desk.start()
        return self

    async def stop(self, drain: bool = True) -> None:
        if drain:
            await self.fanout.drain()
        await self.desk.stop()
        await self.fanout.stop()
        self.scheduler.shutdown(wait=False)
        self.store.close()
        self.journal.close()
        self.registre.close()

    def person(self, pid: str):  # noqa: ANN201 - test helper
        return self.conv.person(pid)

    def kinds(self, incident: str | None = None) -> list[str]:
        return [r.kind for r in self.registre.records(incident)]
