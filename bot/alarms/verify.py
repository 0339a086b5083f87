"""Standard Webhooks signatures (https://www.standardwebhooks.com/), standard library only.

A sender signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` with HMAC-SHA256 under a secret
``whsec_<base64 key>`` and sends ``webhook-signature: v1,<base64 mac> [v1,<base64 mac> …]``.
Several entries and several secrets may be in play at once while keys are rotated: one match of
any entry against any secret is enough. Pure: no I/O, no clock of its own (the caller passes ``now``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence

from ..locales import Msg, bilingual

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
DEFAULT_TOLERANCE = 300

# int() would also take " 12", "+12", "1_2" and non-ASCII digits; a timestamp is plain digits.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# Senders use short ids ("msg_2KWPBgLl…"); a long one is only there to fill the replay table.
MAX_ID = 128

_MESSAGES = {
    "bad_signature": Msg.HOOK_BAD_SIGNATURE,
    "missing_headers": Msg.HOOK_MISSING_HEADERS,
    "stale_timestamp": Msg.HOOK_STALE_TIMESTAMP,
    "bad_timestamp": Msg.HOOK_BAD_TIMESTAMP,
    "bad_id": Msg.HOOK_BAD_ID,
}


class WebhookError(Exception):
    """A delivery that must be refused; ``code`` and ``message`` are safe to show the sender."""

    status = 401

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        # English first: the reader is the developer of the sending system.
        self.message = bilingual(_MESSAGES[code], first="en", max_id=MAX_ID)  # only bad_id shows max_id


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside ``whsec_<base64>``; ValueError (without the secret in it) if malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not 'whsec_' followed by base64") from None
    if not key:
        # An empty key would make every signature forgeable by anyone.
        raise ValueError("webhook secret has an empty key")
    return key


def _mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    # surrogateescape gives back the exact bytes aiohttp received for a non-UTF-8 header.
    prefix = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogateescape")
    return hmac.new(key, prefix + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` entry a sender holding ``secret`` would send."""
    mac = _mac(decode_secret(secret), msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(mac).decode("ascii")


def _v1_macs(header: str) -> list[bytes]:
    """The decodable ``v1`` entries; other versions and garbage are skipped, not errors."""
    macs = []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        if version != "v1" or not comma:
            continue
        try:
            macs.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            continue
    return macs


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> tuple[str, int]:
    """Check a delivery; return its ``(webhook-id, timestamp)`` or raise ``WebhookError``.

    Header names are matched case-insensitively whatever the mapping. A malformed configured
    secret raises ValueError: that is a configuration bug, not the sender's fault.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signature = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signature):
        raise WebhookError("missing_headers")
    if len(msg_id) > MAX_ID:
        raise WebhookError("bad_id")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookError("bad_timestamp")
    ts = int(timestamp)
    if abs(now - ts) > tolerance:
        raise WebhookError("stale_timestamp")

    candidates = _v1_macs(signature)
    if not candidates:
        raise WebhookError("bad_signature")
    keys = [decode_secret(s) for s in secrets]
    try:
        expected = [_mac(key, msg_id, timestamp, body) for key in keys]
    except UnicodeEncodeError:  # a lone surrogate no sender could have signed
        raise WebhookError("bad_signature") from None
    # Compare every pair without stopping early, so timing says nothing about which one matched.
    matched = False
    for mac in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(mac, candidate)
    if not matched:
        raise WebhookError("bad_signature")
    return msg_id, ts
