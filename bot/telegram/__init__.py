"""Telegram rooms: venue security chiefs on their phones (python-telegram-bot, webhook or polling)."""
