"""Cross-checks of the zones and the plan (``cameras.toml``) and the panels' zone mappings (``alarms.toml``).

Kept beside ``config_load`` (which calls it) so each problem is one line naming the file, the
key and the fix, like every other config problem.
"""

from __future__ import annotations

from pathlib import Path

from .policy.zones import normalise
from .settings import AlarmsFile, CamerasFile


def check_zones(d: Path, cameras: CamerasFile, alarms: AlarmsFile, problems: list[str]) -> None:
    kf, af = d / "cameras.toml", d / "alarms.toml"
    cams = {c.id: c for c in cameras.camera}
    seen_ids: set[str] = set()
    owner: dict[str, str] = {}  # normalised name or alias -> zone id
    for i, z in enumerate(cameras.zone):
        where = f"{kf}: zone[{i}] ({z.id})"
        if z.id in seen_ids:
            problems.append(f"{kf}: zone '{z.id}' appears twice — each must be unique")
        seen_ids.add(z.id)
        for j, cam_id in enumerate(z.cameras):
            cam = cams.get(cam_id)
            if cam is None:
                problems.append(f"{where}.cameras[{j}]: camera '{cam_id}' is not defined in {kf} — add a [[camera]] with id = \"{cam_id}\" or remove it from the zone")
            elif cam.private:
                problems.append(f"{where}.cameras[{j}]: camera '{cam_id}' is marked private — remove it from the zone (it is never shown)")
        for word in (z.name, z.id, *z.aliases):
            key = normalise(word)
            if not key:
                problems.append(f"{where}: '{word}' has no letter or digit — write the name as people do")
                continue
            other = owner.setdefault(key, z.id)
            if other != z.id:
                problems.append(f"{where}: '{word}' also names zone '{other}' (accents and case aside) — each name or alias must name one zone")
    for i, p in enumerate(alarms.panel):
        for table in ("zones", "partitions"):
            for number, zone_id in getattr(p, table).items():
                if zone_id not in seen_ids:
                    problems.append(f"{af}: panel[{i}] ({p.name}).{table}.{number}: zone '{zone_id}' is not defined in {kf} — add a [[zone]] with id = \"{zone_id}\" or fix the id")
                if not number.strip() or not number.strip().isalnum():
                    problems.append(f"{af}: panel[{i}] ({p.name}).{table}: '{number}' is not a panel number — write it as the panel does, e.g. \"005\"")
    _check_plan(d, kf, cameras, problems)


def _check_plan(d: Path, kf: Path, cameras: CamerasFile, problems: list[str]) -> None:
    placed = [c.id for c in cameras.camera if c.at is not None]
    if cameras.plan is None:
        if placed:
            problems.append(f"{kf}: camera '{placed[0]}'.at: cameras are placed but no [plan] names the plan image — add [plan] image = \"plan.svg\" or remove the positions")
        return
    image = d / cameras.plan.image
    if not image.is_file():
        problems.append(f"{kf}: plan.image: {image} does not exist — put the plan image in the config directory or remove [plan]")
