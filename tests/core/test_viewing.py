"""The viewing timeline (bot/policy/viewing.py): pairing, clamping, merging, and its properties."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.viewing import MERGE_GAP, Event, SignIn, Span, StreamClosed, StreamOpened, merge, timeline
from tests.policy_fixtures import T0


def at(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def test_two_viewers_three_cameras_a_re_sign_in_merged_and_ordered() -> None:
    start, end = T0, T0 + at(60)
    events: list[Event] = [
        SignIn("agent", T0 + at(2)),
        StreamOpened("s1", "agent", "hall", T0 + at(3)),
        StreamOpened("s2", "agent", "hall", T0 + at(4)),  # a second tab on the same camera
        StreamClosed("s2", T0 + at(6)),
        StreamClosed("s1", T0 + at(10)),
        SignIn("agent", T0 + at(20)),  # the phone signed in again (new session)
        StreamOpened("s3", "agent", "hall", T0 + at(10) + timedelta(seconds=5)),  # reconnect 5 s later
        StreamClosed("s3", T0 + at(12)),
        StreamOpened("s4", "agent", "fosse", T0 + at(21)),
        StreamClosed("s4", T0 + at(25)),
        SignIn("cic", T0 + at(5)),
        StreamOpened("s5", "cic", "loges", T0 + at(30)),  # never closed: cut at the end of access
    ]
    agent, cic = timeline(events, start, end)
    assert (agent.person, agent.sign_ins, agent.first_sign_in, agent.last_sign_in) == (
        "agent", 2, T0 + at(2), T0 + at(20))
    assert [(s.camera, s.start, s.end) for s in agent.spans] == [
        ("hall", T0 + at(3), T0 + at(12)), ("fosse", T0 + at(21), T0 + at(25))]
    assert agent.cameras == ("hall", "fosse") and agent.watched == at(13)
    assert (cic.person, cic.sign_ins) == ("cic", 1)
    assert [(s.camera, s.start, s.end, s.unclosed) for s in cic.spans] == [("loges", T0 + at(30), end, True)]


def test_nothing_is_dropped_and_everything_is_clamped_to_access() -> None:
    events: list[Event] = [
        StreamOpened("a", "agent", "hall", T0 - at(1)),  # clock skew: before access opened
        StreamClosed("a", T0 + at(1)),
        StreamOpened("b", "agent", "fosse", T0 + at(2)),
        StreamClosed("b", T0 + at(2)),  # a zero-second stream is still a stream opened
        StreamClosed("ghost", T0 + at(3)),  # a closing without its opening adds nothing
    ]
    (agent,) = timeline(events, T0, T0 + at(10))
    assert agent.sign_ins == 0 and agent.first_sign_in is None
    assert [(s.camera, s.start, s.end) for s in agent.spans] == [("hall", T0, T0 + at(1)),
                                                                  ("fosse", T0 + at(2), T0 + at(2))]


def test_streams_without_id_pair_in_order() -> None:
    """Records of an older registre: keyed by person and camera, opened and closed first in first out."""
    events: list[Event] = [StreamOpened("k", "agent", "hall", T0), StreamClosed("k", T0 + at(1)),
                           StreamOpened("k", "agent", "hall", T0 + at(5)), StreamClosed("k", T0 + at(6))]
    (agent,) = timeline(events, T0, T0 + at(10))
    assert [(s.start, s.end) for s in agent.spans] == [(T0, T0 + at(1)), (T0 + at(5), T0 + at(6))]


PEOPLE = ("agent", "cic", "chef")
CAMERAS = ("hall", "fosse", "loges")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], int]:
    """Sign-ins and streams at minute offsets, some closed out of window, some never closed."""
    window = draw(st.integers(0, 120))
    events: list[Event] = []
    for i in range(draw(st.integers(0, 25))):
        person, camera = draw(st.sampled_from(PEOPLE)), draw(st.sampled_from(CAMERAS))
        opened = draw(st.integers(-10, 130))
        events.append(SignIn(person, T0 + at(draw(st.integers(-10, 130)))))
        events.append(StreamOpened(f"s{i}", person, camera, T0 + at(opened)))
        if draw(st.booleans()):
            events.append(StreamClosed(f"s{i}", T0 + at(opened + draw(st.integers(0, 60)))))
    return draw(st.permutations(events)), window


@settings(max_examples=150, deadline=None)
@given(histories())
def test_timeline_properties(history: tuple[list[Event], int]) -> None:
    events, window = history
    start, end = T0, T0 + at(window)
    viewers = timeline(events, start, end)
    opened_by = {(e.person, e.camera) for e in events if isinstance(e, StreamOpened)}
    assert {(v.person, c) for v in viewers for c in v.cameras} == opened_by, "every camera opened is reported"
    assert len({v.person for v in viewers}) == len(viewers), "one entry per person"
    for v in viewers:
        assert v.watched <= end - start
        assert v.sign_ins == sum(1 for e in events if isinstance(e, SignIn) and e.person == v.person)
        for span in v.spans:
            assert span.duration >= timedelta(0) and start <= span.start <= span.end <= end
        for camera in v.cameras:
            mine = [s for s in v.spans if s.camera == camera]
            for a, b in zip(mine, mine[1:], strict=False):
                assert b.start > a.end + MERGE_GAP, "merged spans of one camera neither overlap nor touch"


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 30)), max_size=20))
def test_merge_keeps_the_union(pairs: list[tuple[int, int]]) -> None:
    spans = [Span("hall", T0 + at(s), T0 + at(s + d)) for s, d in pairs]
    merged = merge(spans, gap=timedelta(0))
    covered = {m for s, d in pairs for m in range(s, s + d)}
    assert {m for s in merged for m in range(int((s.start - T0) / at(1)), int((s.end - T0) / at(1)))} == covered
