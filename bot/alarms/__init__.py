"""Alarm webhooks: the signed HTTP route (``route``) and Standard Webhooks verification (``verify``)."""
