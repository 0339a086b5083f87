"""A real Synapse on loopback for the Matrix tests.

Synapse lives in its own virtualenv (``scripts/synapse/install.sh`` -> ``<repo>/.venv-synapse``) and
runs as a subprocess: SQLite, one plain-HTTP client listener on 127.0.0.1, no federation listener and
an empty federation whitelist, presence off, open registration off, users made through the
shared-secret admin API, ``bcrypt_rounds: 4`` and every rate limit raised out of the way.

Only the standard library is used here (config written as JSON, which is valid YAML), so this module
runs in the project venv without PyYAML.

Manual use (a throwaway server for poking at it with a client)::

    .venv/bin/python tests/matrix/synapse_server.py [DATADIR] [--port N]
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = "vigie.test"


def default_venv() -> Path:
    return Path(os.environ.get("VIGIE_SYNAPSE_VENV") or REPO_ROOT / ".venv-synapse")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Every limiter that a test can plausibly hit, raised far out of the way (names checked against
# synapse/config/ratelimiting.py of the pinned 1.163.2).
_UNLIMITED = {"per_second": 100_000, "burst_count": 100_000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
}


def homeserver_config(datadir: Path, port: int, registration_shared_secret: str) -> dict[str, Any]:
    """The homeserver.yaml contents (as a dict) for a test server whose files all live in ``datadir``."""
    return {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(datadir / "homeserver.pid"),
        "report_stats": False,
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(datadir / "homeserver.db")}},
        "log_config": str(datadir / "log.config"),
        "media_store_path": str(datadir / "media_store"),
        "signing_key_path": str(datadir / "signing.key"),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "enable_registration": False,
        "registration_shared_secret": registration_shared_secret,
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "bcrypt_rounds": 4,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "enable_authenticated_media": True,
        "max_upload_size": "50M",
        "allow_guest_access": False,
        # A fresh SQLite database has background updates to run: do them at once, no sleeping.
        "background_updates": {"sleep_enabled": False, "background_update_duration_ms": 500},
        **RATE_LIMITS,
    }


def log_config(logfile: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(logfile), "formatter": "plain"}
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def signing_key_line() -> str:
    """An ed25519 signing key in Synapse's file format (what signedjson.key.write_signing_keys writes):
    ``ed25519 <version> <unpadded base64 of the 32-byte seed>``."""
    seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"ed25519 a_{secrets.token_hex(2)} {seed}\n"


class SynapseError(RuntimeError):
    pass


@dataclass(frozen=True)
class User:
    localpart: str
    user_id: str
    password: str
    access_token: str
    device_id: str
    admin: bool


@dataclass
class Synapse:
    """One Synapse subprocess with its data in ``datadir`` (config, SQLite, media, signing key, logs).

    ``stop()``/``start()``/``restart()`` keep the port and the data, so clients reconnect to the same
    server with the same accounts, rooms and sync tokens.
    """

    datadir: Path
    venv: Path = field(default_factory=default_venv)
    port: int = field(default_factory=free_port)
    start_timeout: float = 30.0
    stop_timeout: float = 15.0
    registration_shared_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _users: dict[str, User] = field(default_factory=dict, init=False, repr=False)
    admin: User | None = field(default=None, init=False)
    last_start_seconds: float = field(default=0.0, init=False)
    last_stop_seconds: float = field(default=0.0, init=False)

    server_name = SERVER_NAME

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.datadir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        """Synapse's own log (WARNING and up)."""
        return self.datadir / "homeserver.log"

    @property
    def console_path(self) -> Path:
        """The subprocess's stdout/stderr (start-up errors land here)."""
        return self.datadir / "console.log"

    @property
    def admin_token(self) -> str:
        if self.admin is None:
            self.admin = self.register("admin", admin=True)
        return self.admin.access_token

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- lifecycle -------------------------------------------------------------------------------

    def write_config(self) -> None:
        """Write config, log config and signing key, once: later calls keep the existing files."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        (self.datadir / "media_store").mkdir(exist_ok=True)
        key = self.datadir / "signing.key"
        if not key.exists():
            key.write_text(signing_key_line())
            key.chmod(0o600)
        if not self.config_path.exists():
            cfg = homeserver_config(self.datadir, self.port, self.registration_shared_secret)
            self.config_path.write_text(json.dumps(cfg, indent=2) + "\n")
            (self.datadir / "log.config").write_text(json.dumps(log_config(self.log_path), indent=2) + "\n")

    def start(self) -> None:
        if self.running:
            return
        if not self.python.exists():
            raise SynapseError(f"no Synapse venv at {self.venv}: run scripts/synapse/install.sh")
        self.write_config()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        t0 = time.monotonic()
        with self.console_path.open("ab") as console:
            self._proc = subprocess.Popen(
                [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.datadir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest does not hit Synapse first
            )
        try:
            self._wait_ready(t0 + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        url = f"{self.base_url}/_matrix/client/versions"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SynapseError(f"Synapse exited with {self._proc.returncode}\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback http)
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise SynapseError(f"Synapse not ready on {url} after {self.start_timeout} s\n{self.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        t0 = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.last_stop_seconds = time.monotonic() - t0

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, n: int = 40) -> str:
        out = []
        for p in (self.console_path, self.log_path):
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- {p.name} ---\n" + "\n".join(lines))
        return "\n".join(out)

    def __enter__(self) -> Synapse:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 10
    ) -> tuple[int, Any]:
        """A JSON request to the server; returns (status, decoded body), errors included."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback http)
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def admin_request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request to the admin API (``path`` below ``/_synapse/admin``) as the admin user."""
        return self.request(method, "/_synapse/admin" + path, body, token=self.admin_token)

    def register(self, localpart: str, admin: bool = False, password: str | None = None) -> User:
        """Create a user through the shared-secret registration API (``/_synapse/admin/v1/register``)."""
        password = password or secrets.token_urlsafe(16)
        status, body = self.request("GET", "/_synapse/admin/v1/register")
        if status != 200:
            raise SynapseError(f"register nonce: {status} {body}")
        nonce = body["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode()]))
        mac.update(b"\x00admin" if admin else b"\x00notadmin")
        status, body = self.request(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        if status != 200:
            raise SynapseError(f"register {localpart}: {status} {body}")
        user = User(localpart, body["user_id"], password, body["access_token"], body["device_id"], admin)
        self._users[localpart] = user
        return user

    def unique_localpart(self, prefix: str) -> str:
        n = 1
        while f"{prefix}{n}" in self._users:
            n += 1
        return f"{prefix}{n}"


def main(argv: list[str]) -> int:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="Run a throwaway test Synapse until Ctrl-C.")
    ap.add_argument("datadir", nargs="?", type=Path)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    datadir = args.datadir or Path(tempfile.mkdtemp(prefix="vigie-synapse-"))
    server = Synapse(datadir.resolve(), port=args.port or free_port())
    with server:
        admin_token = server.admin_token
        print(f"Synapse up in {server.last_start_seconds:.2f} s at {server.base_url} (data in {datadir})")
        print(f"admin @admin:{SERVER_NAME} password {server.admin.password if server.admin else '?'}")
        print(f"admin token {admin_token}")
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
