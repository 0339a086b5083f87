"""A police room shared with other venues, without a server: declared and found venues, the view the
pure core gets, whose message a reply answers, and the mark put on our own membership."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.matrix.venues import VENUE_KEY, Sharing, mark_rooms
from bot.settings import MatrixCfg, SharedRoomCfg

POLICE, OWN_ROOM = "!cic", "!zenith"
ME, STADE, ARENA = "@vigie-zenith:x", "@vigie-stade:x", "@vigie-arena:x"
CFG = MatrixCfg(enabled=True, user_id=ME, rooms=(POLICE, OWN_ROOM),
                shared=(SharedRoomCfg(room=POLICE, venues={"stade": STADE}),))


def sharing(members: set[str], senders: dict[str, str | None] | None = None) -> Sharing:
    async def sender_of(room: str, event: str) -> str | None:
        if event == "$boom":
            raise TimeoutError
        return (senders or {}).get(event)

    return Sharing("zenith", CFG, lambda room: members, sender_of)


def test_declared_venue_present_or_not() -> None:
    assert sharing({ME, STADE}).view(POLICE).answerer() == "stade"
    absent = sharing({ME}).view(POLICE)
    assert absent.shared and absent.answerer() == "zenith"  # a stopped neighbour does not silence the room
    assert not sharing({ME, STADE}).view(OWN_ROOM).shared


def test_a_venue_found_from_member_state_until_it_leaves() -> None:
    s = sharing({ME, ARENA})
    s.member(OWN_ROOM, ARENA, "join", {"membership": "join", VENUE_KEY: "arena"})
    assert s.view(OWN_ROOM).venues() == ("arena", "zenith") and s.view(OWN_ROOM).answerer() == "arena"
    assert s.is_venue_bot(OWN_ROOM, ARENA) and not s.is_venue_bot(POLICE, ARENA)
    s.member(OWN_ROOM, ME, "join", {VENUE_KEY: "zenith"})  # our own mark is not another venue
    s.member(OWN_ROOM, "@someone:x", "join", {VENUE_KEY: "zenith"})  # nor someone claiming our code
    assert s.view(OWN_ROOM).venues() == ("arena", "zenith")
    s.member(OWN_ROOM, ARENA, "leave", {"membership": "leave"})
    assert not s.view(OWN_ROOM).shared


async def test_whose_message_a_reply_answers() -> None:
    s = sharing({ME, STADE}, {"$mine": ME, "$stade": STADE, "$person": "@officer:x"})
    assert [await s.replied_venue(POLICE, e) for e in ("$mine", "$stade", "$person", "$none", "$boom")] == [
        "zenith", "stade", None, None, None]


async def test_our_membership_is_marked_once() -> None:
    puts: list[tuple[str, dict[str, Any]]] = []
    state = {POLICE: {"membership": "join", "displayname": "Vigie"}, OWN_ROOM: {"membership": "join", VENUE_KEY: "zenith"}}

    class Client:
        async def room_get_state_event(self, room: str, kind: str, key: str) -> Any:
            assert kind == "m.room.member" and key == ME
            return SimpleNamespace(content=state.get(room))

        async def room_put_state(self, room: str, kind: str, content: dict[str, Any], state_key: str) -> Any:
            puts.append((room, content))
            return SimpleNamespace(event_id="$e")

    await mark_rooms(Client(), [POLICE, OWN_ROOM, "!gone"], ME, "zenith", 1.0)
    assert puts == [(POLICE, {"membership": "join", "displayname": "Vigie", VENUE_KEY: "zenith"})]
    await mark_rooms(Client(), [POLICE], ME, None, 1.0)  # no venue code: nothing to mark
    assert len(puts) == 1
