"""A venue with a code (its police room shared with other venues) keeps its Telegram group as it was:
the group is the venue's own, so today's short commands work, and every message names the venue."""

from __future__ import annotations

import pytest

from bot.kinds import Kind
from tests.fakes import FakeTelegram
from tests.telegram.conftest import Start
from tests.telegram.support import CHIEF, GROUP, find, say, until

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


async def test_short_commands_in_the_venue_group(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie(venue_code="zenith")
    fake.user_sends(GROUP, CHIEF, "/alerte attaque_armee Hall A")
    await until(lambda: find(fake, GROUP, "ACCÈS VIDÉO OUVERT"))
    [link] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    assert (link.text or "").startswith("[zenith] ")
    [inc] = v.desk.open_incidents()
    status = await say(fake, GROUP, CHIEF, "/statut")
    assert (status.text or "").startswith("[zenith] ") and inc.id in (status.text or "")
    assert "\n" in (status.text or "")  # the whole status, not a shared room's one line
    ended = await say(fake, GROUP, CHIEF, "/fin")
    assert inc.id in (ended.text or "") and v.desk.open_incidents() == []
    await until(lambda: find(fake, GROUP, "ACCÈS TERMINÉ"))
    [closure] = find(fake, GROUP, "ACCÈS TERMINÉ")
    assert "(zenith)" in (closure.text or "")
    assert {r.venue for r in v.registre.records()} == {"zenith"}
    assert v.registre.records(inc.id)[0].kind == Kind.TRIGGER


async def test_commands_copied_from_the_shared_room_work_in_the_group(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie(venue_code="zenith")
    fake.user_sends(GROUP, CHIEF, "/alerte zenith attaque_armee Hall A")  # "zenith" is not read as a category
    await until(lambda: find(fake, GROUP, "ACCÈS VIDÉO OUVERT"))
    [inc] = v.desk.open_incidents()
    assert inc.category == "attaque_armee" and "Hall A" in inc.trigger.details
    ended = await say(fake, GROUP, CHIEF, "/fin zenith")
    assert inc.id in (ended.text or "") and v.desk.open_incidents() == []
