"""Command line: run [--console PERSON] | console | demo | check-config | audit verify|export|backup | enrol |
passkeys list|revoke | hash-password | new-secrets | print-unit."""

from __future__ import annotations

import argparse
import base64
import getpass
import logging
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from aiohttp import web

from . import passkeys_cli
from .app import StorageError, build_app
from .audit_cli import export_command, verify_command
from .config_load import ConfigError, build_convention, load_settings, resolve_data_dir
from .console import ConsoleOptions
from .locales import Msg, t
from .logs import JsonFormatter, RedactingAccessLogger, install_redaction
from .loops import new_event_loop
from .settings import Settings
from .sia import sender as sia_sender

logger = logging.getLogger("bot")


def _logging(verbose: bool, quiet: bool = False, log_format: str = "text") -> None:
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_format == "json":  # one object per line, for journald's or a collector's parser
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    # The Telegram token is part of every Bot API URL: these libraries must never log URLs.
    for noisy in ("httpx", "httpcore", "telegram", "apscheduler", "nio", "peewee"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # Link tokens are bearer credentials in URLs: no record, from any library, may print one.
    install_redaction()


def _stop_self() -> None:
    """End of console input: ask run_app for the same graceful stop as Ctrl-C."""
    signal.raise_signal(signal.SIGINT)


def _console_closed(lang: str) -> Callable[[], None]:
    """End of console input without --console-exit: the service, and the other rooms, carry on."""
    def closed() -> None:
        print(t(lang, Msg.CLI_CONSOLE_EOF), file=sys.stderr, flush=True)

    return closed


def _run_console(args: argparse.Namespace, settings: Settings) -> ConsoleOptions | str:
    """The console room of ``run --console PERSON``, or the one-line reason it is refused."""
    lang = settings.vigie.service.language
    conv = build_convention(settings)
    person = conv.person(args.console)
    if person is None:
        return t(lang, Msg.CLI_CONSOLE_UNKNOWN, person=args.console)
    if not conv.may_command(person):
        return t(lang, Msg.CLI_CONSOLE_NO_ROLE, person=person.id, role=person.role.value)
    print(t(lang, Msg.CLI_CONSOLE_READY, name=person.name, person=person.id), flush=True)
    return ConsoleOptions(person.id, sys.stdin, sys.stdout, _stop_self if args.console_exit else _console_closed(lang))


def cmd_run(args: argparse.Namespace) -> int:
    _logging(args.verbose, log_format=args.log_format)
    try:
        settings = load_settings(Path(args.config), os.environ, date.today())
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    console = _run_console(args, settings) if args.console else None
    if isinstance(console, str):
        print(console, file=sys.stderr)
        return 2
    try:
        app = build_app(settings, resolve_data_dir(settings), console=console)
    except StorageError as exc:
        print(f"Vigie cannot start: {exc}", file=sys.stderr)
        return 2
    svc = settings.vigie.service
    web.run_app(app, host=svc.host, port=svc.port, access_log_class=RedactingAccessLogger,
                shutdown_timeout=2.0, print=None, loop=new_event_loop())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import CONSOLE_PERSON, banner, build_demo, localhost, with_matrix

    _logging(args.verbose, quiet=not args.verbose, log_format=args.log_format)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="vigie-demo-"))
    try:
        demo = build_demo(args.port, args.cameras, date.today(), sia_port=args.sia_port, admin_port=args.admin_port,
                          venue_code=args.venue_code)
        if args.matrix:
            demo = with_matrix(demo, Path(args.matrix), os.environ)
    except (ValueError, OSError) as exc:  # pydantic's ValidationError and TOML errors are ValueErrors
        print(f"Vigie cannot start the demo: {exc}", file=sys.stderr)
        return 2
    if args.localhost:  # a passkey's relying party must be a domain name, not 127.0.0.1
        demo = localhost(demo, args.port)
    console = ConsoleOptions(CONSOLE_PERSON, sys.stdin, sys.stdout, _stop_self)
    try:
        app = build_app(demo.settings, data_dir, console=console)
    except StorageError as exc:
        print(f"Vigie cannot start: {exc}", file=sys.stderr)
        return 2
    print(banner(demo, args.port, data_dir), flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log_class=RedactingAccessLogger,
                shutdown_timeout=2.0, print=None, loop=new_event_loop())
    print("Démo arrêtée. Registre :", data_dir / "registre.sqlite3", flush=True)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from .console_socket import SOCKET_NAME, attach

    try:
        settings = load_settings(Path(args.config), os.environ, date.today())
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Mot de passe : ")
    return attach(resolve_data_dir(settings) / SOCKET_NAME, args.person, password, sys.stdin, sys.stdout,
                  settings.vigie.service.language)


def cmd_backup(args: argparse.Namespace) -> int:
    from .locales import bilingual
    from .ops.backup import BackupError, backup

    venue = None  # with --data-dir alone, the registre's own venue (bot.ops.backup)
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        try:
            settings = load_settings(Path(args.config), os.environ, date.today())
        except ConfigError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return 2
        data_dir, venue = resolve_data_dir(settings), settings.vigie.service.venue_code
    dest = Path(args.dest)
    if dest.exists() and any(dest.iterdir()):
        print(bilingual(Msg.CLI_BACKUP_EXISTS, path=dest), file=sys.stderr)
        return 2
    try:
        result = backup(data_dir, dest, actor=f"backup:{getpass.getuser()}", venue=venue)
    except (BackupError, OSError, ValueError, sqlite3.Error) as exc:
        print(bilingual(Msg.CLI_BACKUP_FAILED, error=exc), file=sys.stderr)
        return 1
    print(bilingual(Msg.CLI_BACKUP_OK, dest=result.dest, count=result.count, head=result.head))
    return 0


