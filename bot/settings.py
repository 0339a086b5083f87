"""Typed settings: the TOML files of a config directory plus secrets, validated before the loop starts.

Layout of a config directory (see ``config/`` for a commented example):
``vigie.toml`` (service, rooms), ``convention.toml``, ``roster.toml``, ``cameras.toml``,
``alarms.toml``. Secrets never live in those files: they come from the environment
(``VIGIE_*``) or from files named by ``*_file`` keys. ``load_settings`` returns frozen
models, or raises ``ConfigError`` whose lines each name the file, the key and the fix.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .policy.convention import ConfirmRule, Org, Role
from .policy.zones import Zone, ZoneMap
from .url_checks import BOT_API, LOOPBACK_HOSTS, bot_api_base

SLUG = r"^[a-z0-9][a-z0-9_-]{0,47}$"
Slug = Annotated[str, Field(pattern=SLUG)]
# A venue's short code (``zenith``): typed first in a shared room's commands, so short and plain.
VENUE_CODE = r"^[a-z][a-z0-9_-]{1,23}$"
VenueCode = Annotated[str, Field(pattern=VENUE_CODE)]


class Strict(BaseModel):
    """Frozen, and unknown keys are an error (a typo must not silently disable a rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- vigie.toml ----


class ServiceCfg(Strict):
    public_url: str = "http://127.0.0.1:8080"
    # Shown in every message and on the page; names this venue in rooms shared with other venues.
    venue_code: VenueCode | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("data")
    language: Literal["fr", "en"] = "fr"
    timezone: str = "Europe/Paris"
    tile_interval_seconds: int = Field(default=30, ge=5, le=600)
    link_keys_file: Path | None = None
    health_token_file: Path | None = None  # /healthz/details for monitoring (else loopback only)
    # The admin listener (/metrics, /healthz/details): this machine only, never the reverse proxy.
    admin_host: str = "127.0.0.1"
    admin_port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone; use an IANA name such as Europe/Paris") from exc
        return v

    @field_validator("admin_host")
    @classmethod
    def _admin_loopback(cls, v: str) -> str:
        if v not in LOOPBACK_HOSTS:
            raise ValueError("the admin listener (metrics, detailed health) binds to this machine only —"
                             " use 127.0.0.1 or ::1 and let Prometheus scrape it locally or through an SSH tunnel")
        return v

    @model_validator(mode="after")
    def _admin_port_free(self) -> ServiceCfg:
        if self.admin_port is not None and self.admin_port == self.port:
            raise ValueError("admin_port must differ from port (the public listener)")
        return self

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an absolute http(s) URL such as https://vigie.example.fr")
        if v.startswith("http://") and (urlsplit(v).hostname or "") not in LOOPBACK_HOSTS:
            # Session cookies are Secure and passkeys need a secure origin: plain http only on this machine.
            raise ValueError("must use https (officers' sessions and passkeys); http only for localhost or 127.0.0.1")
        return v.rstrip("/")


class TelegramCfg(Strict):
    enabled: bool = False
    chats: tuple[int, ...] = ()
    language: Literal["fr", "en"] = "fr"
    strangers: Literal["refuse", "silent"] = "refuse"
    token_file: Path | None = None
    webhook: bool = False
    api_url: str = BOT_API  # the Bot API server: Telegram's, a local Bot API server, or a proxy
    file_url: str | None = None  # where files are fetched; default: api_url

    @field_validator("api_url", "file_url")
    @classmethod
    def _api(cls, v: str | None) -> str | None:
        return None if v is None else bot_api_base(v)


MatrixUserId = Annotated[str, Field(pattern=r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-:\[\]]+$")]


class SharedRoomCfg(Strict):
    """A police room this venue shares with other venues' Vigie: their codes and bot accounts."""

    room: str = Field(pattern=r"^!\S+$")  # room version 12 ids have no server part
    venues: dict[VenueCode, MatrixUserId] = Field(min_length=1)


class MatrixCfg(Strict):
    enabled: bool = False
    homeserver: str = ""
    user_id: str = ""
    device_id: str = "VIGIE"
    rooms: tuple[str, ...] = ()
    language: Literal["fr", "en"] = "fr"
    strangers: Literal["refuse", "silent"] = "refuse"
    password_file: Path | None = None
    store_dir: Path = Path("matrix-store")
    shared: tuple[SharedRoomCfg, ...] = ()  # rooms shared with other venues (commands must name the venue)

    def shared_with(self, room_id: str) -> dict[str, str]:
        """The other venues sharing ``room_id``: venue code → their bot's Matrix id."""
        return {code: user for s in self.shared if s.room == room_id for code, user in s.venues.items()}


class VigieFile(Strict):
    service: ServiceCfg = ServiceCfg()
    telegram: TelegramCfg = TelegramCfg()
    matrix: MatrixCfg = MatrixCfg()


# ---- convention.toml ----


class AuthorisationCfg(Strict):
    reference: str = Field(min_length=3)
    expires: date
    warn_days: int = Field(default=120, ge=0)


class LimitsCfg(Strict):
    default_minutes: int = Field(default=60, ge=5, le=24 * 60)
    max_minutes: int = Field(default=240, ge=5, le=7 * 24 * 60)
    reminder_minutes: int = Field(default=10, ge=1)
    confirm_window_minutes: int = Field(default=5, ge=1, le=60)
    link_minutes: int = Field(default=15, ge=1, le=120)

    def to_timedeltas(self) -> dict[str, timedelta]:
        return {
            "default_duration": timedelta(minutes=self.default_minutes),
            "max_duration": timedelta(minutes=self.max_minutes),
            "reminder_before": timedelta(minutes=self.reminder_minutes),
            "confirm_window": timedelta(minutes=self.confirm_window_minutes),
            "link_validity": timedelta(minutes=self.link_minutes),
        }


class RolesCfg(Strict):
    request: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR)
    initiative: tuple[Role, ...] = (Role.CIC_OFFICER,)
    end: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER)
    extend: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER)
    drill: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER)
    police_viewers: tuple[Role, ...] = (Role.CIC_OFFICER, Role.FIELD_COMMANDER, Role.VIEWER)
    venue_viewers: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR)


