"""The demo venue's geography: where its synthetic cameras stand on the plan, and its zones.

The same Zénith as the example ``config/`` (whose ``plan.svg`` is this plan), keyed by camera
name because the demo derives its camera ids from the names. With ``--cameras N`` only the
first N cameras exist: zones keep the cameras that do, and a zone left empty is dropped.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .settings import PlanCfg, PlanSpot, ZoneCfg

PLAN = resources.files("bot.web") / "plans" / "demo-venue.svg"

# name -> (x, y, direction): fractions of the plan, degrees clockwise from up
SPOTS: dict[str, tuple[float, float, float]] = {
    "Parvis nord": (0.095, 0.24, 90), "Parvis sud": (0.095, 0.76, 90), "Hall d'entrée": (0.215, 0.5, 90),
    "Contrôle d'accès 1": (0.29, 0.33, 180), "Contrôle d'accès 2": (0.29, 0.67, 0),
    "Billetterie": (0.235, 0.37, 135), "Bar du hall": (0.33, 0.6, 270), "Fosse": (0.545, 0.4, 90),
    "Gradins nord": (0.59, 0.19, 180), "Gradins sud": (0.59, 0.69, 0), "Gradins est": (0.735, 0.243, 225),
    "Scène côté jardin": (0.7, 0.336, 270), "Scène côté cour": (0.7, 0.557, 270),
    "Coursive nord": (0.59, 0.107, 90), "Coursive sud": (0.59, 0.79, 270),
    "Sorties de secours est": (0.8, 0.257, 270), "Sorties de secours ouest": (0.4, 0.814, 0),
    "Quai de livraison": (0.905, 0.743, 180), "Parking artistes": (0.7, 0.914, 270),
    "Parking public": (0.3, 0.914, 90),
}

# (id, name, aliases, camera names)
ZONES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("hall-a", "Hall A", ("hall d'entrée", "hall principal", "entrée principale", "accueil", "billetterie"),
     ("Hall d'entrée", "Contrôle d'accès 1", "Contrôle d'accès 2", "Billetterie", "Bar du hall")),
    ("hall-b", "Hall B", ("arrière-scène", "backstage", "quai de livraison", "livraisons", "entrée artistes"),
     ("Quai de livraison", "Parking artistes", "Scène côté cour")),
    ("parvis", "Parvis", ("esplanade", "devant l'entrée", "extérieur"), ("Parvis nord", "Parvis sud", "Hall d'entrée")),
    ("salle", "Salle", ("fosse", "gradins", "scène", "salle de spectacle"),
     ("Fosse", "Gradins nord", "Gradins sud", "Gradins est", "Scène côté jardin", "Scène côté cour")),
    ("coursives", "Coursives", ("coursive", "coursive nord", "coursive sud", "sorties de secours", "issues de secours"),
     ("Coursive nord", "Coursive sud", "Sorties de secours est", "Sorties de secours ouest")),
    ("parkings", "Parkings", ("parking", "parking public", "stationnement"), ("Parking public", "Parking artistes")),
)


def spot(name: str) -> PlanSpot | None:
    found = SPOTS.get(name)
    return PlanSpot(x=found[0], y=found[1], direction=found[2]) if found else None


def zones(ids: dict[str, str]) -> tuple[ZoneCfg, ...]:
    """The zones over the cameras that exist (``ids``: name -> camera id)."""
    out = []
    for zone_id, name, aliases, cams in ZONES:
        present = tuple(ids[c] for c in cams if c in ids)
        if present:
            out.append(ZoneCfg(id=zone_id, name=name, aliases=aliases, cameras=present))
    return tuple(out)


def plan() -> PlanCfg:
    return PlanCfg(image=Path(str(PLAN)))
