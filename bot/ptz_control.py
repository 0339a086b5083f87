"""Steering PTZ cameras during a declared catastrophe: who holds which camera, every command, the way home.

Every request, from the page (HTTP) or a room (``/ptz``), goes through the pure policy
(``bot.policy.catastrophe``): ``take``/``release`` change who holds a camera, ``authorise`` gates
each command. A refusal is recorded and answered; a camera that does not answer is reported,
never waited on for longer than its timeout (drivers are async and bounded).

The registre gets one record per *gesture*, not per tick: a finger held on the picture sends a
move every few hundred milliseconds; the record is written when the gesture ends (stop, release,
take-over, end of control), with its duration and direction. A dead-man stop halts a camera whose
page went silent mid-gesture. At the end every moved camera goes back to its home preset, and the
rooms are told which did not. Who holds which camera is kept in memory and, after a restart,
replayed from the registre's takes and releases (``restore``): no second copy to keep in step.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NoReturn, Protocol, runtime_checkable

from .catastrophe import Catastrophes
from .fanout import Fanout
from .kinds import Kind, Recorder
from .locales import Msg, phrase
from .messages import Renderer, Reply
from .outbox import Post
from .policy import catastrophe as cm
from .policy.catastrophe import Catastrophe, Holder
from .policy.convention import Convention, Person
from .policy.reasons import UNKNOWN_PERSON, Reason, Refused, Why

logger = logging.getLogger(__name__)

DEADMAN_SECONDS = 1.5  # a move with no tick for this long is stopped: the page went away mid-gesture
REFUSAL_QUIET = timedelta(seconds=10)  # the same refusal again within this: counted, not recorded again
ACTIONS = frozenset({"move", "stop", "preset", "home"})


class PtzError(Exception):
    """The camera did not do it: unreachable, timed out, or a SOAP fault (the text says which)."""


class PtzDriver(Protocol):
    """One PTZ camera (ONVIF in production, synthetic in the demo); each call bounded by a timeout."""

    async def move(self, pan: float, tilt: float, zoom: float) -> None: ...

    async def stop(self) -> None: ...

    async def goto_preset(self, token: str) -> None: ...

    async def home(self) -> None: ...

    async def presets(self) -> list[tuple[str, str]]: ...

    async def close(self) -> None: ...


@runtime_checkable
class Positioned(Protocol):
    """A driver that knows where it points without asking the camera (the demo's synthetic dome)."""

    @property
    def position(self) -> tuple[float, float, float]: ...


class RecordView(Protocol):
    """What ``restore`` reads of a registre record (``bot.audit.AuditRecord``)."""

    @property
    def kind(self) -> str: ...

    @property
    def actor(self) -> str | None: ...

    @property
    def details(self) -> dict[str, Any]: ...

    @property
    def at(self) -> datetime: ...


@dataclass
class Gesture:
    person: str
    incident: str
    started: datetime
    ticks: int = 0
    direction: tuple[float, float, float] = (0.0, 0.0, 0.0)
    last: float = 0.0  # loop time of the last tick
    watchdog: asyncio.TimerHandle | None = field(default=None, repr=False)


def _unit(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return max(-1.0, min(1.0, v)) if v == v else 0.0  # NaN → 0


class CameraControl:
    def __init__(self, conv: Convention, catastrophes: Catastrophes, registre: Recorder, fanout: Fanout,
                 render: Renderer, clock: Callable[[], datetime], drivers: Mapping[str, PtzDriver],
                 names: Mapping[str, str]) -> None:
        self.conv, self.cats, self.registre, self.fanout = conv, catastrophes, registre, fanout
        self.render, self.clock, self.drivers, self.names = render, clock, dict(drivers), dict(names)
        self.ptz = frozenset(drivers) & conv.cameras_in_scope
        self.holders: dict[str, Holder] = {}
        self._gestures: dict[str, Gesture] = {}
        self._presets: dict[str, list[tuple[str, str]]] = {}
        self._gates: dict[str, asyncio.Lock] = {}
        self._refused_at: dict[tuple[str, str, str], tuple[datetime, int]] = {}  # (who, camera, why) → when, repeats
        self._lock = asyncio.Lock()
        catastrophes.control = self

    # ---------- what the page shows ----------

    def view(self, person_id: str, incident_id: str) -> dict[str, Any]:
        now = self.clock()
        cat = self.cats.in_force(incident_id, now)
        person = self.conv.person(person_id)
        may = bool(cat and person and cm.may_steer(self.conv, person))
        cameras = {}
        for cid in sorted(self.ptz):
            held = self.holders.get(cid) if cat else None
            driver = self.drivers[cid]
            cameras[cid] = {"holder": held.name if held else None, "mine": bool(held and held.person == person_id),
                            "presets": [{"token": tok, "name": name} for tok, name in self._presets.get(cid, [])]
                            if may else [],
                            "position": [round(v, 2) for v in driver.position]
                            if may and isinstance(driver, Positioned) else None}
        return {"catastrophe": cat is not None, "ends_at": cat.ends_at.isoformat() if cat and cat.ends_at else None,
                "may_control": may, "cameras": cameras}

    def held_text(self, incident_id: str) -> str:
        return ", ".join(f"{self.names.get(c, c)} ({h.name})" for c, h in sorted(self.holders.items())) or "—"

    # ---------- take, release ----------

    async def take(self, person_id: str, incident_id: str, camera: str, takeover: bool, via: str) -> None:
        async with self._lock:
            person, cat, inc = self._who(person_id, incident_id, camera, "take", via)
            before = self.holders.get(camera)
            try:
                self.holders = cm.take(self.conv, inc, cat, self.holders, person, camera, self.ptz, self.clock(),
                                       takeover)
            except Refused as r:
                self._refused(r, person.id, cat, incident_id, camera, "take", via)
            assert cat is not None  # noqa: S101 - taken: a catastrophe is in force
            if before is not None and before.person == person.id:
                return
            self._end_gesture(camera, cat)
            self._record(Kind.PTZ_TAKEN, cat, person.id, camera=camera, via=via,
                         taken_over_from=before.person if before else None)
            name, cam = person.name, self.names.get(camera, camera)
            text = (phrase(Msg.PTZ_TAKEN_OVER, camera=cam, name=name, previous=before.name) if before
                    else phrase(Msg.PTZ_TAKEN, camera=cam, name=name))
            self._tell(cat, f"take:{camera}:{self.clock().timestamp()}", text)
        if before is not None:  # taken over mid-gesture: the camera stops turning for the previous holder
            await self._stop_quietly(camera)
        await self._load_presets(camera)

    async def release(self, person_id: str, incident_id: str, camera: str, via: str) -> None:
        async with self._lock:
            person, cat, _ = self._who(person_id, incident_id, camera, "release", via)
            try:
                self.holders = cm.release(self.holders, person, camera)
            except Refused as r:
                self._refused(r, person.id, cat, incident_id, camera, "release", via)
            if cat is None:  # held cameras are dropped when control closes: nothing to release
                return
            self._end_gesture(camera, cat)
            self._record(Kind.PTZ_RELEASED, cat, person.id, camera=camera, via=via)
            self._tell(cat, f"release:{camera}:{self.clock().timestamp()}",
                       phrase(Msg.PTZ_RELEASED, camera=self.names.get(camera, camera), name=person.name))
        await self._stop_quietly(camera)

    # ---------- commands ----------

    async def command(self, person_id: str, incident_id: str, camera: str, action: str, args: Mapping[str, Any],
                      via: str) -> None:
        """One command; raises ``Refused`` (recorded) or ``PtzError`` (the camera failed, recorded)."""
        if action not in ACTIONS:
            raise Refused(Reason(Why.CAMERA_CONTROL_REFUSED))
        async with self._lock:
            person, cat, inc = self._who(person_id, incident_id, camera, action, via)
            try:
                cm.authorise(self.conv, inc, cat, self.holders, person, camera, self.ptz, self.clock())
            except Refused as r:
                self._refused(r, person.id, cat, incident_id, camera, action, via)
            assert cat is not None  # noqa: S101 - authorised: a catastrophe is in force
            cat = self.cats.save_moved(cat, camera) if action != "stop" else cat
            driver = self.drivers[camera]
            details: dict[str, Any] = {"via": via}
            if action == "move":
                vector = (_unit(args.get("pan")), _unit(args.get("tilt")), _unit(args.get("zoom")))
                self._tick(camera, person.id, cat.incident, vector)
                call: Callable[[], Awaitable[None]] = partial(driver.move, *vector)
            else:
                self._end_gesture(camera, cat)
                token = str(args.get("token", ""))[:64]
                calls: dict[str, Callable[[], Awaitable[None]]] = {
                    "stop": driver.stop, "home": driver.home, "preset": partial(driver.goto_preset, token)}
                call = calls[action]
                if action == "preset":
                    details["preset"] = token
        # The camera is driven outside the decisions' lock, one call at a time per camera: a slow
        # camera never holds the others, and a move tick arriving while the previous one is still on
        # its way folds into the gesture instead of queueing behind it.
        gate = self._gate(camera)
        if action == "move" and gate.locked():
            return
        async with gate:
            await self._drive(cat, person.id, camera, action, call(), record=action in ("preset", "home"), **details)

    async def room_command(self, person: Person, room: str, what: str) -> Reply:
        """``/ptz <camera> prendre|rendre|reprendre|origine|preset <jeton>`` from a room."""
        words = what.split()
        verbs = {"prendre": "take", "take": "take", "rendre": "release", "release": "release",
                 "reprendre": "takeover", "takeover": "takeover", "origine": "home", "home": "home",
                 "preset": "preset"}
        verb = verbs.get(words[1].lower(), "") if len(words) >= 2 else ""
        incident = self._incident_in_force()
        if not verb:
            self._refused(Refused(Reason(Why.CAMERA_CONTROL_REFUSED)), person.id, None, incident, "", what[:40], room)
        camera = words[0].lower()
        if verb in ("take", "takeover"):
            await self.take(person.id, incident, camera, verb == "takeover", room)
        elif verb == "release":
            await self.release(person.id, incident, camera, room)
        else:
            token = words[2] if len(words) > 2 else ""
            try:
                await self.command(person.id, incident, camera, verb, {"token": token}, room)
            except PtzError as exc:
                return Reply.of(phrase(Msg.PTZ_FAILED, camera=self.names.get(camera, camera), error=str(exc)))
        return Reply.of(phrase(Msg.PTZ_DONE, camera=self.names.get(camera, camera)))

    # ---------- the end ----------

    async def control_closed(self, cat: Catastrophe) -> None:
        """Control is over: gestures recorded, holders dropped, every moved camera sent home, the rooms told."""
        async with self._lock:
            for camera in list(self._gestures):
                self._end_gesture(camera, cat)
            self.holders = {}
        home, failed = [], {}
        for camera in cat.moved:
            driver = self.drivers.get(camera)
            try:
                if driver is None:
                    raise PtzError("no driver")
                await self._stop_quietly(camera)
                async with self._gate(camera):
                    await driver.home()
                home.append(camera)
            except PtzError as exc:
                failed[camera] = str(exc)[:200]
        if not cat.moved:
            return
        self._record(Kind.PTZ_HOME, cat, "system", returned=home, failed=failed or None)
        names = self.names.get
        if home:
            self._tell(cat, f"{cat.id}:home", phrase(Msg.PTZ_HOME_OK, cameras=", ".join(names(c, c) for c in home)))
        if failed:
            self._tell(cat, f"{cat.id}:home_failed",
                       phrase(Msg.PTZ_HOME_FAILED, cameras=", ".join(names(c, c) for c in failed)))

    def restore(self, records: Callable[[str], Iterable[RecordView]]) -> dict[str, Holder]:
        """At start, after the catastrophes: who held which camera of a catastrophe still in force,
        replayed from the registre (``records(incident)``: every take and release is recorded
        there, in order), so a restart mid-catastrophe does not hand a commander's camera to
        whoever asks first. A holder no longer on the roster or no longer allowed to steer is
        not restored; ranks are the roster's as it is now."""
        holders: dict[str, Holder] = {}
        try:
            history = [(cat, list(records(cat.incident))) for cat in self.cats.all_in_force()]
        except sqlite3.Error as exc:  # a registre that cannot be read must not keep Vigie from starting
            logger.error("PTZ control not restored: the registre could not be read (%s); every camera is free", exc)
            self.holders = {}
            return {}
        for cat, found in history:
            for r in found:
                camera = str(r.details.get("camera", ""))
                if r.details.get("catastrophe") != cat.id or camera not in self.ptz or r.actor is None:
                    continue
                if r.kind == Kind.PTZ_TAKEN:
                    person = self.conv.person(r.actor)
                    if person is not None and cm.may_steer(self.conv, person):
                        holders[camera] = Holder(person.id, person.name, self.conv.catastrophe.rank(person.role), r.at)
                    else:
                        holders.pop(camera, None)
                elif r.kind == Kind.PTZ_RELEASED and (held := holders.get(camera)) and held.person == r.actor:
                    del holders[camera]
        self.holders = holders
        if holders:
            logger.info("PTZ control restored: %s", ", ".join(f"{c} ({h.person})" for c, h in sorted(holders.items())))
        return holders

    async def warm(self) -> None:
        """Connect to every PTZ camera and read its presets (the first ONVIF call reads the WSDLs: seconds)."""
        await asyncio.gather(*(self._load_presets(c) for c in sorted(self.ptz)))

    async def close(self) -> None:
        for driver in self.drivers.values():
            try:
                await driver.close()
            except PtzError:
                pass

    # ---------- internals ----------

    def _incident_in_force(self) -> str:
        now = self.clock()
        for inc in self.cats.incidents.open_incidents():
            if self.cats.in_force(inc.id, now) is not None:
                return inc.id
        return ""

    def _who(self, person_id: str, incident_id: str, camera: str, action: str,
             via: str) -> tuple[Person, Catastrophe | None, Any]:
        person = self.conv.person(person_id)
        cat = self.cats.of(incident_id)
        if person is None:
            self._refused(Refused(UNKNOWN_PERSON), person_id, cat, incident_id, camera, action, via)
        return person, cat, self.cats.incidents.incident(incident_id)

    def _refused(self, r: Refused, actor: str, cat: Catastrophe | None, incident: str, camera: str, command: str,
                 via: str) -> NoReturn:
        # A finger held on the pad sends a move every 250 ms: the same refusal is recorded once per
        # REFUSAL_QUIET, with how many times it came meanwhile, never once per tick.
        now, key = self.clock(), (actor, camera[:40], str(r.reason.code))
        last = self._refused_at.get(key) if command == "move" else None
        if last is not None and now - last[0] < REFUSAL_QUIET:
            self._refused_at[key] = (last[0], last[1] + 1)
            raise r
        repeats = last[1] if last is not None else 0
        self._refused_at = {k: v for k, v in self._refused_at.items() if now - v[0] < REFUSAL_QUIET}
        if command == "move":
            self._refused_at[key] = (now, 0)
        inc = self.cats.incidents.incident(incident) if incident else None
        self.registre.append(Kind.REFUSAL, incident=inc.id if inc else None, actor=actor, drill=bool(inc and inc.drill),
                             details={"reason": r.reason.code, "camera": camera[:40], "command": command,
                                      "via": via, "catastrophe": cat.id if cat else None,
                                      "repeated_before": repeats or None})
        raise r

    async def _drive(self, cat: Catastrophe, actor: str, camera: str, action: str, call: Any, record: bool = True,
                     **details: Any) -> None:
        try:
            await call
        except PtzError as exc:
            self._record(Kind.PTZ_COMMAND, cat, actor, camera=camera, command=action, error=str(exc)[:200], **details)
            raise
        if record:
            self._record(Kind.PTZ_COMMAND, cat, actor, camera=camera, command=action, **details)

    def _tick(self, camera: str, person: str, incident: str, vector: tuple[float, float, float]) -> None:
        loop = asyncio.get_running_loop()
        g = self._gestures.get(camera)
        if g is None or g.person != person:
            g = self._gestures[camera] = Gesture(person, incident, self.clock())
        g.ticks, g.last = g.ticks + 1, loop.time()
        if any(vector):
            g.direction = vector
        if g.watchdog is not None:
            g.watchdog.cancel()
        g.watchdog = loop.call_later(DEADMAN_SECONDS, self._deadman, camera, g)

    def _deadman(self, camera: str, g: Gesture) -> None:
        if self._gestures.get(camera) is g:
            self.cats.spawn(self._deadman_stop(camera, g), f"ptz:{camera}:deadman")

    async def _deadman_stop(self, camera: str, g: Gesture) -> None:
        async with self._lock:
            if self._gestures.get(camera) is not g:
                return
            self._end_gesture(camera, self.cats.of(g.incident), stopped_by="deadman")
        await self._stop_quietly(camera)

    def _end_gesture(self, camera: str, cat: Catastrophe | None, stopped_by: str | None = None) -> None:
        g = self._gestures.pop(camera, None)
        if g is None or cat is None:
            return
        if g.watchdog is not None:
            g.watchdog.cancel()
        seconds = round((self.clock() - g.started).total_seconds(), 1)
        self._record(Kind.PTZ_COMMAND, cat, g.person, camera=camera, command="move", started=g.started,
                     seconds=seconds, ticks=g.ticks, direction=[round(v, 2) for v in g.direction],
                     stopped_by=stopped_by)

    def _gate(self, camera: str) -> asyncio.Lock:
        """One call at a time to each camera (ONVIF cameras handle requests in order, some one at a time)."""
        return self._gates.setdefault(camera, asyncio.Lock())

    async def _stop_quietly(self, camera: str) -> None:
        driver = self.drivers.get(camera)
        if driver is not None:
            async with self._gate(camera):
                try:
                    await driver.stop()
                except PtzError as exc:
                    logger.warning("camera %s did not stop: %s", camera, exc)

    async def _load_presets(self, camera: str) -> None:
        if camera in self._presets or camera not in self.drivers:
            return
        try:
            self._presets[camera] = (await self.drivers[camera].presets())[:32]
        except PtzError as exc:
            logger.warning("camera %s: presets unavailable: %s", camera, exc)

    def _record(self, kind: Kind, cat: Catastrophe, actor: str | None, **details: Any) -> None:
        clean = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in details.items() if v is not None}
        self.registre.append(kind, incident=cat.incident, actor=actor, drill=cat.drill,
                             details={"catastrophe": cat.id, **clean})

    def _tell(self, cat: Catastrophe, key: str, text: Callable[[str], str]) -> None:
        self.fanout.put(Post(cat.incident, f"ptz:{key}", lambda lang: self.render.notice(text, lang), closing=True))

