"""The outbox under any interleaving of failures, restarts and cancellations (hypothesis, stateful).

Every live operation is delivered exactly once, in queue order within its lane; a message never
starts while a link is owed and not on the wire (the link goes first); a link arriving while a message is held on the wire (waiting for a Telegram budget
slot, say) is delivered without waiting for it; a cancelled operation is never delivered.
A restart is a new outbox on the same journal; like ``Desk.start``, the test re-queues the links
still owed (their text is never journaled).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.fanout import Fanout
from bot.outbox import Item, Lane, Post
from bot.outbox_store import Journal
from bot.policy.incident import State
from bot.rooms import Outgoing

INCIDENTS = ("A", "B", "C")


@dataclass
class FakeStore:
    """The parts of the state store the outbox uses; it outlives restarts like the file does."""

    states: dict[str, State] = field(default_factory=lambda: {i: State.ACTIVE for i in INCIDENTS})
    refs: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def get(self, incident: str) -> Any:
        return SimpleNamespace(state=self.states[incident]) if incident in self.states else None

    def get_ref(self, incident: str, room: str, key: str) -> str | None:
        return self.refs.get((incident, room, key))

    def set_ref(self, incident: str, room: str, key: str, ref: str) -> None:
        self.refs[(incident, room, key)] = ref

    def live_refs(self, incident: str, room: str) -> dict[str, str]:
        return {k: r for (i, rm, k), r in self.refs.items() if (i, rm) == (incident, room)}

    def drop_ref(self, incident: str, room: str, key: str) -> None:
        self.refs.pop((incident, room, key), None)


@dataclass(frozen=True)
class Owed:
    label: str
    lane: Lane
    seq: int
    incident: str | None
    closing: bool


class FlakyRoom:
    room_id = "room"
    lang = "fr"

    def __init__(self, machine: OutboxMachine) -> None:
        self.machine = machine
        self.down = False
        self.fail_next = 0
        self.n = 0
        self.hold = False  # the next message (not a link) waits on the wire until released
        self.holding: str | None = None
        self.release = asyncio.Event()

    async def _send(self, label: str) -> str:
        if self.hold and not self.machine.is_link(label):
            self.hold, self.holding = False, label
            self.release.clear()
            try:
                await self.release.wait()
            finally:
                self.holding = None
        return self._deliver(label)

    def _deliver(self, label: str) -> str:
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            raise ConnectionError("room down")
        self.machine.delivered(label)
        self.n += 1
        return f"ref{self.n}"

    async def send_text(self, msg: Outgoing) -> str:
        return await self._send(msg.text)

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str:
        return await self._send(msg.text)

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        raise AssertionError("no edits in this model")

    async def send_tile(self, jpeg: bytes, caption: str) -> str:
        raise AssertionError("no tiles in this model")

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        raise AssertionError("no tiles in this model")

    async def remove(self, ref: str) -> None:
        raise AssertionError("no removals in this model")


class Picks(dict[bool, Item]):
    """The outbox's record of what each worker has on the wire, watched as each operation is picked."""

    def __init__(self, machine: OutboxMachine) -> None:
        super().__init__()
        self.machine = machine

    def __setitem__(self, link: bool, item: Item) -> None:
        self.machine.picked(item, {i.msg.text for i in self.values() if i.msg is not None})
        super().__setitem__(link, item)


