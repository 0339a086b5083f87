"""Failed sign-ins: a hard lock per (person, client), only a slow-down per person and per client.

Who we protect against whom. A link holder may guess an officer's password; but if failures
locked the *person*, anyone holding a link could lock every named officer out during the very
event they must watch, and if they locked the *client address*, ten officers behind one police
NAT would be locked by one colleague's typos. So:

- a (person, client) pair is locked for ``lock`` after ``max_failures`` failures within
  ``window``: that client cannot go on guessing that person, and nobody else is affected;
- the person, across all clients, and the client, across all persons, are only *slowed*:
  each new attempt waits ``delay()`` seconds before the password is checked, doubling with
  each failure past the threshold up to ``max_delay``, and the right password still opens;
- the state is written through to ``state.sqlite3``, so a restart neither lifts a lock nor
  forgets the failures.

An attempt is counted *before* argon2 runs and forgiven if it succeeds, so a burst of
concurrent guesses cannot slip more than ``max_failures`` tries past a pair's check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)

# Only counts up to the thresholds matter: older timestamps of a busy key are dropped.
_KEEP = 64
_MAX_KEYS = 4096


class LockoutRows(Protocol):
    """What the lockout needs of ``bot.store.Store``."""

    def open_lockouts(self) -> list[tuple[str, list[datetime], datetime | None]]: ...

    def save_lockout(self, key: str, failures: list[datetime], locked_until: datetime | None) -> None: ...

    def delete_lockouts(self, keys: Iterable[str]) -> None: ...


@dataclass
class _Entry:
    times: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None


def pair_key(who: str, client: str) -> str:
    return f"pair:{who}|{client}"


@dataclass(frozen=True)
class Slowdown:
    person: int  # failures of the person within the window, all clients
    client: int  # failures of the client within the window, all persons
    seconds: float


class Lockout:
    def __init__(
        self,
        rows: LockoutRows,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
        lock: timedelta = timedelta(minutes=15),
        slow_person_after: int = 5,
        slow_client_after: int = 10,
        base_delay: float = 1.0,
        max_delay: float = 8.0,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self.max_failures = max_failures
        self.window = window
        self.lock = lock
        self._slow = {"person": slow_person_after, "client": slow_client_after}
        self._base, self._max_delay = base_delay, max_delay
        self._rows = rows
        self._keys: dict[str, _Entry] = {
            key: _Entry(times[-_KEEP:], until) for key, times, until in rows.open_lockouts()
        }

    # --- reading ---

    def _fresh(self, key: str, now: datetime) -> _Entry | None:
        e = self._keys.get(key)
        if e is None:
            return None
        e.times = [t for t in e.times if t > now - self.window]
        if e.locked_until is not None and e.locked_until <= now:
            e.locked_until = None
        if not e.times and e.locked_until is None:
            del self._keys[key]
            self._rows.delete_lockouts([key])
            return None
        return e

    def _count(self, key: str, now: datetime) -> int:
        e = self._fresh(key, now)
        return len(e.times) if e else 0

    def locked_for(self, who: str, client: str, now: datetime) -> timedelta | None:
        """How long the pair stays locked, or None; attempts still in flight fill the quota."""
        e = self._fresh(pair_key(who, client), now)
        if e is None:
            return None
        if e.locked_until is not None:
            return e.locked_until - now
        return self.lock if len(e.times) >= self.max_failures else None

    def remaining(self, who: str, client: str, now: datetime) -> int:
        return max(0, self.max_failures - self._count(pair_key(who, client), now))

    def slowdown(self, who: str, client: str, now: datetime) -> Slowdown:
        person, cli = self._count(f"person:{who}", now), self._count(f"client:{client}", now)
        excess = max(person - self._slow["person"], cli - self._slow["client"], -1) + 1
        seconds = 0.0 if excess <= 0 else min(self._max_delay, self._base * 2 ** (excess - 1))
        return Slowdown(person, cli, seconds)

    def clients_of(self, who: str, now: datetime) -> int:
        """How many clients failed for this person within the window."""
        prefix = pair_key(who, "")
        return sum(1 for k in list(self._keys) if k.startswith(prefix) and self._count(k, now))

    # --- writing ---

    def _save(self, key: str) -> None:
        e = self._keys.get(key)
        if e is not None:
            e.times = e.times[-_KEEP:]
            self._rows.save_lockout(key, e.times, e.locked_until)

    def begin(self, who: str, client: str, now: datetime) -> None:
        if len(self._keys) > _MAX_KEYS:
            self._prune(now)
        for key in (pair_key(who, client), f"person:{who}", f"client:{client}"):
            self._keys.setdefault(key, _Entry()).times.append(now)
            self._save(key)

    def failed(self, who: str, client: str, now: datetime) -> bool:
        """The attempt begun at ``now`` failed; True when that locks the pair."""
        key = pair_key(who, client)
        e = self._fresh(key, now)
        if e is not None and len(e.times) >= self.max_failures and e.locked_until is None:
            e.locked_until = now + self.lock
            self._save(key)
            return True
        return False

    def succeeded(self, who: str, client: str, at: datetime) -> None:
        """The right password: the pair starts afresh; the person's and client's counts only
        lose this attempt, so an attacker cannot reset the slow-down by watching an officer sign in."""
        self._keys.pop(pair_key(who, client), None)
        self._rows.delete_lockouts([pair_key(who, client)])
        for key in (f"person:{who}", f"client:{client}"):
            e = self._keys.get(key)
            if e is not None and at in e.times:
                e.times.remove(at)
                self._save(key)

    def unlock(self, who: str) -> int:
        """Lift every lock and count of a person (``/debloquer``); returns the pairs that were locked."""
        now_locked = sum(1 for k, e in self._keys.items() if k.startswith(pair_key(who, "")) and e.locked_until)
        keys = [k for k in self._keys if k.startswith(pair_key(who, "")) or k == f"person:{who}"]
        for k in keys:
            del self._keys[k]
        self._rows.delete_lockouts(keys)
        return now_locked

    def _prune(self, now: datetime) -> None:
        for key in list(self._keys):
            self._fresh(key, now)
        if len(self._keys) <= _MAX_KEYS:
            return
        # Still too many live keys (many addresses): forget the unlocked ones seen least recently.
        idle = sorted((e.times[-1], k) for k, e in self._keys.items() if e.locked_until is None and e.times)
        drop = [k for _, k in idle[: len(self._keys) - _MAX_KEYS]]
        for k in drop:
            del self._keys[k]
        self._rows.delete_lockouts(drop)
        logger.warning("login limiter: %d idle entries forgotten (too many clients at once)", len(drop))
