"""The venue's zones: which place an alarm or a person names, and which cameras cover it.

Pure: the config loader builds a ``ZoneMap``; the desk asks it which zone a text names (the
webhook's ``zone``, the words after ``/alerte <catégorie>``, ``/zone …``) or which zone a
panel's zone/partition number is; the page, the mosaic and the room tile put the zone's
cameras first with ``cameras_first``.

Matching is accent-, case- and punctuation-insensitive ("hall a", "HALL-A", "Hàll A" are
"Hall A"), on whole words: a free text such as "Hall A, coups de feu" names Hall A, and when
several names appear the longest wins ("Hall A" before "Hall"). A text that names no zone is
kept as written by the caller (``Focus.text``): an unknown place is still information.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^0-9a-z]+")
MAX_TEXT = 120


def normalise(text: str) -> str:
    """Lowercase words without accents or punctuation, single-spaced: the key names are compared on."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", bare.replace("œ", "oe").replace("æ", "ae")).strip()


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    cameras: tuple[str, ...]
    aliases: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        """Every normalised way of writing this zone (its id, its name, its aliases)."""
        out = [normalise(w) for w in (self.name, self.id, *self.aliases)]
        return tuple(dict.fromkeys(k for k in out if k))


@dataclass(frozen=True)
class Focus:
    """Where an incident looks: a known zone (``zone``) and/or the place as it was written."""

    zone: str | None = None
    text: str = ""

    @property
    def empty(self) -> bool:
        return self.zone is None and not self.text


NO_FOCUS = Focus()


@dataclass(frozen=True)
class ZoneMap:
    zones: tuple[Zone, ...] = ()

    def get(self, zone_id: str | None) -> Zone | None:
        return next((z for z in self.zones if z.id == zone_id), None) if zone_id else None

    def _index(self) -> list[tuple[str, Zone]]:
        # longest key first: "hall a" must win over "hall" inside "hall a nord"
        pairs = [(k, z) for z in self.zones for k in z.keys()]
        return sorted(pairs, key=lambda p: (-len(p[0]), p[0]))

    def find(self, text: str) -> Zone | None:
        """The zone ``text`` names: an exact name or alias, else the longest one found as whole words."""
        words = normalise(text)
        if not words:
            return None
        index = self._index()
        exact = next((z for k, z in index if k == words), None)
        if exact is not None:
            return exact
        padded = f" {words} "
        return next((z for k, z in index if f" {k} " in padded), None)

    def focus(self, text: str) -> Focus:
        """What a free text says: the zone it names, and the text itself when it names none."""
        clean = " ".join(text.split())[:MAX_TEXT]
        if not normalise(clean):
            return NO_FOCUS  # no word at all ("—" from a panel that sent no zone): nothing to keep
        zone = self.find(clean)
        return Focus(zone.id, "") if zone is not None else Focus(None, clean)

    def label(self, focus: Focus) -> str:
        """The zone's name, or the place as written."""
        zone = self.get(focus.zone)
        return zone.name if zone is not None else focus.text

    def cameras(self, focus: Focus) -> tuple[str, ...]:
        zone = self.get(focus.zone)
        return zone.cameras if zone is not None else ()


NO_ZONES = ZoneMap()


def cameras_first(order: Sequence[str], first: Iterable[str]) -> list[str]:
    """``order`` with the cameras of ``first`` moved to the front, in ``first``'s order.

    Cameras of ``first`` missing from ``order`` (out of scope, private) are not added."""
    present = set(order)
    head = [c for c in dict.fromkeys(first) if c in present]
    seen = set(head)
    return head + [c for c in order if c not in seen]


def _number(value: str) -> str:
    """Panel zone numbers "005", "05" and "5" are the same zone: compared without leading zeros."""
    v = value.strip().upper()
    return (v.lstrip("0") or "0") if v else ""


def panel_zone(zones: Mapping[str, str], partitions: Mapping[str, str], zone: str, partition: str) -> str | None:
    """The venue zone id a panel's zone (first) or partition maps to, else None."""
    for table, value in ((zones, zone), (partitions, partition)):
        key = _number(value)
        if not key:
            continue
        found = next((target for k, target in table.items() if _number(k) == key), None)
        if found is not None:
            return found
    return None
