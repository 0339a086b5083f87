"""Test doubles for external services (see ``telegram_api`` for the Telegram Bot API fake)."""

from .telegram_api import FakeMessage, FakeTelegram
from .telegram_rules import ApiError

__all__ = ["ApiError", "FakeMessage", "FakeTelegram"]
