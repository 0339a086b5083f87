"""The Matrix login that must survive a restart: access token and device id, in the store directory.

nio's store keeps the Olm/Megolm keys and the sync token but not the access token, and a new
password login on every start would pile up server-side sessions. So the token is kept here, in
``session.json`` beside nio's database, readable by the bot's user only (mode 0600 in a 0700
directory), written atomically so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nio
from pydantic import SecretStr

from ..settings import MatrixCfg

logger = logging.getLogger(__name__)

SESSION_FILE = "session.json"
_TOKEN_REFUSED = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")


class LoginFailed(RuntimeError):
    """No usable session: the sync loop backs off and tries again."""


@dataclass(frozen=True)
class SavedSession:
    homeserver: str
    user_id: str
    device_id: str
    access_token: str = field(repr=False)

    def matches(self, homeserver: str, user_id: str, device_id: str) -> bool:
        return (self.homeserver.rstrip("/"), self.user_id, self.device_id) == (homeserver.rstrip("/"), user_id, device_id)


def secure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def load_session(store_dir: Path) -> SavedSession | None:
    path = store_dir / SESSION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SavedSession(str(data["homeserver"]), str(data["user_id"]), str(data["device_id"]),
                            str(data["access_token"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # An unreadable file only costs a password login; never crash the bot over it.
        logger.warning("matrix: ignoring unreadable %s (%s)", path, type(exc).__name__)
        return None


def save_session(store_dir: Path, session: SavedSession) -> None:
    secure_dir(store_dir)
    path = store_dir / SESSION_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(session), f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)  # an older file created with another umask keeps no wider mode
    os.replace(tmp, path)


def forget_session(store_dir: Path) -> None:
    (store_dir / SESSION_FILE).unlink(missing_ok=True)


async def login(client: Any, cfg: MatrixCfg, password: SecretStr | None, store_dir: Path) -> None:
    """Resume the saved session if the server still takes its token, else log in with the password."""
    saved = load_session(store_dir)
    if saved is not None and saved.matches(cfg.homeserver, cfg.user_id, cfg.device_id):
        client.restore_login(saved.user_id, saved.device_id, saved.access_token)  # also loads nio's store
        who = await client.whoami()
        if isinstance(who, nio.WhoamiResponse) and who.user_id == cfg.user_id:
            logger.info("matrix: resumed session of %s, device %s", cfg.user_id, cfg.device_id)
            return
        if not (isinstance(who, nio.ErrorResponse) and who.status_code in _TOKEN_REFUSED):
            raise LoginFailed(f"whoami: {who}")  # the server is down, not the token: keep it
        logger.warning("matrix: saved access token refused, logging in again")
        forget_session(store_dir)
    if password is None:
        raise LoginFailed("no valid saved session and no password (VIGIE_MATRIX_PASSWORD)")
    resp = await client.login(password.get_secret_value(), device_name="Vigie")
    if not isinstance(resp, nio.LoginResponse):
        raise LoginFailed(f"login as {cfg.user_id}: {resp}")
    if resp.device_id != cfg.device_id:
        logger.warning("matrix: the server gave device %s instead of %s", resp.device_id, cfg.device_id)
    save_session(store_dir, SavedSession(cfg.homeserver, cfg.user_id, str(resp.device_id), str(resp.access_token)))
    logger.info("matrix: logged in as %s, device %s", cfg.user_id, resp.device_id)


def token_refused(resp: Any) -> bool:
    return isinstance(resp, nio.ErrorResponse) and resp.status_code in _TOKEN_REFUSED
