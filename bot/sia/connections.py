"""The receiver's TCP connections: limits that a flood of idle or slow sockets cannot turn into silence.

Anyone who can reach the port can open connections and say nothing, or one byte at a time. A
hold-up must still be answered, so:

- a connection that has not yet carried an accepted message may stay silent ``idle_new``
  seconds (a panel sends its message right after connecting); one that has (a panel keeping its
  connection between messages) ``idle_known`` seconds;
- a frame must be complete ``frame_time`` seconds after its first byte (a trickle is cut);
- at most ``per_source`` connections per source address and ``total`` in all. A new connection
  over either cap closes the oldest *idle* connection (of that address, then of all), one that
  never carried an accepted message first: the newest caller, who may be the panel with a
  hold-up, always gets in, and a connection busy with a frame is never cut. Only when every
  connection is busy is the new one refused.

UDP has no connections and none of these limits: each datagram is handled on its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    per_source: int = 16
    total: int = 256
    idle_new: float = 10.0
    idle_known: float = 120.0
    frame_time: float = 10.0


@dataclass(eq=False)
class Connection:
    client: str
    transport: asyncio.WriteTransport = field(repr=False)
    last: float  # loop time of the last byte received (or of the connection)
    busy: bool = False  # a frame is being handled: never evicted then
    known: bool = False  # has carried an accepted message

    def idle_timeout(self, limits: Limits) -> float:
        return limits.idle_known if self.known else limits.idle_new


class Pool:
    """The open connections, and who makes room for a new one."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._open: list[Connection] = []  # oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: Connection) -> bool:
        """Make room for ``conn`` (closing an idle connection if a cap is reached); False: refuse it."""
        same = [c for c in self._open if c.client == conn.client]
        if len(same) >= self.limits.per_source and not self._evict(same):
            return False
        if len(self._open) >= self.limits.total and not self._evict(self._open):
            return False
        self._open.append(conn)
        return True

    def remove(self, conn: Connection) -> None:
        if conn in self._open:
            self._open.remove(conn)

    def _evict(self, among: list[Connection]) -> bool:
        idle = [c for c in among if not c.busy]
        if not idle:
            return False
        # Never-accepted connections go first, then the longest silent.
        victim = min(idle, key=lambda c: (c.known, c.last))
        self.remove(victim)
        self.evicted += 1
        logger.info("SIA connection from %s closed to make room (%d open)", victim.client, len(self._open))
        victim.transport.abort()  # its reader sees the end of the stream; its loop ends normally
        return True
