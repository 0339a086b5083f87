"""Only the configured groups and the roster's people are served; everything else is refused and audited."""

from __future__ import annotations

import pytest

from tests.fakes import FakeTelegram
from tests.telegram.conftest import Start
from tests.telegram.support import (
    CHIEF,
    GROUP,
    OTHER_GROUP,
    STRANGER,
    bot_messages,
    say,
    until,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


async def test_stranger_in_the_group_is_refused_and_audited(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    answer = await say(fake, GROUP, STRANGER, "/alerte attaque_armee")
    assert answer.text == "Refusé : Vous n'êtes pas sur la liste de la convention."
    assert v.desk.open_incidents() == []
    assert (f"telegram:{STRANGER}", {"reason": "unknown_person", "room": f"telegram:{GROUP}",
                                     "chat_type": "supergroup", "command": "alert"}) in v.refusals()
    # a second try within the minute is audited again but not answered again (no flood on the group's behalf)
    fake.user_sends(GROUP, STRANGER, "/fin")
    await until(lambda: len(v.refusals()) == 2)
    await say(fake, GROUP, CHIEF, "/statut")  # processed after the stranger's /fin
    assert [m.text for m in bot_messages(fake, GROUP)].count(answer.text) == 1


async def test_private_chat_off_the_roster_is_refused(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    answer = await say(fake, STRANGER, STRANGER, "/start")
    assert answer.text == "Refusé : Vous n'êtes pas sur la liste de la convention."
    chatter = fake.user_sends(STRANGER, STRANGER, "bonjour, c'est pour un concert")
    await until(lambda: len(v.refusals()) == 2)
    [(actor, details), _] = v.refusals()
    assert actor == f"telegram:{STRANGER}" and details["room"] == f"telegram:{STRANGER}"
    assert details["chat_type"] == "private" and details["command"] == "help"
    assert v.refusals()[1][1]["command"] is None
    assert all(m.reply_to != chatter["message_id"] for m in bot_messages(fake, STRANGER))  # throttled


async def test_unconfigured_group_is_refused_even_for_roster_people(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    answer = await say(fake, OTHER_GROUP, CHIEF, "/alerte attaque_armee")
    assert answer.text == "Refusé : Ce salon n'est pas prévu par la convention."
    assert v.desk.open_incidents() == []
    assert ("demo-chef", {"reason": "wrong_room", "room": f"telegram:{OTHER_GROUP}", "chat_type": "supergroup",
                          "command": "alert"}) in v.refusals()
    other = await say(fake, OTHER_GROUP, STRANGER, "/aide")
    assert other.text == answer.text and len(v.refusals()) == 2


async def test_roster_person_in_private_chat_gets_help_but_no_incident(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    help_ = await say(fake, CHIEF, CHIEF, "/aide")
    assert "/alerte <catégorie>" in (help_.text or "")
    refused = await say(fake, CHIEF, CHIEF, "/alerte attaque_armee")
    assert refused.text == "Refusé : Ce salon n'est pas prévu par la convention."
    assert v.desk.open_incidents() == []
    assert ("demo-chef", {"reason": "wrong_room", "room": f"telegram:{CHIEF}", "command": "alert"}) in v.refusals()


async def test_silent_mode_audits_without_answering(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie(strangers="silent")
    fake.user_sends(GROUP, STRANGER, "/alerte attaque_armee")
    fake.user_sends(STRANGER, STRANGER, "/start")
    fake.user_sends(OTHER_GROUP, CHIEF, "/alerte attaque_armee")
    await until(lambda: len(v.refusals()) == 3)
    sent = await say(fake, GROUP, CHIEF, "/statut")  # after the three above: they were handled, silently
    assert bot_messages(fake, GROUP) == [sent]
    assert bot_messages(fake, STRANGER) == [] and bot_messages(fake, OTHER_GROUP) == []
    assert {d["reason"] for _, d in v.refusals()} == {"unknown_person", "wrong_room"}


async def test_stranger_pressing_a_button_changes_nothing(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    question = await say(fake, GROUP, CHIEF, "/alerte")
    pressed = fake.user_presses(GROUP, STRANGER, question.message_id, "alert:attaque_armee")
    await until(lambda: pressed in fake.callback_answers)
    assert fake.callback_answers[pressed] == {"text": "Refusé : Vous n'êtes pas sur la liste de la convention.",
                                              "show_alert": True, "cache_time": 0}
    assert v.desk.open_incidents() == []
    assert (f"telegram:{STRANGER}", {"reason": "unknown_person", "room": f"telegram:{GROUP}",
                                     "chat_type": "supergroup", "command": "alert"}) in v.refusals()
    [keyboard] = [m for m in fake.messages(GROUP) if m.message_id == question.message_id]
    assert keyboard.buttons and keyboard.edit_count == 0  # untouched
