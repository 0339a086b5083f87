"""The admin listener: ``/metrics`` and the detailed health, on a loopback port of its own.

The public listener (behind the reverse proxy) answers ``/healthz`` with up or failing and
nothing more; what names rooms, cameras and incidents is served here, on ``service.admin_host``
(loopback, enforced by the settings) and ``service.admin_port``. Prometheus scrapes it from the
same machine, or through an SSH tunnel or a local agent; nginx never proxies it.

The listener is its own ``AppRunner``, started as the last ``cleanup_ctx`` entry of the main
application (so it reports a service that is up) and stopped first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .metrics import Metrics

logger = logging.getLogger(__name__)


def admin_app(metrics: Metrics, details: Callable[[], dict[str, Any]]) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def details_handler(_: web.Request) -> web.Response:
        return web.json_response(details())

    async def health_handler(_: web.Request) -> web.Response:
        failing = details().get("status") == "failing"
        return web.json_response({"status": "failing" if failing else "ok"}, status=503 if failing else 200)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz/details", details_handler)
    app.router.add_get("/healthz", health_handler)
    return app


def admin_ctx(admin: web.Application, host: str,
              port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(_: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(admin, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            logger.info("admin listener (metrics, detailed health) on %s port %d", host, port)
            yield
        finally:
            await runner.cleanup()

    return ctx
