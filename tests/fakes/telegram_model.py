"""The fake Bot API's world: chats, messages, photos, and the parsed parameters of a call."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .telegram_rules import bad

_T = TypeVar("_T")


@dataclass
class Upload:
    name: str
    filename: str | None
    data: bytes


@dataclass
class Photo:
    """One stored photo: every PhotoSize file_id of it maps to this record."""

    data: bytes
    width: int
    height: int
    sizes: list[dict[str, Any]]


@dataclass
class FakeChat:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    user_id: int | None = None
    members: set[int] = field(default_factory=set)
    bot_member: bool = True
    bot_admin: bool = False
    bot_kicked: bool = False
    blocked: bool = False
    next_id: int = 1


@dataclass
class FakeMessage:
    """A message as the fake stores it; ``to_api`` of the server renders the Bot API Message."""

    chat_id: int
    message_id: int
    from_id: int
    from_bot: bool
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    photo: Photo | None = None
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    has_spoiler: bool = False
    reply_markup: dict[str, Any] | None = None
    protect_content: bool = False
    reply_to: int | None = None
    edit_count: int = 0
    edit_date: int | None = None
    deleted: bool = False

    @property
    def photo_size(self) -> tuple[int, int] | None:
        return (self.photo.width, self.photo.height) if self.photo else None

    @property
    def photo_bytes(self) -> bytes | None:
        return self.photo.data if self.photo else None

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for row in (self.reply_markup or {}).get("inline_keyboard", []) for b in row]


class Params:
    """Request parameters, typed the way the Bot API reads them (form values are strings).

    ``record`` is the dict stored in ``FakeTelegram.calls``: raw at first, each value replaced by its
    typed form as the method reads it; uploaded files appear as their size in bytes.
    """

    def __init__(self, values: dict[str, Any], files: dict[str, Upload]) -> None:
        self.values = values
        self.files = files
        self.record: dict[str, Any] = {**values, **{k: len(f.data) for k, f in files.items()}}

    def names(self) -> set[str]:
        """Parameter names sent, counting file parts not referenced through ``attach://``."""
        attached = set(re.findall(r"attach://([\w.-]+)", json.dumps(self.values)))
        return set(self.values) | {k for k in self.files if k not in attached}

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def _keep(self, name: str, value: _T) -> _T:
        if name in self.values:
            self.record[name] = value
        return value

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            raise bad(f'field "{name}" must be of type String')
        return json.dumps(value)

    def integer(self, name: str, missing: str | None = None) -> int | None:
        value = self.values.get(name)
        if value in (None, "") and missing is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return self._keep(name, value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return self._keep(name, int(value))
        raise bad(missing or f'field "{name}" must be of type Integer')

    def flag(self, name: str) -> bool:
        value = self.values.get(name, False)
        return self._keep(name, value.strip().lower() in ("true", "1") if isinstance(value, str) else bool(value))

    def obj(self, name: str, what: str | None = None) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad(f"can't parse {what or name} JSON object") from None
        return self._keep(name, value)
