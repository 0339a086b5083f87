"""``vigie enrol PERSON`` and ``vigie passkeys list|revoke``: passkeys from the server's terminal.

Run as the service user, beside the running service (both open ``state.sqlite3`` and the registre
in WAL mode; each write is one short transaction). Everything done here is recorded in the
registre with the operator's login name; an enrolment link is printed once, never logged.
``orphans`` is ``check-config``'s look at the passkeys of people no longer on the roster.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from .app import private_data_dir
from .audit import Registre
from .config_load import ConfigError, build_convention, load_settings, resolve_data_dir
from .kinds import Kind
from .locales import Msg, t
from .passkey_store import PasskeyStore
from .passkeys import ENROL_TTL, MAX_ENROL_TTL, issue_enrolment
from .policy.convention import Convention
from .settings import LOOPBACK_HOSTS, Settings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("enrol", help="print a one-time link that registers a passkey for a roster person")
    e.add_argument("person")
    _where(e)
    e.add_argument("--public-url", help="with --data-dir: the service's public URL (the demo)")
    e.add_argument("--minutes", type=int, default=int(ENROL_TTL.total_seconds() // 60),
                   help="how long the link stays valid (default 15, at most 1440)")
    e.set_defaults(fn=cmd_enrol)
    p = sub.add_parser("passkeys", help="list or revoke passkeys")
    psub = p.add_subparsers(dest="passkeys_command", required=True)
    ls = psub.add_parser("list", help="every passkey, or one person's")
    ls.add_argument("person", nargs="?")
    _where(ls)
    ls.set_defaults(fn=cmd_list)
    rv = psub.add_parser("revoke", help="revoke a person's passkeys (a lost phone): they open nothing any more")
    rv.add_argument("person")
    rv.add_argument("--id", dest="credential", help="only this passkey (its id as `passkeys list` shows it)")
    _where(rv)
    rv.set_defaults(fn=cmd_revoke)


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config", help="config directory (roster, public URL, data directory)")
    p.add_argument("--data-dir", help="the data directory itself, without a config (the demo)")


class _Ctx:
    """What a command needs: the data directory, and the config when there is one."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.settings: Settings | None = None
        self.conv: Convention | None = None
        if args.data_dir:
            self.data_dir = Path(args.data_dir)
            self.lang = "fr"
        else:
            self.settings = load_settings(Path(args.config), os.environ, date.today())
            self.conv = build_convention(self.settings)
            self.data_dir = resolve_data_dir(self.settings)
            self.lang = self.settings.vigie.service.language
        self.actor = f"cli:{getpass.getuser()}"

    def open(self) -> tuple[PasskeyStore, Registre]:
        """Both files, created (0700 directory, 0600 files) if the service never ran yet."""
        private_data_dir(self.data_dir)
        venue = self.settings.vigie.service.venue_code if self.settings else None  # on every record it writes
        return PasskeyStore(self.data_dir / "state.sqlite3"), Registre(self.data_dir / "registre.sqlite3", venue=venue)


def _run(args: argparse.Namespace) -> _Ctx | int:
    try:
        return _Ctx(args)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2


def cmd_enrol(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ctx = _run(args)
    if isinstance(ctx, int):
        return ctx
    public_url = ctx.settings.vigie.service.public_url if ctx.settings else (args.public_url or "")
    parts = urlsplit(public_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS - {"::1"}):
        print(t(ctx.lang, Msg.CLI_ENROL_NO_HTTPS, url=public_url or "?"), file=sys.stderr)
        return 2
    name = args.person
    if ctx.conv is not None:
        person = ctx.conv.person(args.person)
        if person is None:
            print(t(ctx.lang, Msg.CLI_ENROL_UNKNOWN, person=args.person), file=sys.stderr)
            return 2
        if not ctx.conv.may_view(person):
            print(t(ctx.lang, Msg.CLI_ENROL_NOT_VIEWER, person=person.id), file=sys.stderr)
            return 2
        name = person.name
    ttl = min(MAX_ENROL_TTL, timedelta(minutes=max(1, args.minutes)))
    now = datetime.now(UTC)
    keys, registre = ctx.open()
    try:
        url = issue_enrolment(keys, registre, args.person, public_url, now, ttl, ctx.actor)
    finally:
        keys.close()
        registre.close()
    until = (now + ttl).astimezone().strftime("%d/%m/%Y %H:%M")
    print(t(ctx.lang, Msg.CLI_ENROL_LINK, name=name, person=args.person, until=until, url=url), file=out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ctx = _run(args)
    if isinstance(ctx, int):
        return ctx
    keys, registre = ctx.open()
    try:
        found = keys.all(args.person)
    finally:
        keys.close()
        registre.close()
    if not found:
        print(t(ctx.lang, Msg.CLI_PASSKEYS_NONE), file=out)
    for k in found:
        state = (t(ctx.lang, Msg.CLI_PASSKEY_ACTIVE) if k.active else
                 t(ctx.lang, Msg.CLI_PASSKEY_REVOKED, at=_day(k.revoked_at), why=k.revoked_why or "?"))
        print(t(ctx.lang, Msg.CLI_PASSKEY_LINE, person=k.person, id=k.id, label=k.label, created=_day(k.created_at),
                used=_day(k.last_used_at) if k.last_used_at else t(ctx.lang, Msg.CLI_PASSKEY_NEVER),
                state=state), file=out)
    return 0


def cmd_revoke(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ctx = _run(args)
    if isinstance(ctx, int):
        return ctx
    keys, registre = ctx.open()
    try:
        now = datetime.now(UTC)
        ids = keys.revoke(args.person, now, "revoked", args.credential)
        # A session the lost phone opened would outlive its passkey: the person signs in again.
        ended = keys.end_sessions(args.person) if ids else 0
        if ids:
            registre.append(Kind.PASSKEY_REVOKED, actor=ctx.actor, at=now,
                            details={"person": args.person, "passkeys": [i[:16] for i in ids], "sessions_ended": ended})
    finally:
        keys.close()
        registre.close()
    print(t(ctx.lang, Msg.CLI_PASSKEYS_REVOKED, n=len(ids), person=args.person, sessions=ended), file=out)
    return 0


def _day(when: datetime | None) -> str:
    return when.astimezone().strftime("%d/%m/%Y %H:%M") if when else "?"


def orphans(settings: Settings) -> list[str]:
    """``check-config``: one line per person no longer on the roster who still has active passkeys.
    Reads the state file without writing to it (a missing file or table: nothing to say)."""
    path = resolve_data_dir(settings) / "state.sqlite3"
    if not path.exists():
        return []
    roster = {p.id for p in build_convention(settings).roster}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT person, count(*) FROM passkeys WHERE revoked_at IS NULL GROUP BY person").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    lang = settings.vigie.service.language
    return [t(lang, Msg.CLI_PASSKEY_ORPHANS, n=n, person=person) for person, n in rows if person not in roster]