class ScopeCfg(Strict):
    cameras: tuple[Slug, ...]


class CatastropheCfg(Strict):
    """Catastrophe mode: the only time cameras may be steered (``[catastrophe]`` in convention.toml)."""

    declare: tuple[Role, ...] = (Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER)
    confirm: ConfirmRule = ConfirmRule.COUNTERPARTY  # declared by one party, confirmed by the other
    control: tuple[Role, ...] = (Role.CIC_OFFICER, Role.FIELD_COMMANDER)  # first = takes over the others
    max_minutes: int = Field(default=60, ge=5, le=24 * 60)
    confirm_window_minutes: int = Field(default=3, ge=1, le=30)


class ConventionFile(Strict):
    venue: str = Field(min_length=2)
    police: str = Field(min_length=2)
    categories: tuple[Slug, ...] | None = None  # None: every grave category (GRAVE_CATEGORIES in bot/policy/convention.py)
    person_confirm: ConfirmRule = ConfirmRule.NONE
    authorisation: AuthorisationCfg
    limits: LimitsCfg = LimitsCfg()
    roles: RolesCfg = RolesCfg()
    scope: ScopeCfg
    catastrophe: CatastropheCfg = CatastropheCfg()


# ---- roster.toml ----


class PersonCfg(Strict):
    id: Slug
    name: str = Field(min_length=2)
    org: Org
    role: Role
    habilitation: str | None = None
    telegram_id: int | None = None
    matrix_id: str | None = Field(default=None, pattern=r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-:\[\]]+$")
    password_hash: str | None = None
    rio: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{5,12}$")  # police: typed to sign in


class RosterFile(Strict):
    person: tuple[PersonCfg, ...] = Field(min_length=1)


# ---- cameras.toml ----

Rect = tuple[float, float, float, float]


