"""The officer's live page: sign-in, mosaic, live video (``live``, ``media``) and its static files."""
