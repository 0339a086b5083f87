"""The closing job: what follows an incident's end, made durable and resumed until done.

The desk revokes access first, in memory (links, sessions, streams), whatever the storage does.
Then this job, each step idempotent so it can be re-run from the start at any point:

1. a ``closing`` row holding the ended incident (so a restart knows the job is owed);
2. the ended state saved, and the viewer sessions deleted;
3. the end record in the registre (unless already there);
4. the closure report record (unless already there; it carries the registre's head hash);
5. the closing messages (confirmation request closed, link and tile removed, report posted)
   queued in the durable outbox, in the same transaction that deletes the ``closing`` row.

If a step fails (full disk, read-only directory, locked registre), every room is told once
that access is closed and the record will follow, and the job is retried with capped backoff;
``Desk.start`` resumes every job a restart interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .fanout import Fanout
from .kinds import Kind
from .messages import Renderer
from .outbox import Edit, Op, Post, Remove
from .outbox_store import Journal, describe
from .policy import incident as sm
from .policy.incident import Incident
from .store import Store
from .viewing import incident_viewers, summary

logger = logging.getLogger(__name__)

END_KINDS = (Kind.END, Kind.EXPIRY)

AuditFn = Callable[[Kind, Incident, str | None, dict[str, Any]], Any]


@dataclass
class _Job:
    inc: Incident
    revoked: int
    told: bool = False
    step: str = "state"  # which file the step in progress writes, for the error line


class Closer:
    def __init__(self, store: Store, records: Callable[[str], list[Any]], audit: AuditFn, fanout: Fanout,
                 journal: Journal, render: Renderer, retry_max: float = 30.0, registre_path: str = "registre",
                 cameras: Mapping[str, str] | None = None) -> None:
        self._store = store
        self._records = records
        self._audit = audit
        self._fanout = fanout
        self._journal = journal
        self._render = render
        self._cameras = dict(cameras or {})  # camera id -> name, for the report
        self._retry_max = retry_max
        self._paths = {"state": journal.path, "registre": registre_path}
        self._jobs: dict[str, _Job] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> set[str]:
        """Incidents whose end is not fully recorded yet."""
        return set(self._jobs)

    def close(self, inc: Incident, revoked: int) -> None:
        """Access is already revoked: record the end and tidy up, now or as soon as storage allows."""
        self._jobs[inc.id] = _Job(inc, revoked)
        self._idle.clear()
        self._attempt(inc.id)

    def interrupted(self) -> list[tuple[Incident, int]]:
        """At start: the ended incidents whose closing a restart interrupted, with their revoked count."""
        return [(sm.from_dict(j.data), j.revoked) for j in self._journal.closing_jobs() if j.incident not in self._jobs]

    async def wait(self) -> None:
        await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _attempt(self, incident: str) -> None:
        """The first attempt, at once: on a healthy disk the whole job takes a few milliseconds."""
        job = self._jobs[incident]
        try:
            self._queue(job, *self._record(job))
        except Exception as exc:  # storage of any kind failing: access stays closed, the job retries
            self._failed(job, exc)
            return
        self._finished(job)

    async def _attempt_off_loop(self, incident: str) -> None:
        """A retry: the storage steps run in a worker thread, so a locked file never stalls the loop."""
        job = self._jobs.get(incident)
        if job is None:
            return
        try:
            found = await asyncio.to_thread(self._record, job)
            self._queue(job, *found)
        except Exception as exc:
            self._failed(job, exc)
            return
        self._finished(job)

    def _failed(self, job: _Job, exc: BaseException) -> None:
        incident, cause = job.inc.id, describe(exc)
        logger.error("closing %s: %s (access is closed; retrying)", incident,
                     describe(exc, self._paths.get(job.step, job.step)))
        if not job.told:
            job.told = True
            self._fanout.put(Post(None, f"unrecorded:{incident}",
                                  lambda lang: self._render.close_unrecorded(incident, cause, lang)))
        self._ensure_retrying()

    def _finished(self, job: _Job) -> None:
        self._jobs.pop(job.inc.id, None)
        if not self._jobs:
            self._idle.set()

    def _record(self, job: _Job) -> tuple[list[Any], Any]:
        """Steps 1-4 (storage only, thread-safe); the incident's records and its closure report."""
        inc = job.inc
        job.step = "state"
        self._journal.open_closing(inc.id, sm.to_dict(inc), job.revoked)
        self._store.save(inc)
        self._store.delete_sessions(inc.id)
        job.step = "registre"
        records = self._records(inc.id)
        if not any(r.kind in END_KINDS for r in records):
            kind = Kind.EXPIRY if inc.close_reason == "expired" else Kind.END
            self._audit(kind, inc, inc.closed_by, {"reason": inc.close_reason})
            records = self._records(inc.id)
        report = next((r for r in records if r.kind == Kind.CLOSURE_REPORT), None)
        if report is None:
            # Who watched what, de-duplicated: the stream records themselves hold every detail.
            viewing = summary(incident_viewers(inc, records, inc.closed_at or inc.opened_at))
            streams = sum(1 for r in records if r.kind == Kind.STREAM_OPENED)
            self._audit(Kind.CLOSURE_REPORT, inc, "system",
                        {"sessions_revoked": job.revoked, "viewers": [v["person"] for v in viewing],
                         "streams": streams, "viewing": viewing})
            records = self._records(inc.id)
            report = next(r for r in records if r.kind == Kind.CLOSURE_REPORT)
        return records, report

    def _queue(self, job: _Job, records: list[Any], report: Any) -> None:
        """Step 5, on the loop: the closing messages, durably, with the end of the job."""
        job.step = "state"
        self._fanout.put_all(self._messages(job.inc, records, report), finish_closing=job.inc.id)

    def _messages(self, inc: Incident, records: list[Any], report: Any) -> list[Op]:
        upto = [r for r in records if r.seq <= report.seq]
        viewers = incident_viewers(inc, upto, inc.closed_at or inc.opened_at)
        streams = sum(1 for r in upto if r.kind == Kind.STREAM_OPENED)
        # Camera commands of a catastrophe (one per gesture), including those recorded after the
        # report was written (cameras sent home as the access closed).
        ptz = [(r.actor, r.at, r.details) for r in records if r.kind == Kind.PTZ_COMMAND]
        # The report carries the registre's head hash at closing time: copies of it in every room
        # anchor the chain outside the file, so a wholesale rewrite of the registre shows.
        anchor = str(getattr(report, "hash", ""))[:16]
        ops: list[Op] = []
        if inc.activated_at is None:
            ops.append(Edit(inc.id, "confirm", lambda lang: self._render.confirm_closed(inc, lang), closing=True))
        ops.append(Remove(inc.id, ("link", "tile")))
        ops.append(Post(inc.id, "report", lambda lang: self._render.closure(
            inc, lang, viewers, streams, len(upto), anchor, self._cameras, ptz), closing=True))
        return ops

    def _ensure_retrying(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._retry(), name="closing-retry")

    async def _retry(self) -> None:
        delay = 0.2
        while self._jobs:
            await asyncio.sleep(delay)
            for incident in list(self._jobs):
                await self._attempt_off_loop(incident)
            delay = min(delay * 2, self._retry_max)
