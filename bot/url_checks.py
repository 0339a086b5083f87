"""Checks of the service's URLs in the settings: the Telegram Bot API base (the token travels in its paths).

Stdlib only; ``bot.settings`` validates with it, and re-exports ``LOOPBACK_HOSTS`` for the CLIs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
BOT_API = "https://api.telegram.org"


def bot_api_base(v: str) -> str:
    """A Bot API base URL (the official server, a local Bot API server, an outbound proxy).

    HTTPS, because the token travels in every request path; plain HTTP only to this machine
    (a local ``telegram-bot-api`` server). No credentials, query or fragment: Vigie appends
    ``/bot<token>/<method>`` (``/file/bot<token>/<path>`` for files) itself.
    """
    parts = urlsplit(v.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an absolute URL such as https://api.telegram.org")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("must use https (the bot token is in every request); http is only allowed to localhost")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not carry credentials, a query or a fragment")
    path = parts.path.rstrip("/")
    if path.endswith(("/bot", "/file/bot")):
        raise ValueError("give the server's base URL without the /bot suffix, e.g. https://api.telegram.org")
    return f"{parts.scheme}://{parts.netloc}{path}"
