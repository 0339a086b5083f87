"""Two venues' Vigie in one encrypted police room (real Synapse): commands must name the venue.

Two instances (the Zénith and the stadium: two data directories, two configs) share the CIC's
encrypted room and have a room of their own each. The Zénith declares the room shared with the
stadium; the stadium declares nothing and finds the Zénith's Vigie from its member state. A venue-less /alerte opens nothing and gets
one answer (from ``stade``, the lowest code); /alerte zenith opens the Zénith only (its own room
gets the link, the stadium's does not); /statut gets one line per venue; /fin as a reply to a
venue's message ends that venue's access only; the registre records the venue on every record and
the closure report names it; with the stadium's Vigie stopped (still a member), the Zénith's
answers a venue-less command after its turn. The world is shared by the module's tests, which run in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from matrix_clients import MxClient
from nio import RoomMessageNotice
from synapse_server import Synapse, User
from test_matrix_room import ENDED, LINK
from vigie_bot import (
    OFFICER,
    Bot,
    create_room,
    is_notice,
    is_reply_to,
    new_officer,
    officer_ready,
    say,
    settings_for,
)

from bot.kinds import Kind
from bot.settings import MatrixCfg, ServiceCfg, Settings, SharedRoomCfg

pytestmark = pytest.mark.asyncio(loop_scope="module")
QUIET = 3.0  # after the expected answers, how long the room must stay silent (no duplicate, no other venue)


@dataclass
class Venues:
    officer: MxClient
    police: str
    rooms: dict[str, str]  # venue code → its own room
    users: dict[str, User]
    bots: dict[str, Bot]


def venue_settings(base: Settings, code: str, police: str, others: dict[str, str]) -> Settings:
    vigie = base.vigie
    service: ServiceCfg = vigie.service.model_copy(update={"venue_code": code})
    shared = (SharedRoomCfg(room=police, venues=others),) if others else ()
    matrix: MatrixCfg = vigie.matrix.model_copy(update={"shared": shared})
    return base.model_copy(update={"vigie": vigie.model_copy(update={"service": service, "matrix": matrix})})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def venues(synapse: Synapse, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Venues]:
    tmp = tmp_path_factory.mktemp("venues")
    users = {code: synapse.register(synapse.unique_localpart(f"vigie-{code}")) for code in ("zenith", "stade")}
    officer_user, officer = await new_officer(synapse, tmp / "officer-store", "CICPHONE")
    police = await create_room(officer, [u.user_id for u in users.values()], encrypted=True)
    rooms = {code: await create_room(officer, [u.user_id], encrypted=False) for code, u in users.items()}
    bots: dict[str, Bot] = {}
    try:
        for code, user in users.items():
            others = {c: u.user_id for c, u in users.items() if c != code and code == "zenith"}
            base = settings_for(synapse, user, [police, rooms[code]], {OFFICER: officer_user.user_id})
            bots[code] = await Bot(venue_settings(base, code, police, others), tmp / f"data-{code}").start()
        for code, user in users.items():
            await officer_ready(officer, police, user.user_id)
            await officer_ready(officer, rooms[code], user.user_id, encrypted=False)
        for _ in range(200):  # the stadium finds the Zénith's Vigie (and both see each other joined)
            if all(b.conn.venues(police).answerer() == "stade" for b in bots.values()):
                break
            await asyncio.sleep(0.1)
        assert [b.conn.venues(police).venues() for b in bots.values()] == [("stade", "zenith")] * 2
        assert not bots["zenith"].conn.venues(rooms["zenith"]).shared
        yield Venues(officer, police, rooms, users, bots)
    finally:
        for bot in bots.values():
            await bot.stop()
        await officer.close()


def notices(v: Venues, since: int, room: str | None = None) -> list[tuple[str, RoomMessageNotice]]:
    return [(r, e) for r, e in v.officer.events[since:] if isinstance(e, RoomMessageNotice)
            and (room is None or r == room)]


async def quiet(v: Venues) -> None:
    """Let any answer that should not come arrive (the officer syncs meanwhile)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + QUIET
    while loop.time() < end:
        await v.officer.sync_once(timeout_ms=300)


def venue_of(v: Venues, event: Any) -> str:
    return next(code for code, u in v.users.items() if u.user_id == event.sender)


async def test_a_venue_less_alert_opens_nothing_and_gets_one_answer(venues: Venues) -> None:
    v = venues
    mark = len(v.officer.events)
    sent = await say(v.officer, v.police, "/alerte attaque_armee Hall A")
    answer = await v.officer.wait_for(is_reply_to(v.police, sent), since=mark, timeout=20)
    await quiet(v)
    replies = [e for r, e in notices(v, mark, v.police) if is_reply_to(v.police, sent)(r, e)]
    assert replies == [answer] and venue_of(v, answer) == "stade"  # the lowest code answers
    assert "/alerte zenith attaque_armee Hall A" in answer.body and "/alerte stade attaque_armee Hall A" in answer.body
    assert not any(LINK in e.body for _, e in notices(v, mark))
    assert all(b.desk.open_incidents() == [] for b in v.bots.values())
    [refusal] = [r for r in v.bots["stade"].records(Kind.REFUSAL) if r.details.get("reason") == "venue_not_named"]
    assert refusal.actor == OFFICER and refusal.details["venues"] == ["stade", "zenith"] and refusal.venue == "stade"
    assert not [r for r in v.bots["zenith"].records(Kind.REFUSAL) if r.details.get("reason") == "venue_not_named"]


