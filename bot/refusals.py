"""Unauthenticated refusals, folded into one registre record per client per minute.

Anyone on the Internet can ask for ``/live/<anything>`` or post to ``/hooks/alarm/<anything>``.
Writing one record per such request let anyone grow the registre, which can never be pruned,
until real events drowned and the disk filled. Here each refusal only bumps a counter of its
(client, minute, incident); when the minute is over the bucket becomes one ``refusals`` record
with the count of each reason. At most ``max_clients`` clients get their own bucket in a minute;
the others share one, so even a botnet adds a bounded number of records per minute.

Buckets are written when a later minute starts, on ``flush()`` (a timer of the composition
root) and at shutdown: a refusal is counted, never silently dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .kinds import Kind, Recorder
from .locales import Msg, bilingual

logger = logging.getLogger(__name__)

# A stored value, read by whoever examines the registre: both languages.
OTHERS = f"({bilingual(Msg.OTHER_CLIENTS)})"


@dataclass
class _Bucket:
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


_Key = tuple[datetime, str, str | None, bool]  # minute, client, incident, drill


class RefusalTally:
    def __init__(self, audit: Recorder, clock: Callable[[], datetime], max_clients: int = 32) -> None:
        self._audit = audit
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[_Key, _Bucket] = {}
        self._lock = threading.Lock()

    def note(self, what: str, reason: str, client: str, *, incident: str | None = None,
             drill: bool = False) -> None:
        """Count one refusal of ``what`` (live_link, webhook, login) for ``reason``."""
        now = self._clock()
        minute = now.replace(second=0, microsecond=0)
        with self._lock:
            stale = any(k[0] < minute for k in self._buckets)
            clients = {k[1] for k in self._buckets if k[0] == minute}
            if client not in clients and len(clients - {OTHERS}) >= self._max_clients:
                client = OTHERS
            bucket = self._buckets.setdefault((minute, client, incident, drill), _Bucket())
            bucket.count += 1
            name = f"{what}:{reason}"
            bucket.reasons[name] = bucket.reasons.get(name, 0) + 1
        if stale:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return sum(b.count for b in self._buckets.values())

    def flush(self, *, everything: bool = False) -> int:
        """Write the buckets of past minutes (all of them with ``everything``); returns records written."""
        minute = self._clock().replace(second=0, microsecond=0)
        with self._lock:
            done = [k for k in self._buckets if everything or k[0] < minute]
            taken = [(k, self._buckets.pop(k)) for k in sorted(done, key=lambda k: (k[0], k[1], k[2] or ""))]
        for (start, client, incident, drill), bucket in taken:
            self._audit.append(
                Kind.REFUSALS,
                incident=incident,
                details={"client": client, "from": start.isoformat(),
                         "to": (start + timedelta(minutes=1)).isoformat(),
                         "count": bucket.count, "reasons": dict(sorted(bucket.reasons.items()))},
                drill=drill,
            )
        return len(taken)
