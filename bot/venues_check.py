"""check-config for rooms shared by venues: this venue's code, the other venues, no code taken for a category."""

from __future__ import annotations

from pathlib import Path

from .settings import MatrixCfg


def check_shared(vf: Path, own: str | None, m: MatrixCfg, enabled: set[str], problems: list[str]) -> None:
    """A shared room needs this venue's code, and codes that cannot be taken for a category or each other."""
    if own in enabled:
        problems.append(f"{vf}: service.venue_code: '{own}' is also a category — choose another code")
    for i, shared in enumerate(m.shared):
        where = f"{vf}: matrix.shared[{i}]"
        if own is None:
            problems.append(f"{where}: a shared room needs service.venue_code — set this venue's short code (e.g. \"zenith\")")
        if shared.room not in m.rooms:
            problems.append(f"{where}.room: {shared.room} is not in matrix.rooms — add it there too")
        for code, user in shared.venues.items():
            if code == own or user == m.user_id:
                problems.append(f"{where}.venues.{code}: that is this venue — list only the other venues")
            elif code in enabled:
                problems.append(f"{where}.venues.{code}: '{code}' is also a category — the venues must choose other codes")
