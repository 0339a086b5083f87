"""Operations a room refuses for good (``PermanentRoomError``): recorded once, never retried, never
blocking the room; a link re-issue whose message is gone posts a fresh link instead."""

from __future__ import annotations

from pathlib import Path

from bot.fanout import Fanout
from bot.outbox import Edit, Item, Post, Remove, Tile
from bot.outbox_store import Journal
from bot.rooms import Outgoing, PermanentRoomError, Room
from bot.store import Store
from tests.harness import Clock, RecordingRoom


def text(t: str) -> Outgoing:
    return Outgoing(t, t)


class RefusingRoom(RecordingRoom):
    """Refuses for good what the test names: edits of given refs, removals, tile replacements, posts."""

    def __init__(self) -> None:
        super().__init__("console")
        self.gone: set[str] = set()  # refs deleted by hand
        self.refuse_posts = 0
        self.calls: list[tuple[str, str]] = []

    async def send_text(self, msg: Outgoing) -> str:
        self.calls.append(("send", msg.text))
        if self.refuse_posts:
            self.refuse_posts -= 1
            raise PermanentRoomError("not allowed to post (yet)")
        return await super().send_text(msg)

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        self.calls.append(("edit", ref))
        if ref in self.gone:
            raise PermanentRoomError("message to edit not found")
        await super().edit_text(ref, msg)

    async def remove(self, ref: str) -> None:
        self.calls.append(("remove", ref))
        if ref in self.gone:
            raise PermanentRoomError("message can't be deleted")
        await super().remove(ref)

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        self.calls.append(("replace_tile", ref))
        if ref in self.gone:
            raise PermanentRoomError("message to edit not found")
        return await super().replace_tile(ref, jpeg, caption)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.room = RefusingRoom()
        self.store, self.journal = Store(tmp_path / "state.sqlite3"), Journal(tmp_path / "state.sqlite3")
        self.reports: list[tuple[str, str]] = []
        self.fanout = Fanout([self.room], self.store, self.report, Clock(), journal=self.journal,
                             base_delay=0.001, max_delay=0.005)

    def report(self, room: Room, item: Item, exc: BaseException) -> None:
        self.reports.append((f"{item.kind}:{item.key}", str(exc)))

    async def __aenter__(self) -> Setup:
        self.fanout.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.fanout.stop()
        self.journal.close()
        self.store.close()


async def test_a_link_reissue_whose_message_is_gone_posts_a_fresh_link(tmp_path: Path) -> None:
    async with Setup(tmp_path) as s:
        s.fanout.put(Post("INC-1", "link", lambda _: text("lien 1")))
        await s.fanout.drain(5)
        old = s.store.get_ref("INC-1", "console", "link")
        assert old is not None
        s.room.gone.add(old)
        s.fanout.put(Post(None, "notice", lambda _: text("après")))
        s.fanout.put(Edit("INC-1", "link", lambda _: text("lien 2")))
        await s.fanout.drain(5)
        new = s.store.get_ref("INC-1", "console", "link")
        assert new not in (None, old) and s.room.live[new or ""] == "lien 2"
        assert s.room.calls.count(("edit", old)) == 1  # not retried
        assert s.reports == [("edit:link", "message to edit not found")]
        assert s.fanout.health()["console"].ok and "après" in s.room.texts()
        s.fanout.put(Edit("INC-1", "link", lambda _: text("lien 3")))
        await s.fanout.drain(5)
        assert s.room.live[new or ""] == "lien 3" and len(s.reports) == 1


async def test_a_removal_refused_for_good_is_dropped_and_the_rest_goes_on(tmp_path: Path) -> None:
    async with Setup(tmp_path) as s:
        for key in ("link", "report-draft"):
            s.fanout.put(Post("INC-1", key, lambda _, k=key: text(k)))  # type: ignore[misc]
        await s.fanout.drain(5)
        link = s.store.get_ref("INC-1", "console", "link") or ""
        s.room.gone.add(link)
        s.fanout.put(Remove("INC-1", ("link", "report-draft")))
        s.fanout.put(Post("INC-1", "report", lambda _: text("rapport"), closing=True))
        await s.fanout.drain(5)
        assert s.room.calls.count(("remove", link)) == 1
        assert s.store.live_refs("INC-1", "console").keys() == {"report"}
        assert s.reports == [("remove:remove", "message can't be deleted")]
        assert "rapport" in s.room.texts() and s.journal.pending("console") == []


async def test_other_operations_refused_for_good_are_dropped_once(tmp_path: Path) -> None:
    async with Setup(tmp_path) as s:
        s.fanout.put(Post("INC-1", "confirm", lambda _: text("demande")))
        s.fanout.put(Tile("INC-1", b"jpeg", lambda _: "tuile"))
        await s.fanout.drain(5)
        confirm, tile = (s.store.get_ref("INC-1", "console", k) or "" for k in ("confirm", "tile"))
        s.room.gone |= {confirm, tile}
        s.fanout.put(Edit("INC-1", "confirm", lambda _: text("confirmé")))
        s.fanout.put(Tile("INC-1", b"jpeg2", lambda _: "tuile 2"))
        await s.fanout.drain(5)
        assert s.room.calls.count(("edit", confirm)) == 1 and s.room.calls.count(("replace_tile", tile)) == 1
        assert sorted(op for op, _ in s.reports) == ["edit:confirm", "tile:tile"]
        assert s.store.get_ref("INC-1", "console", "tile") is None  # the next frame posts a new tile
        s.fanout.put(Tile("INC-1", b"jpeg3", lambda _: "tuile 3"))
        await s.fanout.drain(5)
        assert s.store.get_ref("INC-1", "console", "tile") not in (None, tile)


async def test_the_link_post_itself_is_never_dropped(tmp_path: Path) -> None:
    async with Setup(tmp_path) as s:
        s.room.refuse_posts = 3
        s.fanout.put(Post("INC-1", "link", lambda _: text("lien")))
        await s.fanout.drain(5)
        assert s.room.calls == [("send", "lien")] * 4 and s.store.get_ref("INC-1", "console", "link")