def cmd_print_unit(args: argparse.Namespace) -> int:
    from .ops.unit import UnitOptions, render_unit

    try:
        print(render_unit(UnitOptions(args.user, args.config_dir, args.data_dir, args.executable)), end="")
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .passkeys_cli import orphans

    try:
        settings = load_settings(Path(args.config), os.environ, date.today())
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    for line in orphans(settings):  # refused anyway: a warning, not a reason to keep the service down
        print(line)
    print("OK")
    return 0


def cmd_hash(_: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    first = getpass.getpass("Mot de passe personnel : ")
    if len(first) < 12:
        print("Refusé : au moins 12 caractères (recommandation CNIL).", file=sys.stderr)
        return 2
    if getpass.getpass("Confirmez : ") != first:
        print("Refusé : les deux saisies diffèrent.", file=sys.stderr)
        return 2
    print(PasswordHasher().hash(first))
    return 0


def cmd_secrets(_: argparse.Namespace) -> int:
    print("VIGIE_LINK_KEYS=" + secrets.token_urlsafe(32))
    print("webhook secret: whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    print("VIGIE_HEALTH_TOKEN=" + secrets.token_urlsafe(32))
    return 0


def _log_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: one object per line (time, level, logger, message, incident)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vigie", description="Vigie: police live view of a venue's cameras.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the service from a config directory")
    r.add_argument("--config", default="config")
    r.add_argument("--console", metavar="PERSON",
                   help="also a console room on stdin/stdout, typed into as this roster person (commissioning, "
                        "or when the chat services are down)")
    r.add_argument("--console-exit", action="store_true", help="end of console input stops the service")
    _log_format(r)
    r.set_defaults(fn=cmd_run)
    k = sub.add_parser("console", help="attach a console room to the running service (local socket)")
    k.add_argument("--config", default="config")
    k.add_argument("--as", dest="person", required=True, metavar="PERSON", help="a roster person who may use commands")
    k.add_argument("--password-stdin", action="store_true", help="read the personal password from the first line of stdin")
    k.set_defaults(fn=cmd_console)
    d = sub.add_parser("demo", help="the demo on embedded defaults, with a console room")
    d.add_argument("--port", type=int, default=8080)
    d.add_argument("--data-dir")
    d.add_argument("--cameras", type=int, default=20)
    d.add_argument("--sia-port", type=int, default=None,
                   help="port of the demo panel's DC-09 receiver (default: a free port, shown in the banner; 0: none)")
    d.add_argument("--admin-port", type=int, default=None, help="serve /metrics and the detailed health here")
    d.add_argument("--venue-code", default=None, help="this demo venue's short code (a second venue: its own "
                   "--port, --data-dir and code)")
    d.add_argument("--matrix", metavar="FILE", help="join a Matrix room: a TOML file with a [matrix] table as in "
                   "vigie.toml and [roster] matrix_ids; password in VIGIE_MATRIX_PASSWORD")
    d.add_argument("--localhost", action="store_true",
                   help="links on http://localhost:PORT instead of 127.0.0.1 (to try a passkey in a desktop browser)")
    _log_format(d)
    d.set_defaults(fn=cmd_demo)
    c = sub.add_parser("check-config", help="validate a config directory and its secrets")
    c.add_argument("--config", default="config")
    c.set_defaults(fn=cmd_check)
    a = sub.add_parser("audit", help="the registre: verify the chain or export an incident")
    asub = a.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify")
    v.add_argument("--db", required=True)
    v.add_argument("--anchor", action="append", default=[],
                   help="registre hash printed in a closure report (repeatable): must still be in the chain")
    v.set_defaults(fn=lambda ns: verify_command(Path(ns.db), sys.stdout, ns.anchor))
    e = asub.add_parser("export")
    e.add_argument("--db", required=True)
    e.add_argument("--incident", required=True)
    e.add_argument("--text", action="store_true", help="readable timeline instead of JSON")
    e.add_argument("--lang", choices=("fr", "en"), default="fr")
    e.set_defaults(fn=lambda ns: export_command(Path(ns.db), ns.incident, ns.text, ns.lang, sys.stdout))
    b = asub.add_parser("backup", help="online copy of the registre and state into DEST (verified, recorded)")
    b.add_argument("dest", help="a new or empty directory; the copies are written 0600")
    b.add_argument("--config", default="config", help="config directory, to find the data directory")
    b.add_argument("--data-dir", help="the data directory itself (instead of --config)")
    b.set_defaults(fn=cmd_backup)
    passkeys_cli.add_commands(sub)
    u = sub.add_parser("print-unit", help="print the hardened systemd unit for this machine")
    u.add_argument("--user", default="vigie")
    u.add_argument("--config-dir", default="/etc/vigie")
    u.add_argument("--data-dir", default="/var/lib/vigie")
    u.add_argument("--executable", default="/opt/vigie/venv/bin/vigie", help="the installed vigie command")
    u.set_defaults(fn=cmd_print_unit)
    h = sub.add_parser("hash-password", help="argon2 hash of a personal password, for roster.toml")
    h.set_defaults(fn=cmd_hash)
    s = sub.add_parser("new-secrets", help="print a fresh link signing key and webhook secret")
    s.set_defaults(fn=cmd_secrets)
    t = sub.add_parser("sia-send", help="send one SIA DC-09 event to a receiver, as an alarm panel would",
                       description="Send one DC-09 event, as a panel would: test a receiver before touching a panel.")
    sia_sender.add_arguments(t)
    t.set_defaults(fn=sia_sender.run)
    args = p.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
