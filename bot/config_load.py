"""Load and cross-check a config directory; turn it into the convention the core reads.

Every problem becomes one line naming the file, the key and the fix, and all of them are
reported at once so an IT person fixes the whole directory in one pass.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import tomllib
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from pydantic import BaseModel, SecretStr, ValidationError

from .policy.convention import (
    GRAVE_CATEGORIES,
    AlarmSource,
    Authorisation,
    CatastropheRules,
    Convention,
    Limits,
    Org,
    Person,
)
from .settings import (
    AlarmSecret,
    AlarmsFile,
    CamerasFile,
    ConventionFile,
    OnvifPassword,
    PanelKey,
    RosterFile,
    Secrets,
    Settings,
    VigieFile,
)
from .sia.codes import panel_sources
from .venues_check import check_shared
from .zones_check import check_zones

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

FILES: dict[str, type[BaseModel]] = {
    "vigie.toml": VigieFile,
    "convention.toml": ConventionFile,
    "roster.toml": RosterFile,
    "cameras.toml": CamerasFile,
    "alarms.toml": AlarmsFile,
}
OPTIONAL_FILES = {"vigie.toml", "alarms.toml"}

_PLACEHOLDERS = re.compile(
    r"^(|changeme|change[-_ ]?me.*|xx+|todo|tbd|secret|password|motdepasse|placeholder|example|"
    r"your[-_ ].*|<.*>|\.\.\.+|none|null|test)$",
    re.IGNORECASE,
)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def is_placeholder(value: str) -> bool:
    v = value.strip()
    return bool(_PLACEHOLDERS.match(v)) or "CHANGE" in v.upper() and "ME" in v.upper() or len(set(v)) == 1


def _fix_for(err_type: str) -> str:
    return {
        "extra_forbidden": "remove this key or correct its spelling (see config/ for the accepted keys)",
        "missing": "add this key",
        "enum": "use one of the values listed",
        "string_pattern_mismatch": "use lowercase letters, digits, '-' or '_' (identifiers), or the documented format",
        "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
        "date_parsing": "write the date as YYYY-MM-DD",
        "too_short": "add at least one entry",
    }.get(err_type, "correct the value")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _parse(path: Path, model: type[M], problems: list[str]) -> M | None:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc}) — fix the syntax at that line")
        return None
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror}) — check the path and permissions")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {_loc(e['loc'])}: {msg} — fix: {_fix_for(e['type'])}")
        return None


def _read_secret(
    env: Mapping[str, str], var: str, file: Path | None, base: Path, where: str, problems: list[str]
) -> str | None:
    if var in env:
        value = env[var]
        origin = f"environment variable {var}"
    elif file is not None:
        p = file if file.is_absolute() else base / file
        try:
            value = p.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{where}: secret file {p} cannot be read ({exc.strerror}) — create it (mode 0600) or set {var}")
            return None
        origin = f"file {p}"
    else:
        return None
    if is_placeholder(value):
        problems.append(f"{where}: the secret from {origin} is a placeholder — put the real secret there")
        return None
    return value


def _check_whsec(value: str) -> bool:
    if not value.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(value[6:], validate=True)) >= 24
    except (binascii.Error, ValueError):
        return False


def resolve_data_dir(settings: Settings) -> Path:
    """``service.data_dir``; a relative one is read from the config directory (where vigie.toml is)."""
    configured = settings.vigie.service.data_dir
    return configured if configured.is_absolute() else settings.config_dir.resolve() / configured


def load_settings(config_dir: Path, env: Mapping[str, str], today: date) -> Settings:
    """Validate the directory and resolve secrets; raise ConfigError listing every problem."""
    problems: list[str] = []
    if not config_dir.is_dir():
        raise ConfigError([f"{config_dir}: not a directory — pass --config with the directory holding vigie.toml"])
    parsed: dict[str, Any] = {}
    for name, model in FILES.items():
        path = config_dir / name
        if not path.exists() and name not in OPTIONAL_FILES:
            problems.append(f"{path}: missing — copy it from the example config/ directory and adapt it")
            continue
        parsed[name] = _parse(path, model, problems)
    if problems or any(v is None for v in parsed.values()):
        raise ConfigError(problems)
    vigie: VigieFile = parsed["vigie.toml"]
    conv: ConventionFile = parsed["convention.toml"]
    roster: RosterFile = parsed["roster.toml"]
    cameras: CamerasFile = parsed["cameras.toml"]
    alarms: AlarmsFile = parsed["alarms.toml"]
    cross_check(config_dir, vigie, conv, roster, cameras, alarms, today, problems)
    secrets = _secrets(config_dir, env, vigie, alarms, problems)
    onvif = _onvif_passwords(config_dir, env, cameras, problems)
    if problems or secrets is None:
        raise ConfigError(problems)
    return Settings(
        config_dir=config_dir,
        vigie=vigie,
        convention=conv,
        roster=roster,
        cameras=cameras,
        alarms=alarms,
        secrets=secrets.model_copy(update={"onvif": tuple(onvif)}),
    )


def cross_check(
    d: Path,
    vigie: VigieFile,
    conv: ConventionFile,
    roster: RosterFile,
    cameras: CamerasFile,
    alarms: AlarmsFile,
    today: date,
    problems: list[str],
) -> None:
    cf, rf, kf, af = d / "convention.toml", d / "roster.toml", d / "cameras.toml", d / "alarms.toml"
    grave = {c.code for c in GRAVE_CATEGORIES}
    enabled = set(conv.categories) if conv.categories is not None else grave
    for i, code in enumerate(conv.categories or ()):
        if code not in grave:
            problems.append(f"{cf}: categories[{i}]: '{code}' is not a grave category — use one of {sorted(grave)}")
    if conv.authorisation.expires < today:
        problems.append(
            f"{cf}: authorisation.expires: the prefectoral authorisation {conv.authorisation.reference} expired on "
            f"{conv.authorisation.expires} — enter the renewed authorisation's reference and expiry date"
        )
    if conv.limits.max_minutes < conv.limits.default_minutes:
        problems.append(f"{cf}: limits.max_minutes: smaller than default_minutes — raise it to at least {conv.limits.default_minutes}")
    cams = {c.id: c for c in cameras.camera}
    _dupes(kf, "camera", [c.id for c in cameras.camera], problems)
    for i, cam_id in enumerate(conv.scope.cameras):
        cam = cams.get(cam_id)
        if cam is None:
            problems.append(f"{cf}: scope.cameras[{i}]: camera '{cam_id}' is not defined in {kf} — add a [[camera]] with id = \"{cam_id}\" or remove it from the scope")
        elif cam.private:
            problems.append(f"{cf}: scope.cameras[{i}]: camera '{cam_id}' is marked private (changing rooms, toilets) — remove it from the scope (CSI L251-3, CNIL)")
    _dupes(rf, "person", [p.id for p in roster.person], problems)
    _dupes(rf, "telegram_id", [p.telegram_id for p in roster.person if p.telegram_id is not None], problems)
    _dupes(rf, "matrix_id", [p.matrix_id for p in roster.person if p.matrix_id is not None], problems)
    # Typed on the sign-in page, case-insensitively: an id or a RIO must name one person only.
    rios = [p.rio.casefold() for p in roster.person if p.rio]
    _dupes(rf, "rio", rios, problems)
    problems.extend(f"{rf}: rio '{r}' is also a person's id — each must name one person" for r in rios
                    if r in {p.id for p in roster.person})
    viewers = set(conv.roles.police_viewers)
    for i, p in enumerate(roster.person):
        if p.org is Org.POLICE and p.role in viewers and not (p.habilitation or "").strip():
            problems.append(
                f"{rf}: person[{i}] ({p.id}).habilitation: a police viewer needs the reference of their individual habilitation "
                "(CSI L252-3; Cass. crim. 13 Nov 2024) — add habilitation = \"...\" or give them another role"
            )
        if p.password_hash is not None:
            try:
                extract_parameters(p.password_hash)
            except (InvalidHashError, ValueError):
                problems.append(f"{rf}: person[{i}] ({p.id}).password_hash: not a valid argon2 hash — generate one with `python -m bot hash-password`")
    _dupes(af, "source", [s.name for s in alarms.source], problems)
    for i, s in enumerate(alarms.source):
        for alarm_type, code in s.types.items():
            if code not in enabled:
                problems.append(f"{af}: source[{i}] ({s.name}).types.{alarm_type}: '{code}' is not an enabled grave category — use one of {sorted(enabled)}")
    _check_panels(af, alarms, enabled, problems)  # SIA DC-09
    _check_catastrophe(cf, kf, conv, cameras, problems)
    check_zones(d, cameras, alarms, problems)
    t, m = vigie.telegram, vigie.matrix
    vf = d / "vigie.toml"
    if t.enabled and not t.chats:
        problems.append(f"{vf}: telegram.chats: Telegram is enabled but no group chat is listed — add the group's chat id (negative number)")
    if m.enabled:
        for key in ("homeserver", "user_id"):
            if not getattr(m, key):
                problems.append(f"{vf}: matrix.{key}: Matrix is enabled but this is empty — set it")
        if not m.rooms:
            problems.append(f"{vf}: matrix.rooms: Matrix is enabled but no room is listed — add the room id (!...:server)")
    check_shared(vf, vigie.service.venue_code, m, grave, problems)


def _check_catastrophe(cf: Path, kf: Path, conv: ConventionFile, cameras: CamerasFile, problems: list[str]) -> None:
    """The [catastrophe] section and the PTZ cameras: steering only by people who may view, never past access."""
    cat = conv.catastrophe
    viewers = set(conv.roles.police_viewers) | set(conv.roles.venue_viewers)
    for i, role in enumerate(cat.control):
        if role not in viewers:
            problems.append(f"{cf}: catastrophe.control[{i}]: '{role}' may not view the cameras (roles.police_viewers, roles.venue_viewers) — it could not steer them either; remove it or make it a viewer role")
    _dupes(cf, "catastrophe.control role", list(cat.control), problems)
    if cat.max_minutes > conv.limits.max_minutes:
        problems.append(f"{cf}: catastrophe.max_minutes: longer than the access itself may last (limits.max_minutes = {conv.limits.max_minutes}) — lower it")
    if not cat.declare:
        problems.append(f"{cf}: catastrophe.declare: nobody may declare a catastrophe — name at least one role, or leave the key out for the default")
    for i, cam in enumerate(cameras.camera):
        if cam.ptz is not None and cam.private:
            problems.append(f"{kf}: camera[{i}] ({cam.id}).ptz: a private camera is never shown, so never steered — remove ptz")


def _onvif_passwords(d: Path, env: Mapping[str, str], cameras: CamerasFile, problems: list[str]) -> list[OnvifPassword]:
    found: list[OnvifPassword] = []
    kf = d / "cameras.toml"
    for i, cam in enumerate(cameras.camera):
        if cam.ptz is None or cam.ptz.onvif is None:
            continue
        var = "VIGIE_ONVIF_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", cam.id.upper())
        where = f"{kf}: camera[{i}] ({cam.id}).ptz.password_file"
        raw = _read_secret(env, var, cam.ptz.password_file, d, where, problems)
        if raw is None:
            if cam.ptz.username:
                problems.append(f"{where}: the camera has an ONVIF username but no password — set {var} or password_file")
            continue
        found.append(OnvifPassword(camera=cam.id, password=SecretStr(raw)))
    return found


# ---- SIA DC-09 panels ----


def _check_panels(af: Path, alarms: AlarmsFile, enabled: set[str], problems: list[str]) -> None:
    _dupes(af, "panel", [p.name for p in alarms.panel], problems)
    _dupes(af, "panel account", [p.account.upper() for p in alarms.panel], problems)
    webhook_sources = {s.name for s in alarms.source}
    for i, p in enumerate(alarms.panel):
        if p.name in webhook_sources:
            problems.append(f"{af}: panel[{i}] ({p.name}).name: already the name of a webhook [[source]] — give the panel its own name")
        for alarm_type, code in p.types.items():
            if code not in enabled:
                problems.append(f"{af}: panel[{i}] ({p.name}).types.{alarm_type}: '{code}' is not an enabled grave category — use one of {sorted(enabled)}")
    if alarms.panel and alarms.sia is None:
        problems.append(f"{af}: sia: panels are listed but no [sia] section says where the DC-09 receiver listens — add [sia] with port = <the port the installer enters in the panel>")


def _panel_keys(d: Path, env: Mapping[str, str], alarms: AlarmsFile, problems: list[str]) -> list[PanelKey]:
    """AES keys of the panels that have one; a panel with neither variable nor file reports in clear."""
    keys: list[PanelKey] = []
    af = d / "alarms.toml"
    for i, p in enumerate(alarms.panel):
        var = "VIGIE_SIA_KEY_" + re.sub(r"[^A-Z0-9]", "_", p.name.upper())
        where = f"{af}: panel[{i}] ({p.name}).key_file"
        raw = _read_secret(env, var, p.key_file, d, where, problems)
        if raw is None:
            continue
        if p.key_format == "hex":
            if len(raw) not in (32, 48, 64) or not re.fullmatch(r"[0-9A-Fa-f]+", raw):
                problems.append(f"{where}: with key_format = \"hex\" the AES key must be 32, 48 or 64 hex digits — fix {var} or the file, or use key_format = \"ascii\"")
                continue
        elif len(raw) not in (16, 24, 32) or not all(0x21 <= ord(c) <= 0x7E for c in raw):
            problems.append(f"{where}: the AES key must be 16, 24 or 32 characters, without spaces, exactly as entered in the panel — fix {var} or the file (32+ hex digits: key_format = \"hex\")")
            continue
        keys.append(PanelKey(panel=p.name, key=SecretStr(raw)))
    return keys


# ---- end SIA DC-09 panels ----


def _dupes(path: Path, key: str, values: list[Any], problems: list[str]) -> None:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            problems.append(f"{path}: {key} '{v}' appears twice — each must be unique")
        seen.add(v)


def _secrets(d: Path, env: Mapping[str, str], vigie: VigieFile, alarms: AlarmsFile, problems: list[str]) -> Secrets | None:
    vf = d / "vigie.toml"
    raw_keys = _read_secret(env, "VIGIE_LINK_KEYS", vigie.service.link_keys_file, d, f"{vf}: service.link_keys_file", problems)
    keys: list[str] = []
    if raw_keys is None:
        problems.append(f"{vf}: service.link_keys_file: no link signing key — set VIGIE_LINK_KEYS or link_keys_file (one key per line, newest last, 32+ random characters)")
    else:
        keys = [k.strip() for k in re.split(r"[\s,]+", raw_keys) if k.strip()]
        for k in keys:
            if len(k) < 32 or is_placeholder(k):
                problems.append(f"{vf}: service.link_keys_file: a link signing key is too short or a placeholder — use 32+ random characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
                break
    tg = None
    if vigie.telegram.enabled:
        tg = _read_secret(env, "VIGIE_TELEGRAM_TOKEN", vigie.telegram.token_file, d, f"{vf}: telegram.token_file", problems)
        if tg is None:
            problems.append(f"{vf}: telegram.token_file: Telegram is enabled but no bot token — set VIGIE_TELEGRAM_TOKEN or token_file")
        elif not re.fullmatch(r"\d+:[A-Za-z0-9_-]{30,}", tg):
            problems.append(f"{vf}: telegram.token_file: the bot token does not look like BotFather's '123456:ABC…' — paste the token exactly")
    mx = None
    if vigie.matrix.enabled:
        mx = _read_secret(env, "VIGIE_MATRIX_PASSWORD", vigie.matrix.password_file, d, f"{vf}: matrix.password_file", problems)
        if mx is None:
            problems.append(f"{vf}: matrix.password_file: Matrix is enabled but no password — set VIGIE_MATRIX_PASSWORD or password_file")
    alarm: list[AlarmSecret] = []
    af = d / "alarms.toml"
    for i, s in enumerate(alarms.source):
        var = "VIGIE_ALARM_SECRET_" + re.sub(r"[^A-Z0-9]", "_", s.name.upper())
        raw = _read_secret(env, var, s.secret_file, d, f"{af}: source[{i}] ({s.name}).secret_file", problems)
        if raw is None:
            problems.append(f"{af}: source[{i}] ({s.name}).secret_file: no webhook secret — set {var} or secret_file (whsec_ + base64 of 24+ random bytes)")
            continue
        values = raw.split()
        if not all(_check_whsec(v) for v in values):
            problems.append(f"{af}: source[{i}] ({s.name}).secret_file: a secret is not 'whsec_' + base64 of 24+ bytes — generate one with `python -m bot new-secrets`")
            continue
        alarm.append(AlarmSecret(source=s.name, secrets=tuple(SecretStr(v) for v in values)))
    sia_keys = _panel_keys(d, env, alarms, problems)  # SIA DC-09
    health = _read_secret(env, "VIGIE_HEALTH_TOKEN", vigie.service.health_token_file, d,
                          f"{vf}: service.health_token_file", problems)
    if health is not None and len(health) < 24:
        problems.append(f"{vf}: service.health_token_file: the health token is too short — use 24+ random characters (python -m bot new-secrets)")
    if problems:
        return None
    return Secrets(
        link_keys=tuple(SecretStr(k) for k in keys),
        telegram_token=SecretStr(tg) if tg else None,
        matrix_password=SecretStr(mx) if mx else None,
        alarm=tuple(alarm),
        sia_keys=tuple(sia_keys),
        health_token=SecretStr(health) if health else None,
    )


def build_convention(s: Settings) -> Convention:
    c = s.convention
    enabled = set(c.categories) if c.categories is not None else {g.code for g in GRAVE_CATEGORIES}
    in_scope = {cid for cid in c.scope.cameras if not next(x for x in s.cameras.camera if x.id == cid).private}
    return Convention(
        venue=c.venue,
        police=c.police,
        categories=tuple(g for g in GRAVE_CATEGORIES if g.code in enabled),
        roster=tuple(
            Person(
                id=p.id,
                name=p.name,
                org=p.org,
                role=p.role,
                habilitation=p.habilitation,
                telegram_id=p.telegram_id,
                matrix_id=p.matrix_id,
                password_hash=p.password_hash,
                rio=p.rio,
            )
            for p in s.roster.person
        ),
        authorisation=Authorisation(
            c.authorisation.reference,
            c.authorisation.expires,
            warn_before=timedelta(days=c.authorisation.warn_days),
        ),
        request_roles=frozenset(c.roles.request),
        initiative_roles=frozenset(c.roles.initiative),
        end_roles=frozenset(c.roles.end),
        extend_roles=frozenset(c.roles.extend),
        drill_roles=frozenset(c.roles.drill),
        police_viewer_roles=frozenset(c.roles.police_viewers),
        venue_viewer_roles=frozenset(c.roles.venue_viewers),
        person_confirm=c.person_confirm,
        alarm_sources=tuple(AlarmSource(a.name, a.label, dict(a.types), a.confirm) for a in s.alarms.source)
        # SIA DC-09 panels: hold-up source and, when mapped, the "<panel>.intrusion" source.
        + tuple(src for p in s.alarms.panel
                for src in panel_sources(p.name, p.label, p.types, p.hold_up_confirm, p.alarm_confirm)),
        limits=Limits(**c.limits.to_timedeltas()),
        cameras_in_scope=frozenset(in_scope),
        catastrophe=CatastropheRules(
            declare_roles=frozenset(c.catastrophe.declare),
            confirm=c.catastrophe.confirm,
            control_roles=c.catastrophe.control,
            max_duration=timedelta(minutes=c.catastrophe.max_minutes),
            confirm_window=timedelta(minutes=c.catastrophe.confirm_window_minutes),
        ),
        zones=s.zone_map(),
    )
