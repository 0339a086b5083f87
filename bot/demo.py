"""The demo's embedded defaults: a small venue, a roster with fresh passwords, an alarm source.

Everything is generated at start-up (passwords, link key, webhook secret) and printed once,
so the demo needs no config directory and leaves no secret behind in a file.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from pydantic import SecretStr

from .policy.convention import ConfirmRule, Org, Role
from .settings import (
    AlarmSecret,
    AlarmsFile,
    AlarmSourceCfg,
    AuthorisationCfg,
    CameraCfg,
    CamerasFile,
    ConventionFile,
    PersonCfg,
    RosterFile,
    ScopeCfg,
    Secrets,
    ServiceCfg,
    Settings,
    VigieFile,
)

CAMERA_NAMES = (
    "Parvis nord", "Parvis sud", "Hall d'entrée", "Contrôle d'accès 1", "Contrôle d'accès 2",
    "Billetterie", "Fosse", "Gradins nord", "Gradins sud", "Gradins est", "Scène côté jardin",
    "Scène côté cour", "Coursive nord", "Coursive sud", "Bar du hall", "Sorties de secours est",
    "Sorties de secours ouest", "Quai de livraison", "Parking artistes", "Parking public",
)
CONSOLE_PERSON = "demo-chef"
ALARM_SOURCE = "demo-alarme"

# (id, name, org, role, habilitation)
PEOPLE = (
    (CONSOLE_PERSON, "Martine Lefèvre (démo)", Org.VENUE, Role.SECURITY_CHIEF, None),
    ("demo-directeur", "Paul Garnier (démo)", Org.VENUE, Role.DIRECTOR, None),
    ("demo-cic", "Cdt Julien Moreau (démo)", Org.POLICE, Role.CIC_OFFICER, "DEMO-HAB-001"),
    ("demo-agent", "Brigadier Lucie Perrin (démo)", Org.POLICE, Role.VIEWER, "DEMO-HAB-002"),
)


@dataclass(frozen=True)
class Demo:
    settings: Settings
    passwords: dict[str, str]
    alarm_secret: str


def slug(name: str) -> str:
    table = str.maketrans("àâäéèêëîïôöùûüç'", "aaaeeeeiioouuuc-")
    return "-".join(name.lower().translate(table).split())


def build_demo(port: int, cameras: int, today: date, hasher: PasswordHasher | None = None) -> Demo:
    hasher = hasher or PasswordHasher()
    passwords = {pid: secrets.token_urlsafe(9) for pid, *_ in PEOPLE}
    alarm_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    cams = tuple(CameraCfg(id=slug(n), name=n) for n in CAMERA_NAMES[: max(1, min(cameras, len(CAMERA_NAMES)))])
    settings = Settings(
        config_dir=Path("(demo)"),
        vigie=VigieFile(service=ServiceCfg(public_url=f"http://127.0.0.1:{port}", port=port)),
        convention=ConventionFile(
            venue="Salle de démonstration Vigie",
            police="Commissariat de démonstration — CIC",
            authorisation=AuthorisationCfg(reference="Arrêté préfectoral DÉMO-2026-001",
                                           expires=today + timedelta(days=3 * 365)),
            scope=ScopeCfg(cameras=tuple(c.id for c in cams)),
        ),
        roster=RosterFile(person=tuple(
            PersonCfg(id=pid, name=name, org=org, role=role, habilitation=hab,
                      password_hash=hasher.hash(passwords[pid]))
            for pid, name, org, role, hab in PEOPLE
        )),
        cameras=CamerasFile(camera=cams),
        alarms=AlarmsFile(source=(AlarmSourceCfg(
            name=ALARM_SOURCE, label="Centrale d'alarme (démo)", confirm=ConfirmRule.ANY,
            types={"panic": "attaque_armee", "hold_up": "attaque_armee", "bomb_threat": "alerte_bombe"},
        ),)),
        secrets=Secrets(
            link_keys=(SecretStr(secrets.token_urlsafe(32)),),
            alarm=(AlarmSecret(source=ALARM_SOURCE, secrets=(SecretStr(alarm_secret),)),),
        ),
    )
    return Demo(settings, passwords, alarm_secret)


def banner(demo: Demo, port: int, data_dir: Path) -> str:
    key_hex = base64.b64decode(demo.alarm_secret.removeprefix("whsec_")).hex()
    base = f"http://127.0.0.1:{port}"
    people = "\n".join(
        f"  {pid:<15} {name:<34} mot de passe : {demo.passwords[pid]}" for pid, name, *_ in PEOPLE
    )
    curl = (
        "BODY='{\"type\":\"panic\",\"zone\":\"Hall A\"}'; ID=msg_$(date +%s%N); TS=$(date +%s); "
        f"SIG=$(printf '%s' \"$ID.$TS.$BODY\" | openssl dgst -sha256 -mac HMAC -macopt hexkey:{key_hex} -binary | base64); "
        f"curl -sS -X POST {base}/hooks/alarm/{ALARM_SOURCE} -H \"webhook-id: $ID\" -H \"webhook-timestamp: $TS\" "
        "-H \"webhook-signature: v1,$SIG\" -H 'content-type: application/json' -d \"$BODY\""
    )
    return f"""
=== Vigie — démonstration ===
Serveur : {base}   (santé : {base}/healthz)
Registre : {data_dir / 'registre.sqlite3'}
Vous êtes {CONSOLE_PERSON} (chef de la sécurité du site) dans le salon « console ».

Personnes de la démo (mots de passe générés pour cette session) :
{people}

Source d'alarme : {ALARM_SOURCE}   secret : {demo.alarm_secret}
Alarme signée prête à lancer (autre terminal) :
  {curl}

Essayez : /alert attaque_armee Hall A · /status · /extend 30 · /end · /drill · /help
Fin de saisie (Ctrl-D) : arrêt propre.
"""
