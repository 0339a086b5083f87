"""The whole incident in a Telegram group, on the real desk (build_app) and the fake Bot API."""

from __future__ import annotations

import re

import pytest

from bot.alarms.route import AlarmIn
from bot.demo import ALARM_SOURCE
from bot.policy.incident import State
from tests.fakes import FakeTelegram
from tests.telegram.conftest import Start
from tests.telegram.support import AGENT, CHIEF, CIC, GROUP, bot_messages, caption, find, jpeg, say, until

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
LINK = re.compile(r"http://127\.0\.0\.1:\d+/live/\S+")


async def test_whole_incident_from_alert_to_end(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    # the command menu: French by default and for "fr", English for "en"
    assert [c["command"] for c in fake.commands_for("")] == [
        "alert", "confirm", "status", "extend", "end", "drill", "zone", "unlock", "catastrophe", "end_catastrophe",
        "help"]
    assert fake.commands_for("fr")[0] == {"command": "alert", "description": "Déclencher l'accès vidéo (événement grave)"}
    assert fake.commands_for("en")[0]["description"] == "Open video access (grave event)"

    # the link message is the answer to /alerte: no separate acknowledgement before it
    sent = fake.user_sends(GROUP, CHIEF, "/alerte@vigie_test_bot attaque_armee Hall A, tireur")
    await until(lambda: find(fake, GROUP, "ACCÈS VIDÉO OUVERT"))
    [inc] = v.desk.open_incidents()
    await v.settle()
    [link] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    assert bot_messages(fake, GROUP) == [link] and link.message_id == sent["message_id"] + 1
    assert re.search(r"INC-\d{8}-01", link.text or "") and "Martine" in (link.text or "")
    assert LINK.search(link.text or "") and "Hall A, tireur" in (link.text or "")
    assert link.protect_content and any(e["type"] == "text_link" for e in link.entities)
    assert v.store.get_ref(inc.id, f"telegram:{GROUP}", "link") == f"{GROUP}:{link.message_id}"

    # the tile: one message, sent protected, then replaced in place
    first, second = jpeg(640, 360, "navy"), jpeg(1280, 720, "maroon")
    v.desk.post_tile(inc.id, first, caption)
    await v.settle()
    [tile] = [m for m in bot_messages(fake, GROUP) if m.photo]
    assert tile.protect_content and tile.photo_bytes == first and tile.caption == caption("fr")
    v.desk.post_tile(inc.id, second, caption)
    await v.settle()
    [tile] = [m for m in bot_messages(fake, GROUP) if m.photo]
    assert tile.photo_bytes == second and tile.photo_size == (1280, 720) and tile.edit_count == 1
    assert len(fake.calls_of("sendPhoto")) == 1 and len(fake.calls_of("editMessageMedia")) == 1
    assert fake.calls_of("sendPhoto")[0]["protect_content"] is True

    # /prolonger edits the link message in place (and says so in a short message)
    answer = await say(fake, GROUP, CIC, "/prolonger 30")
    assert "prolongé" in (answer.text or "")
    await v.settle()
    [link_now] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    assert link_now.message_id == link.message_id and link_now.edit_count >= 1
    assert "Prolongé par Cdt Julien Moreau" in (link_now.text or "")
    assert len(fake.calls_of("sendMessage")) == len([m for m in bot_messages(fake, GROUP) if m.text])

    # /fin: the tile and the link message are deleted, the closure report is posted
    answer = await say(fake, GROUP, CHIEF, "/fin")
    assert f"Accès {inc.id} terminé" in (answer.text or "")
    await v.settle()
    deleted = {m.message_id for m in fake.deleted(GROUP)}
    assert {tile.message_id, link.message_id} <= deleted
    assert not find(fake, GROUP, "ACCÈS VIDÉO OUVERT") and not [m for m in fake.messages(GROUP) if m.photo]
    assert not any(LINK.search(m.text or "") for m in fake.messages(GROUP)), "no live message carries a link"
    assert find(fake, GROUP, "ACCÈS TERMINÉ")
    assert v.desk.incident(inc.id).state is State.ENDED  # type: ignore[union-attr]
    kinds = [r.kind for r in v.registre.records(inc.id)]
    for kind in ("trigger", "activation", "extension", "end", "closure_report"):
        assert kind in kinds
    assert not any(r.kind == "room_error" for r in v.registre.records())
    assert v.desk.fanout.health()[f"telegram:{GROUP}"].ok


async def test_status_help_and_unknown_command(fake: FakeTelegram, vigie: Start) -> None:
    await vigie()
    status = await say(fake, GROUP, CIC, "/statut")
    assert "Aucun incident ouvert." in (status.text or "") and f"Salon telegram:{GROUP}: ok" in (status.text or "")
    help_ = await say(fake, GROUP, AGENT, "/aide")
    assert "/alerte <catégorie>" in (help_.text or "")
    unknown = await say(fake, GROUP, CHIEF, "/envoyer")
    assert "Commande inconnue /envoyer" in (unknown.text or "")
    fake.user_sends(GROUP, CHIEF, "/help@another_bot")  # for another bot: not ours to answer
    help_again = await say(fake, GROUP, CHIEF, "/help")
    assert help_again.reply_to and len(bot_messages(fake, GROUP)) == 4


async def test_alert_without_category_offers_a_keyboard(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    question = await say(fake, GROUP, CHIEF, "/alerte")
    assert "Quel événement grave" in (question.text or "")
    codes = [b["callback_data"] for b in question.buttons]
    assert codes == [f"alert:{c.code}" for c in v.desk.conv.categories]
    assert question.buttons[0]["text"] == "attaque armée"

    # a police viewer may not open access: a callback alert, nothing changes, the refusal is audited
    refused = fake.user_presses(GROUP, AGENT, question.message_id, "alert:alerte_bombe")
    await until(lambda: refused in fake.callback_answers)
    assert fake.callback_answers[refused]["show_alert"] is True
    assert fake.callback_answers[refused]["text"].startswith("Refusé")
    assert v.desk.open_incidents() == [] and fake.messages(GROUP)[-1].buttons  # keyboard still there
    assert any(actor == "demo-agent" for actor, _ in v.refusals())

    # the chief presses: /alert alerte_bombe by her
    pressed = fake.user_presses(GROUP, CHIEF, question.message_id, "alert:alerte_bombe")
    await until(lambda: pressed in fake.callback_answers)
    assert fake.callback_answers[pressed]["show_alert"] is False
    assert "ouvert" in fake.callback_answers[pressed]["text"]
    [inc] = v.desk.open_incidents()
    assert inc.category == "alerte_bombe" and inc.trigger.actor == "demo-chef"
    await until(lambda: find(fake, GROUP, "ACCÈS VIDÉO OUVERT"))
    [closed] = [m for m in fake.messages(GROUP) if m.message_id == question.message_id]
    assert closed.buttons == [] and "Catégorie choisie par Martine Lefèvre (démo) : alerte à la bombe" in (closed.text or "")


async def test_alarm_confirmation_by_button(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie()
    result = await v.desk.alarm(AlarmIn(ALARM_SOURCE, "panic", "Hall A", "", None, "delivery-1"))
    assert result.outcome == "pending" and result.incident_id
    await until(lambda: find(fake, GROUP, "ALERTE À CONFIRMER"))
    [ask] = find(fake, GROUP, "ALERTE À CONFIRMER")
    data = f"confirm:{result.incident_id}"
    assert ask.buttons == [{"text": "✅ Confirmer l'accès", "callback_data": data}]

    # a viewer presses: refused with a callback alert; still pending, no link anywhere
    refused = fake.user_presses(GROUP, AGENT, ask.message_id, data)
    await until(lambda: refused in fake.callback_answers)
    assert fake.callback_answers[refused]["show_alert"] is True
    assert "Refusé" in fake.callback_answers[refused]["text"]
    assert v.desk.incident(result.incident_id).state is State.PENDING  # type: ignore[union-attr]
    assert not find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    [(actor, details)] = [(a, d) for a, d in v.refusals() if a == "demo-agent"]
    assert details["command"] == "confirm" and details["room"] == f"telegram:{GROUP}"

    # the police duty officer presses: confirmed, the button goes, the link is posted
    pressed = fake.user_presses(GROUP, CIC, ask.message_id, data)
    await until(lambda: pressed in fake.callback_answers)
    assert fake.callback_answers[pressed]["show_alert"] is False
    assert v.desk.incident(result.incident_id).state is State.ACTIVE  # type: ignore[union-attr]
    await v.settle()
    [ask_now] = [m for m in fake.messages(GROUP) if m.message_id == ask.message_id]
    assert ask_now.buttons == [] and "confirmée par Cdt Julien Moreau" in (ask_now.text or "")
    assert find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
