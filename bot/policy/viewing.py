"""Who watched what, and when: one incident's viewing timeline, built from what the server saw.

Pure. In: the incident's sign-ins and the camera streams opened and closed (each stream named
by a key that pairs its opening with its closing), and the access window. Out, per person: the
sign-ins (count, first, last) and, per camera, the spans it was open, clamped to the access
window and merged, so that the same camera opened in three tabs, or re-opened a few seconds
after a dropped connection or a new sign-in, reads as one span.

A stream opened and never closed (the service stopped without recording it) is taken as open
until the end of the window: the end of access, or now while access is open. Nothing is
dropped: a stream opened and closed in the same instant is a span of zero seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Two spans of one camera separated by less than this are one viewing: the page reconnects at
# once after a network blip, a quality change or a new sign-in.
MERGE_GAP = timedelta(seconds=10)


@dataclass(frozen=True)
class SignIn:
    person: str
    at: datetime


@dataclass(frozen=True)
class StreamOpened:
    stream: str  # pairs this opening with its closing
    person: str
    camera: str
    at: datetime


@dataclass(frozen=True)
class StreamClosed:
    stream: str
    at: datetime


Event = SignIn | StreamOpened | StreamClosed


@dataclass(frozen=True)
class Span:
    """One camera watched by one person from ``start`` to ``end`` (merged)."""

    camera: str
    start: datetime
    end: datetime
    unclosed: bool = False  # no closing seen: ended at the end of the window

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Viewer:
    """One person's viewing of one incident."""

    person: str
    sign_ins: int
    first_sign_in: datetime | None
    last_sign_in: datetime | None
    spans: tuple[Span, ...]  # by start, then camera

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras opened, in the order first opened."""
        return tuple(dict.fromkeys(s.camera for s in self.spans))

    @property
    def watched(self) -> timedelta:
        """Time with at least one camera open (two cameras at once count once)."""
        return union_length([(s.start, s.end) for s in self.spans])

    @property
    def first_seen(self) -> datetime | None:
        times = [t for t in (self.first_sign_in, self.spans[0].start if self.spans else None) if t is not None]
        return min(times) if times else None


def union_length(intervals: Iterable[tuple[datetime, datetime]]) -> timedelta:
    total = timedelta(0)
    end: datetime | None = None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def merge(spans: Iterable[Span], gap: timedelta = MERGE_GAP) -> list[Span]:
    """Spans of one camera merged when they overlap or follow within ``gap``."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        last = out[-1] if out else None
        if last is not None and span.start <= last.end + gap:
            if span.end > last.end:
                out[-1] = Span(last.camera, last.start, span.end, span.unclosed)
            continue
        out.append(span)
    return out


def timeline(events: Iterable[Event], start: datetime, end: datetime,
             gap: timedelta = MERGE_GAP) -> tuple[Viewer, ...]:
    """The viewers of one access window [start, end], in the order they first appeared."""
    end = max(start, end)
    sign_ins: dict[str, list[datetime]] = {}
    waiting: dict[str, list[StreamOpened]] = {}  # streams opened, not yet closed, by key
    raw: dict[tuple[str, str], list[Span]] = {}

    def clamp(at: datetime) -> datetime:
        return min(max(at, start), end)

    def add(opened: StreamOpened, closed_at: datetime, unclosed: bool = False) -> None:
        s = clamp(opened.at)
        e = max(s, clamp(closed_at))
        raw.setdefault((opened.person, opened.camera), []).append(Span(opened.camera, s, e, unclosed))

    for ev in sorted(events, key=lambda e: e.at):
        if isinstance(ev, SignIn):
            sign_ins.setdefault(ev.person, []).append(ev.at)
        elif isinstance(ev, StreamOpened):
            waiting.setdefault(ev.stream, []).append(ev)
        elif waiting.get(ev.stream):
            add(waiting[ev.stream].pop(0), ev.at)
        # a closing without its opening (a record kept from an older registre) adds nothing
    for opened in (o for pending in waiting.values() for o in pending):
        add(opened, end, unclosed=True)

    people = list(dict.fromkeys([*sign_ins, *(p for p, _ in raw)]))
    viewers = []
    for person in people:
        mine = [s for (p, _), spans in raw.items() if p == person for s in merge(spans, gap)]
        times = sign_ins.get(person, [])
        viewers.append(Viewer(person, len(times), min(times, default=None), max(times, default=None),
                              tuple(sorted(mine, key=lambda s: (s.start, s.camera)))))
    viewers.sort(key=lambda v: (v.first_seen or end, v.person))
    return tuple(viewers)