async def test_naming_the_venue_opens_that_venue_only(venues: Venues) -> None:
    v = venues
    mark = len(v.officer.events)
    sent = await say(v.officer, v.police, "/alerte zenith attaque_armee Hall A")
    zenith = v.users["zenith"].user_id
    link = await v.officer.wait_for(is_notice(v.police, LINK, zenith), since=mark, timeout=20)
    assert link.body.startswith("[zenith] ")
    await v.officer.wait_for(is_notice(v.rooms["zenith"], LINK, zenith), since=mark, timeout=20)
    await v.officer.wait_for(is_reply_to(v.police, sent), since=mark, timeout=20)
    await quiet(v)
    assert {venue_of(v, e) for _, e in notices(v, mark)} == {"zenith"}  # the stadium said nothing
    assert not notices(v, mark, v.rooms["stade"])
    [inc] = v.bots["zenith"].desk.open_incidents()
    assert v.bots["stade"].desk.open_incidents() == []
    [trigger] = v.bots["zenith"].records(Kind.TRIGGER)
    assert trigger.venue == "zenith" and trigger.details["details"] == "Hall A"
    assert all(r.venue == "zenith" for r in v.bots["zenith"].records()) and inc.id


async def test_status_without_a_venue_is_one_line_per_venue(venues: Venues) -> None:
    v = venues
    mark = len(v.officer.events)
    sent = await say(v.officer, v.police, "/statut")
    for user in v.users.values():
        await v.officer.wait_for(lambda r, e, u=user.user_id: is_reply_to(v.police, sent)(r, e) and e.sender == u,
                                 since=mark, timeout=20)
    await quiet(v)
    replies = [e for r, e in notices(v, mark) if is_reply_to(v.police, sent)(r, e)]
    assert sorted(venue_of(v, e) for e in replies) == ["stade", "zenith"]
    assert all("\n" not in e.body for e in replies)
    [inc] = v.bots["zenith"].desk.open_incidents()
    by_venue = {venue_of(v, e): e.body for e in replies}
    assert inc.id in by_venue["zenith"] and by_venue["zenith"].startswith("[zenith] ")
    assert "personne ne regarde" in by_venue["zenith"]  # an open access: how many watch it, even nobody
    assert inc.id not in by_venue["stade"]
    mark = len(v.officer.events)
    declared = await say(v.officer, v.police, "/catastrophe")  # venue-less: like /alerte, nothing acts
    answer = await v.officer.wait_for(is_reply_to(v.police, declared), since=mark, timeout=20)
    await quiet(v)
    assert venue_of(v, answer) == "stade" and "/catastrophe zenith" in answer.body
    assert not v.bots["zenith"].records(Kind.CATASTROPHE_DECLARED)


async def test_end_by_reply_ends_the_venue_replied_to(venues: Venues) -> None:
    v = venues
    mark = len(v.officer.events)
    opened = await say(v.officer, v.police, "/alerte stade attaque_armee Tribune nord")
    await v.officer.wait_for(is_notice(v.police, LINK, v.users["stade"].user_id), since=mark, timeout=20)
    await v.officer.wait_for(is_reply_to(v.police, opened), since=mark, timeout=20)
    zenith_link = next(e for r, e in reversed(v.officer.events) if is_notice(v.police, LINK, v.users["zenith"].user_id)(
        r, e))
    [zenith_inc] = v.bots["zenith"].desk.open_incidents()
    mark = len(v.officer.events)
    sent = await say(v.officer, v.police, "/fin", reply_to=zenith_link.event_id)
    closure = await v.officer.wait_for(is_notice(v.police, ENDED, v.users["zenith"].user_id), since=mark, timeout=20)
    await v.officer.wait_for(is_reply_to(v.police, sent), since=mark, timeout=20)
    await quiet(v)
    assert "Site : Salle de démonstration Vigie (zenith)" in closure.body and zenith_inc.id in closure.body
    assert v.bots["zenith"].desk.open_incidents() == []
    assert len(v.bots["stade"].desk.open_incidents()) == 1  # the stadium's access is untouched
    said = [(venue_of(v, e), e.body[:60]) for _, e in notices(v, mark, v.police)]
    assert {venue for venue, _ in said} == {"zenith"}, said
    mark = len(v.officer.events)
    await say(v.officer, v.police, "/fin stade")
    await v.officer.wait_for(is_notice(v.police, ENDED, v.users["stade"].user_id), since=mark, timeout=20)
    assert v.bots["stade"].desk.open_incidents() == []
    assert [r.venue for r in v.bots["stade"].records(Kind.END)] == ["stade"]


async def test_a_stopped_answerer_leaves_the_answer_to_the_next_venue(venues: Venues) -> None:
    v = venues
    await v.bots["stade"].stop()  # its account is still a member of the room
    mark = len(v.officer.events)
    sent = await say(v.officer, v.police, "/fin")
    answer = await v.officer.wait_for(is_reply_to(v.police, sent), since=mark, timeout=40)
    assert venue_of(v, answer) == "zenith" and "/fin stade" in answer.body and "stade" in answer.body.splitlines()[-1]
    await quiet(v)
    assert [e for r, e in notices(v, mark) if is_reply_to(v.police, sent)(r, e)] == [answer]


async def test_data_directories_are_apart(venues: Venues) -> None:
    paths = {b.data_dir for b in venues.bots.values()}
    assert len(paths) == 2 and all(Path(p, "registre.sqlite3").exists() for p in paths)
