"""The SIA DC-09 receiver: the venue's intrusion and hold-up panel reports straight to Vigie.

The panel's installer adds Vigie as a second receiver (see the README, "Alarm panels (SIA DC-09)"). Each frame that
arrives, over TCP or UDP, goes through ``sia_frame.read`` (frame, length, CRC, account,
encryption, clock window, data), then through the replay memory, and gets the answer the
protocol calls for. Every event of an accepted message (a message may carry several) is mapped
(``sia_codes``) to an alarm type of one of the panel's alarm sources and handed to the desk as
an ``AlarmIn``, exactly as the webhook does: the convention decides. An accepted message is one
``sia_message`` record per event (its outcome: opened, joined, restore, malformed…), a refused
one a ``sia_refused`` record with its reason; no frame, however malformed, stops the receiver.

Supervision: a panel with ``heartbeat_seconds`` must send something (a NULL link test, a periodic
test, any event) at least that often. Silent for that plus the margin, the rooms are told; told
again when it is back. Only accepted messages count as signs of life, and on an account with a
key only encrypted ones are accepted: a plain NULL cannot keep a cut panel "alive".

TCP connections are admitted and timed out by ``connections`` (idle and slow sockets cannot
starve a hold-up); datagrams are handled each on its own. The listening sockets, every
connection and every datagram being handled are owned here and closed or cancelled by ``stop``;
the supervision check is a job on the desk's scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from aiohttp import web
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from ..alarm import AlarmIn
from ..desk_port import DeskPort
from ..kinds import Kind
from ..locales import Msg, phrase
from ..policy.zones import panel_zone
from ..settings import Settings
from . import codes as sia_codes
from . import frame as sia_frame
from .codes import PanelEvent
from .connections import Connection, Limits, Pool
from .events import Malformed
from .frame import Answer, Reason, Refusal

logger = logging.getLogger(__name__)

JOB_ID = "sia:supervision"
MAX_PENDING_DATAGRAMS = 256
BACKLOG = 512
MAX_REPLAY_MEMORY = 10_000


@dataclass(frozen=True)
class PanelAccount:
    name: str  # alarm source name, e.g. "centrale-zenith"
    label: str
    account: str  # upper-case hex
    key: bytes | None = field(repr=False)
    types: Mapping[str, str]
    heartbeat: timedelta | None  # None: not supervised
    max_past: float = 40.0  # seconds a timestamp may lag our clock
    max_future: float = 20.0  # seconds it may run ahead
    zones: Mapping[str, str] = field(default_factory=dict)  # panel zone number -> venue zone id
    partitions: Mapping[str, str] = field(default_factory=dict)

    @property
    def replay_memory(self) -> timedelta:
        # Past the clock window an exact replay is refused by its timestamp; a panel retransmits within seconds.
        return timedelta(seconds=max(60.0, self.max_past + self.max_future))


@dataclass(frozen=True)
class ReceiverConfig:
    host: str
    port: int
    udp: bool
    margin: timedelta
    panels: tuple[PanelAccount, ...]


def receiver_config(settings: Settings) -> ReceiverConfig | None:
    """The receiver described by ``alarms.toml``, or None when no panel is configured."""
    sia, panels = settings.alarms.sia, settings.alarms.panel
    if sia is None or not panels:
        return None
    accounts = []
    for p in panels:
        key = settings.secrets.sia_key(p.name)
        accounts.append(PanelAccount(
            name=p.name,
            label=p.label,
            account=p.account.upper(),
            key=(bytes.fromhex(key) if p.key_format == "hex" else key.encode("ascii")) if key else None,
            types=dict(p.types),
            heartbeat=timedelta(seconds=p.heartbeat_seconds) if p.heartbeat_seconds else None,
            max_past=float(p.clock_past_seconds),
            max_future=float(p.clock_future_seconds),
            zones=dict(p.zones), partitions=dict(p.partitions),
        ))
    return ReceiverConfig(sia.host, sia.port, sia.udp, timedelta(seconds=sia.heartbeat_margin_seconds), tuple(accounts))


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver: SiaReceiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (the selector one does not subclass DatagramTransport).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.receiver.datagram(data, addr, self.transport)


class SiaReceiver:
    def __init__(self, config: ReceiverConfig, desk: DeskPort, clock: Callable[[], datetime],
                 scheduler: BaseScheduler, limits: Limits | None = None) -> None:
        self.config = config
        self.desk = desk
        self.scheduler = scheduler  # supervision of silent panels
        self.clock = clock
        self._panels = {p.account: p for p in config.panels}
        self._keys = {p.account: p.key for p in config.panels}
        self._window = {p.account: (p.max_past, p.max_future) for p in config.panels}
        self._last_seen: dict[str, datetime] = {}
        self._silent: set[str] = set()
        self._recent: dict[tuple[str, str, str, str, str], datetime] = {}  # replay key → forget after
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.pool = Pool(limits or _limits(config))
        self._datagrams: set[asyncio.Task[None]] = set()
        self.port = 0  # the bound port, once started
        self._closing = False

    # ---------- lifecycle ----------

    async def start(self) -> None:
        now = self.clock()
        self._closing = False
        # After a restart a panel gets a whole interval before it is called silent.
        self._last_seen = {p.account: now for p in self.config.panels}
        host, port = self.config.host, self.config.port
        try:
            # A deep accept queue: a burst of connections must reach ``connections``, which makes room.
            self._server = await asyncio.start_server(self._connection, host, port, backlog=BACKLOG)
            self.port = int(self._server.sockets[0].getsockname()[1])
            if self.config.udp:
                loop = asyncio.get_running_loop()
                self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self),
                                                                   local_addr=(host, self.port))
        except OSError as exc:
            await self.stop()
            raise RuntimeError(
                f"the SIA DC-09 receiver cannot listen on {host}:{port} ({exc.strerror or exc}) — "
                "change [sia] port in alarms.toml or free that port"
            ) from exc
        supervised = [p.heartbeat for p in self.config.panels if p.heartbeat is not None]
        if supervised:
            every = min(30.0, max(1.0, min(supervised).total_seconds() / 4))
            self.scheduler.add_job(self._supervise_job, "interval", seconds=every, id=JOB_ID,
                                        replace_existing=True, coalesce=True, max_instances=1)
        logger.info("SIA DC-09 receiver listening on %s:%d (TCP%s), %d panel account(s)", host, self.port,
                    " and UDP" if self._udp else "", len(self.config.panels))

    async def stop(self) -> None:
        self._closing = True  # a connection accepted just before the close must not start its loop
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(JOB_ID)
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        tasks = self._connections | self._datagrams
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ---------- transports ----------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else "?"
        loop = asyncio.get_running_loop()
        conn = Connection(client, writer.transport, loop.time())
        if self._closing or task is None or not self.pool.admit(conn):
            logger.warning("SIA connection from %s refused: %d connections open, all busy", client, len(self.pool))
            writer.close()
            return
        self._connections.add(task)
        limits = self.pool.limits
        buf = bytearray()
        deadline = 0.0  # when the frame being received must be complete
        try:
            while True:
                wait = deadline - loop.time() if buf else conn.idle_timeout(limits)
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), max(wait, 0.0))
                except TimeoutError:
                    logger.info("SIA connection from %s closed: %s", client, "frame incomplete" if buf else "idle")
                    break
                if not chunk:
                    break
                conn.last = loop.time()
                if not buf:
                    deadline = conn.last + limits.frame_time
                buf += chunk
                # A panel may send several frames before reading our answers: each ends with CR.
                while (end := buf.find(b"\r")) >= 0:
                    raw = bytes(buf[: end + 1])
                    del buf[: end + 1]
                    if raw.strip():
                        await self._answer(conn, writer, raw)
                    deadline = loop.time() + limits.frame_time
                if len(buf) > sia_frame.MAX_FRAME:
                    await self._answer(conn, writer, bytes(buf))  # refused: too long
                    buf.clear()
        except (ConnectionError, OSError) as exc:
            logger.info("SIA connection from %s lost: %s", client, exc)
        except asyncio.CancelledError:
            # Only stop() cancels us. Ending normally matters: Python 3.11's start_server logs a
            # cancelled connection task as an "unhandled exception".
            pass
        finally:
            self.pool.remove(conn)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, conn: Connection, writer: asyncio.StreamWriter, raw: bytes) -> None:
        conn.busy = True  # not evicted while its frame is handled and answered
        try:
            reply, accepted = await self._frame(raw, conn.client, "tcp")
            conn.known = conn.known or accepted
            writer.write(reply)
            await writer.drain()
        finally:
            conn.busy = False

    def datagram(self, data: bytes, addr: tuple[str | Any, int], transport: asyncio.DatagramTransport) -> None:
        if self._closing:
            return
        if len(self._datagrams) >= MAX_PENDING_DATAGRAMS:
            logger.warning("SIA datagram from %s dropped: %d already being handled", addr[0], MAX_PENDING_DATAGRAMS)
            return
        task = asyncio.get_running_loop().create_task(self._datagram(data, addr, transport))
        self._datagrams.add(task)
        task.add_done_callback(self._datagrams.discard)

    async def _datagram(self, data: bytes, addr: tuple[str | Any, int], transport: asyncio.DatagramTransport) -> None:
        reply = await self.handle_frame(data, str(addr[0]), "udp")
        if not transport.is_closing():
            transport.sendto(reply, addr)

    # ---------- one frame ----------

    async def handle_frame(self, raw: bytes, client: str, transport: str = "tcp") -> bytes:
        """Check, act on and record one frame; return the answer for the panel. Never raises."""
        return (await self._frame(raw, client, transport))[0]

    async def _frame(self, raw: bytes, client: str, transport: str) -> tuple[bytes, bool]:
        """The answer, and whether the message was accepted."""
        now = self.clock()
        try:
            return await self._handle(raw, client, transport, now)
        except Exception:
            # Even the registre failing must not silence the receiver: the panel retries on a NAK.
            logger.exception("SIA frame from %s could not be handled", client)
            return sia_frame.nak(now), False

    async def _handle(self, raw: bytes, client: str, transport: str, now: datetime) -> tuple[bytes, bool]:
        try:
            msg = sia_frame.read(raw, self._keys, now, self._window)
            panel = self._panels[msg.header.account]
            if msg.items:
                self._reserve(msg, panel, now)
        except Refusal as r:
            return self._refused(r, client, transport, now), False
        try:
            await self._accept(panel, msg, client, transport, now)
        except Exception:
            # Not handled: the panel's retransmission must not be taken for a replay.
            self._recent.pop(msg.replay_key, None)
            logger.exception("SIA message %s from account %s could not be handled", msg.header.seq, panel.account)
            return self._refused(Refusal(Reason.INTERNAL_ERROR, msg.header), client, transport, now), False
        return sia_frame.ack(msg.header, panel.key, now), True

    def _reserve(self, msg: sia_frame.Message, panel: PanelAccount, now: datetime) -> None:
        # A retransmission (same sequence, timestamp and data: ``Message.replay_key``) within the
        # memory is answered ACK and not acted on again; anything else is a new report.
        for k, until in list(self._recent.items()):
            if until < now:
                del self._recent[k]
        while len(self._recent) >= MAX_REPLAY_MEMORY:
            del self._recent[next(iter(self._recent))]
        key = msg.replay_key
        if key in self._recent:
            raise Refusal(Reason.REPLAYED, msg.header)
        self._recent[key] = now + panel.replay_memory

    async def _accept(self, panel: PanelAccount, msg: sia_frame.Message, client: str, transport: str,
                      now: datetime) -> None:
        """Evaluate every event of the message, then write one record per event, in the order sent."""
        self._alive(panel, now)
        h = msg.header
        base: dict[str, Any] = {"account": h.account, "sequence": h.seq, "protocol": h.protocol,
                                "encrypted": h.encrypted, "answer": Answer.ACK.value, "client": client,
                                "transport": transport}
        if not msg.items:
            self._record(panel, None, {**base, "outcome": "link_test"})
            return
        n = len(msg.items)
        rows: list[tuple[str | None, dict[str, Any]]] = []
        mapped: list[tuple[int, str]] = []
        for i, item in enumerate(msg.items):
            details = {**base, **({"event_index": i + 1, "events": n} if n > 1 else {})}
            if isinstance(item, Malformed):
                # Never acted on; its raw fields are kept for the installer.
                details.update(outcome="malformed", **item.details())
                logger.warning("SIA event from %s unreadable (%s): %r", panel.name, item.flaw, item.raw)
            else:
                details.update(event=item.code, description=item.label_fr(), zone=item.zone,
                               partition=item.partition)
                key = sia_codes.mapped_key(panel.types, item)
                if key is None:
                    details["outcome"] = ("restore" if item.restore else "status" if item.status_report
                                          else "test" if item.test else "not_mapped")
                else:
                    mapped.append((i, key))
            rows.append((None, details))
        # Hold-ups first: a hold-up that opens at once must not merely join an intrusion alarm
        # the same message opened a moment before, awaiting a confirmation.
        mapped.sort(key=lambda ik: (not sia_codes.is_hold_up_key(ik[1]), ik[0]))
        for i, key in mapped:
            ev = msg.items[i]
            assert isinstance(ev, PanelEvent)  # noqa: S101 - only events are mapped
            result = await self.desk.alarm(AlarmIn(
                source=sia_codes.source_for(panel.name, key),
                alarm_type=key,
                zone=ev.where() or "—",
                zone_id=panel_zone(panel.zones, panel.partitions, "" if ev.zone_is_user else ev.zone, ev.partition),
                message=f"{ev.label_fr()} ({ev.code})",
                occurred_at=msg.body.timestamp,
                delivery_id=f"sia:{h.account}:{h.seq}" + (f":{i + 1}" if n > 1 else ""),
            ))
            rows[i][1].update(alarm_type=key, outcome=result.outcome, refusal=result.reason_code)
            rows[i] = (result.incident_id, rows[i][1])
            logger.info("SIA %s from %s (%s): %s %s", ev.code, panel.name, ev.where(), result.outcome,
                        result.incident_id or result.reason_code)
        for incident, details in rows:
            self._record(panel, incident, details)

    def _record(self, panel: PanelAccount, incident: str | None, details: dict[str, Any]) -> None:
        self.desk.record(Kind.SIA_MESSAGE, incident=incident, actor=panel.name,
                         details={k: v for k, v in details.items() if v not in (None, "")})

    def _refused(self, r: Refusal, client: str, transport: str, now: datetime) -> bytes:
        h = r.header
        panel = self._panels.get(h.account) if h is not None else None
        details: dict[str, Any] = {"reason": r.reason.value, "answer": r.answer.value, "client": client,
                                   "transport": transport}
        if h is not None:
            details.update(account=h.account, sequence=h.seq, protocol=h.protocol[:16], encrypted=h.encrypted)
        details.update(r.details)
        # A retransmission is routine; everything else deserves the operator's eye.
        level = logging.INFO if r.reason is Reason.REPLAYED else logging.WARNING
        logger.log(level, "SIA message refused: %s, answered %s (account %s, client %s)", r.reason.value,
                   r.answer.value, h.account if h else "?", client)
        self.desk.record(Kind.SIA_REFUSED, actor=panel.name if panel else "sia", details=details)
        return sia_frame.answer(r, panel.key if panel else None, now)

    # ---------- supervision ----------

    async def _supervise_job(self) -> None:
        # A coroutine on purpose: APScheduler would run a plain function in a thread, away from the loop.
        self.supervise()

    def supervise(self) -> None:
        """Tell the rooms about each supervised panel silent for its interval plus the margin."""
        now = self.clock()
        for p in self.config.panels:
            if p.heartbeat is None or p.account in self._silent:
                continue
            last = self._last_seen.get(p.account, now)
            if now - last <= p.heartbeat + self.config.margin:
                continue
            self._silent.add(p.account)
            minutes = int((now - last).total_seconds() // 60)
            since = self.desk.hm(last)
            every = int(p.heartbeat.total_seconds())
            logger.warning("SIA panel %s (account %s) silent since %s", p.name, p.account, last.isoformat())
            self.desk.announce(
                Kind.PANEL_SILENT,
                phrase(Msg.PANEL_SILENT, label=p.label, since=since, minutes=minutes, every=every),
                panel=p.name, account=p.account, last_seen=last.isoformat(), silent_seconds=int((now - last).total_seconds()),
            )

    def _alive(self, p: PanelAccount, now: datetime) -> None:
        last = self._last_seen.get(p.account, now)
        self._last_seen[p.account] = now
        if p.account not in self._silent:
            return
        self._silent.discard(p.account)
        since = self.desk.hm(last)
        logger.warning("SIA panel %s (account %s) is back", p.name, p.account)
        self.desk.announce(
            Kind.PANEL_BACK,
            phrase(Msg.PANEL_BACK, label=p.label, since=since),
            panel=p.name, account=p.account, last_seen=last.isoformat(),
        )


def _limits(config: ReceiverConfig) -> Limits:
    # A panel that keeps its connection open ("connect on demand" off) is quiet between its
    # tests: a connection that carried an accepted message may wait for the next one.
    beats = [p.heartbeat.total_seconds() for p in config.panels if p.heartbeat is not None]
    return Limits(idle_known=min(3600.0, max([Limits.idle_known, *(2 * b for b in beats)])))


SIA = web.AppKey("sia", SiaReceiver)
