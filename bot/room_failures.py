"""The outboxes' failure callback: an operation a room keeps failing (or refused for good) goes to the registre."""

from __future__ import annotations

from collections.abc import Callable

from .kinds import Kind, Recorder
from .outbox import Item
from .rooms import PermanentRoomError, Room
from .store import Store


def record_room_failure(registre: Recorder, store: Store | None = None) -> Callable[[Room, Item, BaseException], None]:
    """The outboxes' failure callback: an operation a room keeps failing (or refused for good), in the registre."""

    def record(room: Room, item: Item, exc: BaseException) -> None:
        inc = store.get(item.incident) if store is not None and item.incident else None
        registre.append(Kind.ROOM_ERROR, incident=item.incident, actor="system", drill=bool(inc and inc.drill),
                        details={"room": room.room_id, "operation": f"{item.kind}:{item.key}",
                                 "attempt": item.failures, "error": f"{type(exc).__name__}: {exc}"[:300],
                                 "for_good": isinstance(exc, PermanentRoomError)})

    return record
