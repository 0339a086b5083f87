"""The demo's embedded defaults: a small venue, a roster with fresh passwords, an alarm source,
and a SIA DC-09 panel account whose receiver listens on a free port.

Everything is generated at start-up (passwords, link key, webhook secret, panel key) and printed once,
so the demo needs no config directory and leaves no secret behind in a file.
"""

from __future__ import annotations

import base64
import secrets
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from pydantic import SecretStr

from . import demo_venue as venue
from .locales import Msg, t
from .policy.convention import ConfirmRule, Org, Role
from .settings import (
    AlarmSecret,
    AlarmsFile,
    AlarmSourceCfg,
    AuthorisationCfg,
    CameraCfg,
    CamerasFile,
    CatastropheCfg,
    ConventionFile,
    MatrixCfg,
    PanelCfg,
    PanelKey,
    PersonCfg,
    PtzCfg,
    RosterFile,
    ScopeCfg,
    Secrets,
    ServiceCfg,
    Settings,
    SiaCfg,
    VigieFile,
)

CAMERA_NAMES = (
    "Parvis nord", "Parvis sud", "Hall d'entrée", "Contrôle d'accès 1", "Contrôle d'accès 2",
    "Billetterie", "Fosse", "Gradins nord", "Gradins sud", "Gradins est", "Scène côté jardin",
    "Scène côté cour", "Coursive nord", "Coursive sud", "Bar du hall", "Sorties de secours est",
    "Sorties de secours ouest", "Quai de livraison", "Parking artistes", "Parking public",
)
# The public car park overlooks housing: its windows are masked (CSI L251-3), so that camera
# shows a masked still refreshed every second on the page, never video.
MASKS = {"Parking public": ((0.55, 0.0, 0.45, 0.4),)}
CONSOLE_PERSON = "demo-chef"
ALARM_SOURCE = "demo-alarme"
PANEL = "demo-centrale"  # SIA DC-09 panel
PANEL_ACCOUNT = "D3E0"

# (id, name, org, role, habilitation)
VIEWER = "demo-agent"  # the demo's police viewer
PEOPLE = (
    (CONSOLE_PERSON, "Martine Lefèvre (démo)", Org.VENUE, Role.SECURITY_CHIEF, None),
    ("demo-directeur", "Paul Garnier (démo)", Org.VENUE, Role.DIRECTOR, None),
    ("demo-cic", "Cdt Julien Moreau (démo)", Org.POLICE, Role.CIC_OFFICER, "DEMO-HAB-001"),
    ("demo-agent", "Brigadier Lucie Perrin (démo)", Org.POLICE, Role.VIEWER, "DEMO-HAB-002"),
    # steers cameras in a catastrophe, and is taken over by the CIC (catastrophe.control's order)
    ("demo-terrain", "Cne Sarah Vidal (démo)", Org.POLICE, Role.FIELD_COMMANDER, "DEMO-HAB-003"),
)


@dataclass(frozen=True)
class Demo:
    settings: Settings
    passwords: dict[str, str]
    alarm_secret: str
    sia_port: int = 0  # SIA DC-09 receiver of the demo panel; 0: none
    sia_key: str = ""


