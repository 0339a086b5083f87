"""The login limiter's promises, as properties: whatever an attacker does from their devices,
a person is never locked on a device the attacker does not use, and the slow-down is bounded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.lockout import Lockout

T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


class Rows:
    """An in-memory stand-in for the store's lockout table."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[list[datetime], datetime | None]] = {}

    def open_lockouts(self) -> list[tuple[str, list[datetime], datetime | None]]:
        return [(k, list(t), u) for k, (t, u) in self.rows.items()]

    def save_lockout(self, key: str, failures: list[datetime], locked_until: datetime | None) -> None:
        self.rows[key] = (list(failures), locked_until)

    def delete_lockouts(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.rows.pop(k, None)


attempts = st.lists(
    st.tuples(st.sampled_from(["cic-moreau", "cic-roux", "?nobody"]), st.sampled_from(["a1", "a2", "a3", "a4"]),
              st.integers(0, 120)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(attempts=attempts)
def test_attackers_never_lock_a_person_out_of_a_fresh_device(attempts: list[tuple[str, str, int]]) -> None:
    rows = Rows()
    lockout = Lockout(rows)
    now = T0
    for who, client, seconds in attempts:
        now += timedelta(seconds=seconds)
        if lockout.locked_for(who, client, now) is None:
            lockout.begin(who, client, now)
            lockout.failed(who, client, now)
    for who in ("cic-moreau", "cic-roux"):
        assert lockout.locked_for(who, "officer-phone", now) is None
        assert lockout.slowdown(who, "officer-phone", now).seconds <= 8.0
    # Restarting from the same rows changes nothing.
    again = Lockout(rows)
    for who, client, _ in attempts:
        assert (again.locked_for(who, client, now) is None) == (lockout.locked_for(who, client, now) is None)


@settings(max_examples=100, deadline=None)
@given(failures=st.integers(0, 30))
def test_a_pair_locks_after_five_failures_and_lifts_after_fifteen_minutes(failures: int) -> None:
    lockout = Lockout(Rows())
    for _ in range(failures):
        if lockout.locked_for("p", "c", T0) is None:
            lockout.begin("p", "c", T0)
            lockout.failed("p", "c", T0)
    assert (lockout.locked_for("p", "c", T0) is not None) == (failures >= 5)
    assert lockout.locked_for("p", "c", T0 + timedelta(minutes=15, seconds=1)) is None
