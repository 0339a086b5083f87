"""Why a decision went the way it did, in words the rooms show (French first, English too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    fr: str
    en: str

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.fr


class Refused(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """A request the convention does not allow; carries the text the user sees."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.code)
        self.reason = reason