class PtzCfg(Strict):
    """A PTZ camera's ONVIF endpoint; its password comes from VIGIE_ONVIF_PASSWORD_<CAMERA> or password_file."""

    onvif: str | None = None  # http://host[:port]; absent: the demo's synthetic PTZ (synthetic cameras only)
    username: str = ""
    password_file: Path | None = None
    home_preset: str | None = None  # the preset token the camera returns to; absent: its own home position
    profile: str | None = None  # media profile token; absent: the camera's first profile
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    @field_validator("onvif")
    @classmethod
    def _onvif(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ValueError("must be the camera's ONVIF address such as http://192.168.1.64:80, without credentials")
        return v.rstrip("/")
class PlanSpot(Strict):
    """A camera on the plan: x, y as fractions of the plan image (0,0 top left); optionally where it looks."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    direction: float | None = Field(default=None, ge=0, lt=360)  # degrees, 0 = up, clockwise


class PlanCfg(Strict):
    """The plan image (SVG, PNG or JPEG): a file of the config directory, or an absolute path."""

    image: Path

    @field_validator("image")
    @classmethod
    def _image(cls, v: Path) -> Path:
        if ".." in v.parts or v.suffix.lower() not in PLAN_TYPES:
            raise ValueError("the plan is a .svg, .png or .jpg file, named relative to the config directory (no '..')")
        return v


PLAN_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class ZoneCfg(Strict):
    """A zone of the venue: its name, the ways people and panels write it, the cameras covering it."""

    id: Slug
    name: str = Field(min_length=1, max_length=40)
    aliases: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = ()
    cameras: tuple[Slug, ...] = Field(min_length=1)


class CameraCfg(Strict):
    id: Slug
    name: str = Field(min_length=1, max_length=40)
    url: str | None = None  # rtsp://...; absent means a synthetic camera (demo)
    # the camera's low-resolution stream (most IP cameras offer one): mosaics, room tiles and
    # the data-saving video are drawn from it; the main stream stays for full-quality video
    substream_url: str | None = None
    private: bool = False  # dressing rooms, toilets: never shown to anyone (CSI L251-3, CNIL)
    masks: tuple[Rect, ...] = ()
    ptz: PtzCfg | None = None  # a PTZ camera: steerable during a declared catastrophe only
    at: PlanSpot | None = None  # where it stands on the plan

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: tuple[Rect, ...]) -> tuple[Rect, ...]:
        for x, y, w, h in v:
            if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
                raise ValueError("each mask is [x, y, width, height] as fractions of the image, inside 0..1")
        return v

    @model_validator(mode="after")
    def _substream(self) -> CameraCfg:
        if self.substream_url and not self.url:
            raise ValueError("substream_url needs url (a synthetic camera makes its own substream)")
        if self.ptz is not None and self.url and not self.ptz.onvif:
            raise ValueError("ptz needs onvif = \"http://<camera address>\" (only the demo's synthetic cameras go without)")
        return self


class CamerasFile(Strict):
    camera: tuple[CameraCfg, ...] = Field(min_length=1)
    zone: tuple[ZoneCfg, ...] = ()  # the venue's zones and the cameras covering each
    plan: PlanCfg | None = None  # an optional plan image of the venue


# ---- alarms.toml ----


class AlarmSourceCfg(Strict):
    name: Slug
    label: str = Field(min_length=2)
    confirm: ConfirmRule = ConfirmRule.ANY
    types: dict[str, Slug]
    secret_file: Path | None = None


# ---- SIA DC-09 panels: [sia] receiver and [[panel]] accounts in alarms.toml ----

# A panel's types name a class of events or one exact code (see bot/sia/codes.py).
PANEL_TYPE = re.compile(r"^(hold_up|burglary|CID-\d{3}|SIA-[A-Z]{2})$")


class SiaCfg(Strict):
    """Where the DC-09 receiver listens; the panel's installer enters this address and port."""

    host: str = "0.0.0.0"  # noqa: S104 - panels reach the receiver over the network
    port: int = Field(ge=0, le=65535)  # 0: any free port (tests)
    udp: bool = False  # also listen on UDP, same port
    heartbeat_margin_seconds: int = Field(default=30, ge=0, le=3600)


class PanelCfg(Strict):
    name: Slug  # the alarm source name in the registre and the rooms
    label: str = Field(min_length=2)
    account: str = Field(pattern=r"^[0-9A-Fa-f]{3,16}$")
    # The AES key comes from VIGIE_SIA_KEY_<NAME> or this file; none: the panel reports in clear.
    key_file: Path | None = None
    # "ascii": 16, 24 or 32 characters are the key itself (Ajax's 16-character keys, pysiaalarm);
    # "hex": 32, 48 or 64 hex digits spell the key's bytes (Ajax's 32-HEX keys, most receivers).
    key_format: Literal["ascii", "hex"] = "ascii"
    hold_up_confirm: ConfirmRule = ConfirmRule.NONE  # a hold-up button is a venue request
    alarm_confirm: ConfirmRule = ConfirmRule.ANY  # burglary and other detectors: never "none"
    types: dict[str, Slug] = Field(default_factory=lambda: {"hold_up": "attaque_armee"})
    # the panel's zone (or, failing that, partition) numbers → the venue's zone ids (cameras.toml)
    zones: dict[str, Slug] = Field(default_factory=dict)
    partitions: dict[str, Slug] = Field(default_factory=dict)
    heartbeat_seconds: int = Field(default=0, ge=0, le=86400)  # 0: not supervised
    clock_past_seconds: int = Field(default=40, ge=1, le=3600)
    clock_future_seconds: int = Field(default=20, ge=1, le=3600)

    @field_validator("types")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not PANEL_TYPE.match(key):
                raise ValueError(f"'{key}' is not hold_up, burglary, CID-nnn or SIA-XX (e.g. CID-122, SIA-PA)")
        return v

    @field_validator("alarm_confirm")
    @classmethod
    def _confirmed(cls, v: ConfirmRule) -> ConfirmRule:
        if v is ConfirmRule.NONE:
            raise ValueError('an automatic detector must be confirmed by a person: use "any_authorised" or "counterparty"')
        return v


# ---- end SIA DC-09 panels ----


class AlarmsFile(Strict):
    source: tuple[AlarmSourceCfg, ...] = ()
    sia: SiaCfg | None = None  # SIA DC-09 receiver
    panel: tuple[PanelCfg, ...] = ()  # SIA DC-09 panel accounts


# ---- the whole, after secrets are resolved ----


class AlarmSecret(Strict):
    source: str
    secrets: tuple[SecretStr, ...]  # several while rotating keys


class PanelKey(Strict):  # SIA DC-09
    panel: str
    key: SecretStr


class OnvifPassword(Strict):
    camera: str
    password: SecretStr


class Secrets(Strict):
    link_keys: tuple[SecretStr, ...]  # oldest first; the last one signs
    telegram_token: SecretStr | None = None
    matrix_password: SecretStr | None = None
    alarm: tuple[AlarmSecret, ...] = ()
    sia_keys: tuple[PanelKey, ...] = ()  # SIA DC-09 panels' AES keys
    health_token: SecretStr | None = None  # bearer token of /healthz/details
    onvif: tuple[OnvifPassword, ...] = ()  # PTZ cameras' ONVIF passwords

    def onvif_password(self, camera: str) -> str:
        return next((o.password.get_secret_value() for o in self.onvif if o.camera == camera), "")

    def sia_key(self, panel: str) -> str | None:
        return next((k.key.get_secret_value() for k in self.sia_keys if k.panel == panel), None)

    def alarm_secrets(self, source: str) -> tuple[str, ...]:
        for a in self.alarm:
            if a.source == source:
                return tuple(s.get_secret_value() for s in a.secrets)
        return ()


class Settings(Strict):
    config_dir: Path
    vigie: VigieFile
    convention: ConventionFile
    roster: RosterFile
    cameras: CamerasFile
    alarms: AlarmsFile
    secrets: Secrets

    def zone_map(self) -> ZoneMap:
        return ZoneMap(tuple(Zone(z.id, z.name, z.cameras, z.aliases) for z in self.cameras.zone))

    def camera_names(self) -> dict[str, str]:
        return {c.id: c.name for c in self.cameras.camera}