def clock() -> datetime:
    return datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-prop-"))
        self.loop = asyncio.new_event_loop()
        self.journal = Journal(self.dir / "state.sqlite3")
        self.store = FakeStore()
        self.room = FlakyRoom(self)
        self.owed: dict[str, Owed] = {}
        self.cancelled: set[str] = set()
        self.done: list[str] = []
        self.violations: list[str] = []
        self.maybe: set[str] = set()  # cancelled while on the wire
        self.seq = 0
        self.queued_links: set[str] = set()  # links queued since the last (re)start: the others are not known yet
        self.fanout = self._fanout()

    def _fanout(self) -> Fanout:
        fanout = Fanout([self.room], self.store, lambda *_: None, clock, journal=self.journal,  # type: ignore[list-item, arg-type]
                        base_delay=0.0005, max_delay=0.002)
        fanout.outboxes[0]._busy = Picks(self)
        self.loop.run_until_complete(self._start(fanout))
        return fanout

    @staticmethod
    async def _start(fanout: Fanout) -> None:
        fanout.start()

    def delivered(self, label: str) -> None:
        # Noted, not raised: the outbox would take an exception for a failed delivery and retry.
        self.done.append(label)
        if label in self.maybe:
            self.maybe.discard(label)  # cancelled while on the wire: it may complete, once
        elif label in self.cancelled:
            self.violations.append(f"cancelled {label} delivered")
        elif label not in self.owed:
            self.violations.append(f"{label} delivered twice")
        else:
            me = self.owed[label]
            first = min((o for o in self.owed.values() if o.lane is me.lane), key=lambda o: o.seq)
            if first.label != label:
                self.violations.append(f"{label} delivered before {first.label} of its lane")
            del self.owed[label]

    def picked(self, item: Item, wire: set[str]) -> None:
        """A message may leave while a link is on the wire (the link has its own worker), never before it."""
        label = item.msg.text if item.msg is not None else ""
        if item.lane is Lane.LINK or label not in self.owed:
            return
        waiting = [o.label for o in self.owed.values()
                   if o.lane is Lane.LINK and o.label in self.queued_links and o.label not in wire]
        if waiting:
            self.violations.append(f"{label} picked while the link {waiting[0]} waits")

    def is_link(self, label: str) -> bool:
        owed = self.owed.get(label)
        return owed is not None and owed.lane is Lane.LINK

    def _wire(self) -> set[str]:
        return {i.msg.text for i in self.fanout.outboxes[0]._busy.values() if i.msg is not None}

    def _queue(self, owed: Owed) -> None:
        if owed.lane is Lane.LINK:
            self.queued_links.add(owed.label)
        key = "link" if owed.lane is Lane.LINK else owed.label
        self.fanout.put(Post(owed.incident, key, lambda _lang: Outgoing(owed.label, owed.label), closing=owed.closing))

    def _open(self, incident: str | None) -> bool:
        return incident is None or self.store.states[incident] is State.ACTIVE

    @rule(incident=st.sampled_from((None, *INCIDENTS)), link=st.booleans(), closing=st.booleans())
    def put(self, incident: str | None, link: bool, closing: bool) -> None:
        if link and (incident is None or closing):
            return  # a link belongs to an incident and is never a closing step
        if not closing and not self._open(incident):
            return  # the desk queues nothing but closing steps for an ended incident
        self.seq += 1
        owed = Owed(f"op{self.seq}", Lane.LINK if link else Lane.MESSAGE, self.seq, incident, closing)
        self.owed[owed.label] = owed
        self._queue(owed)

    @rule(down=st.booleans(), fail_next=st.integers(0, 3))
    def room_state(self, down: bool, fail_next: int) -> None:
        self.room.down, self.room.fail_next = down, fail_next

    @rule(ticks=st.integers(1, 5))
    def run_a_little(self, ticks: int) -> None:
        self.loop.run_until_complete(asyncio.sleep(0.001 * ticks))

    @rule(incident=st.sampled_from(INCIDENTS))
    def end(self, incident: str) -> None:
        self.store.states[incident] = State.ENDED
        self.fanout.cancel_incident(incident)
        # What is already on the wire cannot be called back: it completes (the end's removals follow it).
        wire = self._wire()
        for o in [o for o in self.owed.values() if o.incident == incident and not o.closing]:
            del self.owed[o.label]
            (self.maybe if o.label in wire else self.cancelled).add(o.label)

    @rule()
    def hold_next_message(self) -> None:
        self.room.hold = True

    @rule()
    def release(self) -> None:
        self.room.hold = False
        self.room.release.set()

    @precondition(lambda self: self.room.holding is None and not self.room.down and not self.room.fail_next)
    @rule(incident=st.sampled_from(INCIDENTS))
    def link_passes_a_held_message(self, incident: str) -> None:
        if not self._open(incident) or any(o.lane is Lane.LINK for o in self.owed.values()):
            return  # an earlier link may still be in its backoff: this one would queue behind it
        self.room.hold = True
        self.put(None, False, False)  # the next message waits on the wire, as for a budget slot
        self._run_until(lambda: self.room.holding is not None)
        self.seq += 1
        link = Owed(f"op{self.seq}", Lane.LINK, self.seq, incident, False)
        self.owed[link.label] = link
        self._queue(link)
        self._run_until(lambda: link.label not in self.owed)
        assert self.room.holding is not None, "the link waited for the held message"

    def _run_until(self, cond: Callable[[], bool]) -> None:
        async def poll() -> None:
            while not cond():
                await asyncio.sleep(0.0005)

        self.loop.run_until_complete(asyncio.wait_for(poll(), 5))

    @rule()
    def restart(self) -> None:
        self.release()
        self.loop.run_until_complete(self.fanout.stop())
        self.queued_links.clear()
        self.fanout = self._fanout()
        # Desk.start: the links still owed to an open incident are posted again (they were in memory only).
        for o in sorted(self.owed.values(), key=lambda o: o.seq):
            if o.lane is Lane.LINK:
                self._queue(o)

    @precondition(lambda self: not self.room.down)
    @rule()
    def deliver_all(self) -> None:
        self.release()
        self.loop.run_until_complete(self.fanout.drain(timeout=10))
        assert self.owed == {}, f"still owed after drain: {sorted(self.owed)}"

    @invariant()
    def exactly_once_in_order_never_cancelled(self) -> None:
        assert self.violations == []
        assert len(self.done) == len(set(self.done))

    def teardown(self) -> None:
        self.release()
        self.room.down, self.room.fail_next = False, 0
        self.loop.run_until_complete(self.fanout.drain(timeout=10))
        assert self.owed == {}, f"never delivered: {sorted(self.owed)}"
        self.loop.run_until_complete(self.fanout.stop())
        self.journal.close()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


OutboxMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestOutboxProperties = OutboxMachine.TestCase
