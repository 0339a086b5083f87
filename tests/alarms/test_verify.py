"""Standard Webhooks verification: the spec's own vector, rotation, tampering, clocks, fuzz."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from bot.alarms.verify import WebhookError, decode_secret, sign, verify

# The test vector of the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
NOW = 1_750_000_000
BODY = b'{"type": "intrusion", "zone": "hall"}'


def headers(msg_id: str = "msg_1", ts: int = NOW, sig: str | None = None, body: bytes = BODY) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sig if sig is not None else sign(NEW, msg_id, ts, body),
    }


def code_of(secrets: list[str], hdrs: dict[str, str], body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(WebhookError) as info:
        verify(secrets, hdrs, body, now)
    assert info.value.status == 401
    return info.value.code


def test_reference_vector_signs_and_verifies() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    hdrs = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": VECTOR_SIG}
    assert verify([VECTOR_SECRET], hdrs, VECTOR_BODY, VECTOR_TS) == (VECTOR_ID, VECTOR_TS)


def test_reference_vector_with_last_byte_changed_is_refused() -> None:
    # The reference suite's own "invalid signature": the vector with its final character altered.
    hdrs = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
    }
    assert code_of([VECTOR_SECRET], hdrs, VECTOR_BODY, VECTOR_TS) == "bad_signature"


def test_round_trip() -> None:
    assert verify([NEW], headers(), BODY, NOW) == ("msg_1", NOW)


def test_rotation_any_entry_against_any_secret() -> None:
    both = f"{sign(OLD, 'msg_1', NOW, BODY)} {sign(NEW, 'msg_1', NOW, BODY)}"
    for secrets in ([OLD], [NEW], [OLD, NEW], [NEW, OLD]):
        assert verify(secrets, headers(sig=both), BODY, NOW) == ("msg_1", NOW)
    # A sender that has moved to the new key, a receiver that still holds both.
    assert verify([OLD, NEW], headers(sig=sign(NEW, "msg_1", NOW, BODY)), BODY, NOW)[0] == "msg_1"


def test_wrong_secret() -> None:
    assert code_of([OLD], headers()) == "bad_signature"


def test_no_secret_configured_refuses() -> None:
    assert code_of([], headers()) == "bad_signature"


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY + b" "},
        {"body": BODY.replace(b"hall", b"hals")},
        {"body": b""},
        {"webhook-id": "msg_2"},
        {"webhook-timestamp": str(NOW + 1)},
    ],
)
def test_tampering_breaks_the_signature(change: dict[str, object]) -> None:
    hdrs = headers()
    body = change.pop("body", BODY)
    assert isinstance(body, bytes)
    hdrs.update({k: str(v) for k, v in change.items()})
    assert code_of([NEW], hdrs, body) == "bad_signature"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_or_empty_headers(missing: str) -> None:
    hdrs = headers()
    del hdrs[missing]
    assert code_of([NEW], hdrs) == "missing_headers"
    hdrs[missing] = ""
    assert code_of([NEW], hdrs) == "missing_headers"


def test_header_names_are_case_insensitive() -> None:
    hdrs = {k.upper(): v for k, v in headers().items()}
    assert verify([NEW], hdrs, BODY, NOW)[0] == "msg_1"
    mixed = CIMultiDict({"Webhook-Id": "msg_1", "Webhook-Timestamp": str(NOW), "Webhook-Signature": headers()["webhook-signature"]})
    assert verify([NEW], mixed, BODY, NOW)[0] == "msg_1"


@pytest.mark.parametrize("delta", [-300, 0, 300])
def test_timestamps_inside_tolerance(delta: int) -> None:
    assert verify([NEW], headers(ts=NOW + delta, sig=sign(NEW, "msg_1", NOW + delta, BODY)), BODY, NOW)[1] == NOW + delta


@pytest.mark.parametrize("delta", [-301, 301, -86400, 86400 * 365])
def test_stale_and_future_timestamps(delta: int) -> None:
    ts = NOW + delta
    assert code_of([NEW], headers(ts=ts, sig=sign(NEW, "msg_1", ts, BODY))) == "stale_timestamp"


def test_tolerance_is_a_parameter() -> None:
    hdrs = headers(ts=NOW - 10, sig=sign(NEW, "msg_1", NOW - 10, BODY))
    with pytest.raises(WebhookError) as info:
        verify([NEW], hdrs, BODY, NOW, tolerance=5)
    assert info.value.code == "stale_timestamp"


@pytest.mark.parametrize("ts", ["hello", "-5", " 1750000000", "+1750000000", "1750000000.0", "1_750_000_000", "١٧٥٠", "1e9"])
def test_bad_timestamps(ts: str) -> None:
    hdrs = headers()
    hdrs["webhook-timestamp"] = ts
    assert code_of([NEW], hdrs) == "bad_timestamp"


def test_other_versions_are_ignored() -> None:
    good = sign(NEW, "msg_1", NOW, BODY)
    v2_same_mac = "v2," + good[3:]
    assert code_of([NEW], headers(sig=v2_same_mac)) == "bad_signature"
    assert verify([NEW], headers(sig=f"v2,abc {v2_same_mac} {good} v1a,{good[3:]}"), BODY, NOW)[0] == "msg_1"


@pytest.mark.parametrize("junk", ["v1", "v1,", "v1,!!!", "v1,é", ",", "v1,AAAA", "v1,g0hM9SsE"])
def test_junk_entries_are_skipped(junk: str) -> None:
    assert code_of([NEW], headers(sig=junk)) == "bad_signature"
    assert verify([NEW], headers(sig=f"{junk}  {sign(NEW, 'msg_1', NOW, BODY)}"), BODY, NOW)[0] == "msg_1"


def test_error_messages_are_bilingual_and_reveal_nothing() -> None:
    for hdrs in (headers(sig="v1,AAAA"), {}, headers(ts=1), {**headers(), "webhook-timestamp": "x"}):
        with pytest.raises(WebhookError) as info:
            verify([NEW], hdrs, BODY, NOW)
        e = info.value
        assert " / " in e.message
        assert NEW[6:] not in e.message and "AAAA" not in e.message and "hall" not in e.message


@pytest.mark.parametrize("bad", ["", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_é"])
def test_malformed_secret_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_secret(bad)
    assert not isinstance(info.value, WebhookError)
    if len(bad) > 6:
        assert bad[6:] not in str(info.value)


# --- fuzz ---

_any_text = st.text(st.characters(exclude_categories=()), max_size=60)
_names = st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Signature", "x-other"])


@settings(max_examples=400, deadline=None)
@given(
    hdrs=st.dictionaries(st.one_of(_names, _any_text), st.one_of(_any_text, st.integers(0, 2 * NOW).map(str)), max_size=5),
    body=st.binary(max_size=300),
    now=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
)
def test_fuzz_only_webhook_error(hdrs: dict[str, str], body: bytes, now: float) -> None:
    try:
        verify([OLD, NEW], hdrs, body, now)
    except WebhookError:
        return
    raise AssertionError("an unsigned delivery was accepted")


@settings(max_examples=200, deadline=None)
@given(
    msg_id=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=300),
    skew=st.integers(-300, 300),
    entries=st.lists(st.sampled_from(["v2,AAAA", "v1,!!", "v1,AAAA", "x"]), max_size=3),
)
def test_fuzz_round_trip_and_tamper(msg_id: str, body: bytes, skew: int, entries: list[str]) -> None:
    ts = NOW + skew
    sig = " ".join([*entries, sign(NEW, msg_id, ts, body)])
    hdrs = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
    assert verify([OLD, NEW], hdrs, body, NOW) == (msg_id, ts)
    with pytest.raises(WebhookError):
        verify([OLD, NEW], hdrs, body + b"\x00", NOW)
