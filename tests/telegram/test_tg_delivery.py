"""Delivery to a Telegram group: protected messages, the link before everything, flood control,
and the commands typed while Vigie was stopped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.kinds import Kind
from bot.telegram.budget import BudgetClock, BudgetRules
from bot.telegram.transport import TelegramOptions
from tests.fakes import FakeTelegram
from tests.telegram.conftest import Start
from tests.telegram.support import (
    AGENT,
    CHIEF,
    CIC,
    GROUP,
    STRANGER,
    bot_messages,
    caption,
    find,
    jpeg,
    opens,
    reply_to,
    say,
    until,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
ROOM = f"telegram:{GROUP}"


async def test_everything_the_bot_posts_is_protected(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    for user, text in ((CIC, "/statut"), (AGENT, "/aide"), (CHIEF, "/envoyer"), (CHIEF, "/alerte"),
                       (STRANGER, "/alerte attaque_armee"), (CHIEF, "/prolonger 30")):
        await say(fake, GROUP, user, text)
    await say(fake, CHIEF, CHIEF, "bonjour")  # a private chat
    await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Hall A")
    [inc] = v.desk.open_incidents()
    v.desk.post_tile(inc.id, jpeg(), caption)
    await say(fake, GROUP, CIC, "/prolonger 30")
    await say(fake, GROUP, CHIEF, "/fin")
    await v.settle()
    sent = fake.calls_of("sendMessage") + fake.calls_of("sendPhoto")
    assert len(sent) >= 12 and all(c["protect_content"] is True for c in sent)
    assert all(m.protect_content for m in bot_messages(fake, GROUP) + bot_messages(fake, CHIEF))


async def test_api_url_from_the_settings(fake: FakeTelegram, vigie: Start) -> None:
    # No override in the options: the Bot API's address is the telegram.api_url setting.
    await vigie(api_url=fake.url, options=TelegramOptions(poll_timeout=2))
    assert "Aucun incident ouvert" in ((await say(fake, GROUP, CIC, "/statut")).text or "")


async def test_one_429_on_the_link_then_it_is_delivered_once(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    fake.flood("sendMessage", 1, retry_after=1)
    await v.desk.alert(v.person(CHIEF), ROOM, "attaque_armee", "Hall A")
    await v.settle()
    assert len(find(fake, GROUP, "ACCÈS VIDÉO OUVERT")) == 1
    assert [e[:2] for e in fake.errors] == [("sendMessage", 429)]
    assert len(fake.calls_of("sendMessage")) == 2  # the refused one, then the one after retry_after
    assert not any(r.kind == "room_error" for r in v.registre.records())


async def test_the_link_overtakes_replies_when_the_group_budget_is_low(fake: FakeTelegram, vigie: Start) -> None:
    fake.rate_limits = True  # 20 sends/edits per group per minute, as Telegram
    v = await vigie(options=TelegramOptions(api_url=fake.url, poll_timeout=2, budget_clock=BudgetClock(now=fake.now)))
    asked = [fake.user_sends(GROUP, CIC, "/statut")["message_id"] for _ in range(20)]
    # 17 answers leave, the last 3 wait: of the group's minute, 2 slots are the link's and one more
    # is kept for the room's own messages (the closure report, a confirmation request)
    await until(lambda: len(bot_messages(fake, GROUP)) == 17, message="17 replies")
    link = await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Hall A")
    assert [e for e in fake.errors if e[1] == 429] == []
    assert link.message_id > max(m.message_id for m in bot_messages(fake, GROUP) if m is not link)
    assert len(bot_messages(fake, GROUP)) == 18 and len({m.reply_to for m in bot_messages(fake, GROUP)}) == 18
    [inc] = v.desk.open_incidents()
    # the tile does not fit in the minute: skipped, and nothing waits in the room's outbox for it
    v.desk.post_tile(inc.id, jpeg(), caption)
    await v.settle()
    assert not [m for m in bot_messages(fake, GROUP) if m.photo]
    assert v.store.get_ref(inc.id, ROOM, "tile") == f"{GROUP}:0"
    assert asked[-1] not in {m.reply_to for m in bot_messages(fake, GROUP)}
    fake.advance(61)  # a minute later the waiting replies leave, then the next frame posts the tile
    await reply_to(fake, GROUP, asked[-1])
    v.desk.post_tile(inc.id, jpeg(), caption)
    await v.settle()
    [tile] = [m for m in bot_messages(fake, GROUP) if m.photo]
    assert v.store.get_ref(inc.id, ROOM, "tile") == f"{GROUP}:{tile.message_id}"


async def test_commands_typed_while_vigie_was_stopped(fake: FakeTelegram, vigie: Start) -> None:
    options = TelegramOptions(api_url=fake.url, poll_timeout=2,
                              wall_clock=lambda: datetime.fromtimestamp(fake.now(), UTC))
    first = await vigie(options=options)
    link = await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Hall A")
    [inc] = first.desk.open_incidents()
    await first.settle()
    await first.stop()

    end = fake.user_sends(GROUP, CIC, "/fin")
    alert = fake.user_sends(GROUP, CHIEF, "/alerte alerte_bombe Parvis")
    fake.advance(300)  # Vigie comes back 5 minutes later
    second = await vigie(options=options)
    resend = await reply_to(fake, GROUP, alert["message_id"])
    assert "n'a PAS été appliquée" in (resend.text or "") and "/alerte" in (resend.text or "")
    ended = await reply_to(fake, GROUP, end["message_id"])
    assert f"Accès {inc.id} terminé" in (ended.text or "")
    await second.settle()
    assert second.desk.open_incidents() == []
    assert link.message_id in {m.message_id for m in fake.deleted(GROUP)}
    late = [(r.actor, r.details["command"], r.details["applied"]) for r in second.registre.records()
            if r.kind == Kind.LATE_COMMAND]
    assert late == [("demo-cic", "end", True), ("demo-chef", "alert", False)]


async def test_a_reply_that_cannot_be_sent_is_in_the_registre(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie(options=TelegramOptions(api_url=fake.url, poll_timeout=2,
                                            budget=BudgetRules(flood_retries=1)))
    fake.flood("sendMessage", 2, retry_after=1)  # more 429s than the budget waits out
    fake.user_sends(GROUP, CIC, "/statut")
    await until(lambda: any(r.kind == "room_error" for r in v.registre.records()), message="the report")
    [error] = [r for r in v.registre.records() if r.kind == "room_error"]
    assert error.details["operation"] == "reply" and "Flood control" in error.details["error"]
    assert error.details["room"] == ROOM and "Aucun incident" in error.details["text"]


async def test_a_link_deleted_by_hand_is_posted_afresh_at_its_reissue(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    link = await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Hall A")
    [inc] = v.desk.open_incidents()
    link.deleted = True  # a group admin deleted it: Telegram now answers "message to edit not found"
    await v.desk._relink(inc.id)  # the periodic re-issue
    await v.settle()
    [fresh] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    assert fresh.message_id > link.message_id and fresh.protect_content
    assert v.store.get_ref(inc.id, ROOM, "link") == f"{GROUP}:{fresh.message_id}"
    [error] = [r for r in v.registre.records() if r.kind == Kind.ROOM_ERROR]
    assert "message to edit not found" in error.details["error"].lower() and error.details["for_good"]
    assert error.incident == inc.id and error.details["operation"] == "edit:link"
    await v.desk._relink(inc.id)  # the next re-issue edits the new message in place
    await v.settle()
    assert [m.message_id for m in find(fake, GROUP, "ACCÈS VIDÉO OUVERT")] == [fresh.message_id]
    assert len([r for r in v.registre.records() if r.kind == Kind.ROOM_ERROR]) == 1


async def test_the_link_never_waits_behind_a_message_waiting_for_a_budget_slot(fake: FakeTelegram,
                                                                                vigie: Start) -> None:
    fake.rate_limits = True
    v = await vigie(options=TelegramOptions(api_url=fake.url, poll_timeout=2, budget_clock=BudgetClock(now=fake.now)))
    for _ in range(20):
        fake.user_sends(GROUP, CIC, "/statut")
    await until(lambda: len(bot_messages(fake, GROUP)) == 17, message="17 replies")
    v.desk.announce(Kind.PANEL_SILENT, lambda _: "Centrale A muette.")
    await until(lambda: bool(find(fake, GROUP, "Centrale A")), message="the 18th message of the minute")
    # The room's own messages may use 18 of the 20: this one waits for a slot, on its room's wire.
    v.desk.announce(Kind.PANEL_SILENT, lambda _: "Centrale B muette.")
    link = await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Hall A")
    assert not find(fake, GROUP, "Centrale B") and [e for e in fake.errors if e[1] == 429] == []
    fake.advance(61)  # a minute later the waiting message leaves too, after the link
    await until(lambda: bool(find(fake, GROUP, "Centrale B")), message="the waiting message")
    assert find(fake, GROUP, "Centrale B")[0].message_id > link.message_id