def free_port() -> int:
    """A port free right now on 127.0.0.1, for the demo panel's receiver (printed in the banner)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slug(name: str) -> str:
    table = str.maketrans("àâäéèêëîïôöùûüç'", "aaaeeeeiioouuuc-")
    return "-".join(name.lower().translate(table).split())


def build_demo(port: int, cameras: int, today: date, hasher: PasswordHasher | None = None,
               sia_port: int | None = None, admin_port: int | None = None, venue_code: str | None = None) -> Demo:
    """``sia_port``: None picks a free port for the demo panel's DC-09 receiver, 0 leaves it out.
    ``admin_port``: where the admin listener (metrics, detailed health) listens, on loopback; None: nowhere.
    ``venue_code``: a second demo venue beside the first (its own port and data directory) takes its own."""
    hasher = hasher or PasswordHasher()
    sia_port = free_port() if sia_port is None else sia_port
    sia_key = secrets.token_hex(8).upper()  # the panel's AES-128 key, 16 characters as entered in a panel
    passwords = {pid: secrets.token_urlsafe(9) for pid, *_ in PEOPLE}
    alarm_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    # No URL: synthetic cameras (bot/media/synthetic.py), encoded in memory at start-up.
    # The first camera is a PTZ dome (a synthetic one, no ONVIF): catastrophe mode can be tried end to end.
    cams = tuple(CameraCfg(id=slug(n), name=n, masks=MASKS.get(n, ()), at=venue.spot(n),
                           ptz=PtzCfg(home_preset="origine") if i == 0 else None)
                 for i, n in enumerate(CAMERA_NAMES[: max(1, min(cameras, len(CAMERA_NAMES)))]))
    settings = Settings(
        config_dir=Path("(demo)"),
        vigie=VigieFile(service=ServiceCfg(public_url=f"http://127.0.0.1:{port}", port=port, admin_port=admin_port,
                                           venue_code=venue_code)),
        convention=ConventionFile(
            venue="Salle de démonstration Vigie",
            police="Commissariat de démonstration — CIC",
            authorisation=AuthorisationCfg(reference="Arrêté préfectoral DÉMO-2026-001",
                                           expires=today + timedelta(days=3 * 365)),
            scope=ScopeCfg(cameras=tuple(c.id for c in cams)),
            # The demo has one console person: a catastrophe needs no second party here. A real
            # convention keeps the default (declared by one party, confirmed by the other).
            catastrophe=CatastropheCfg(confirm=ConfirmRule.NONE),
        ),
        roster=RosterFile(person=tuple(
            PersonCfg(id=pid, name=name, org=org, role=role, habilitation=hab,
                      password_hash=hasher.hash(passwords[pid]))
            for pid, name, org, role, hab in PEOPLE
        )),
        cameras=CamerasFile(camera=cams, zone=venue.zones({c.name: c.id for c in cams}), plan=venue.plan()),
        alarms=AlarmsFile(
            source=(AlarmSourceCfg(
                name=ALARM_SOURCE, label="Centrale d'alarme (démo)", confirm=ConfirmRule.ANY,
                types={"panic": "attaque_armee", "hold_up": "attaque_armee", "bomb_threat": "alerte_bombe"},
            ),),
            # SIA DC-09: hold-up opens at once (a venue request), burglary awaits a confirmation.
            sia=SiaCfg(host="127.0.0.1", port=sia_port) if sia_port else None,
            panel=(PanelCfg(
                name=PANEL, label="Centrale intrusion / agression (démo)", account=PANEL_ACCOUNT,
                types={"hold_up": "attaque_armee", "burglary": "intrusion_armee"},
            ),) if sia_port else (),
        ),
        secrets=Secrets(
            link_keys=(SecretStr(secrets.token_urlsafe(32)),),
            alarm=(AlarmSecret(source=ALARM_SOURCE, secrets=(SecretStr(alarm_secret),)),),
            sia_keys=(PanelKey(panel=PANEL, key=SecretStr(sia_key)),) if sia_port else (),
        ),
    )
    return Demo(settings, passwords, alarm_secret, sia_port, sia_key if sia_port else "")


def with_matrix(demo: Demo, path: Path, env: Mapping[str, str]) -> Demo:
    """The demo joined to a Matrix room: ``path`` holds a ``[matrix]`` table as in vigie.toml (its
    ``[[matrix.shared]]`` too) and ``[roster] matrix_ids`` (demo person → Matrix id); the password
    comes from VIGIE_MATRIX_PASSWORD. Two demo venues in one room show the shared-room rules."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    matrix = MatrixCfg.model_validate({**data.get("matrix", {}), "enabled": True})
    ids: dict[str, str] = data.get("roster", {}).get("matrix_ids", {})
    s = demo.settings
    people = tuple(p.model_copy(update={"matrix_id": ids.get(p.id)}) for p in s.roster.person)
    password = env.get("VIGIE_MATRIX_PASSWORD")
    settings = s.model_copy(update={
        "vigie": s.vigie.model_copy(update={"matrix": matrix}),
        "roster": s.roster.model_copy(update={"person": people}),
        "secrets": s.secrets.model_copy(update={"matrix_password": SecretStr(password) if password else None}),
    })
    return replace(demo, settings=settings)


def _passkey_lines(base: str, data_dir: Path) -> str:
    """How to try a passkey: browsers want a domain, so http://localhost (demo --localhost)."""
    if "://localhost:" not in base:
        return t("fr", Msg.DEMO_PASSKEY_RESTART)
    command = f"python -m bot enrol {VIEWER} --data-dir {data_dir} --public-url {base}"
    return t("fr", Msg.DEMO_PASSKEY, command=command, person=VIEWER)


def _panel_lines(demo: Demo) -> str:
    """The demo panel (SIA DC-09): where it reports and a ready-made hold-up alarm."""
    if not demo.sia_port:
        return "Centrale d'alarme DC-09 : désactivée (--sia-port 0)\n"
    return (
        f"Centrale d'alarme DC-09 : 127.0.0.1:{demo.sia_port} TCP, SIA-DCS ou ADM-CID, compte {PANEL_ACCOUNT}, "
        f"clé AES {demo.sia_key}\n"
        "Agression (Contact ID 122) depuis la centrale simulée (autre terminal, à la racine du dépôt) :\n"
        f"  python -m bot sia-send --port {demo.sia_port} --account {PANEL_ACCOUNT} --key {demo.sia_key} hold-up\n"
    )


def localhost(demo: Demo, port: int) -> Demo:
    """The demo served as http://localhost:PORT (browsers refuse passkeys on an IP address)."""
    s = demo.settings
    service = s.vigie.service.model_copy(update={"public_url": f"http://localhost:{port}"})
    settings = s.model_copy(update={"vigie": s.vigie.model_copy(update={"service": service})})
    return replace(demo, settings=settings)


def banner(demo: Demo, port: int, data_dir: Path) -> str:
    key_hex = base64.b64decode(demo.alarm_secret.removeprefix("whsec_")).hex()
    base = demo.settings.vigie.service.public_url
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
=== Vigie — démonstration{f" — site « {demo.settings.vigie.service.venue_code} »" if demo.settings.vigie.service.venue_code else ""} ===
Serveur : {base}   (santé : {base}/healthz, détails depuis cette machine : {base}/healthz/details)
Registre : {data_dir / 'registre.sqlite3'}
Vous êtes {CONSOLE_PERSON} (chef de la sécurité du site) dans le salon « console ».

Personnes de la démo (mots de passe générés pour cette session) :
{people}

Source d'alarme : {ALARM_SOURCE}   secret : {demo.alarm_secret}
Alarme signée prête à lancer (autre terminal) :
  {curl}

{_panel_lines(demo)}
{_passkey_lines(base, data_dir)}
Essayez : /alert attaque_armee Hall A · /status · /extend 30 · /end · /drill · /help
Mode catastrophe : après /alert, tapez /catastrophe ; sur la page, connectez-vous en demo-cic et ouvrez
« {CAMERA_NAMES[0]} » (caméra mobile simulée) : prendre la commande, orienter, zoomer, presets, retour à
l'origine ; /fin_catastrophe la ramène à sa position d'origine.
Fin de saisie (Ctrl-D) : arrêt propre.
"""
