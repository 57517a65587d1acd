"""The service's HTTP application: the WeCom callback, health, metrics, and the routes each
composed feature adds; its start-up and clean-up start and stop the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import text

from scrm.adapters.wecom.callback import CallbackConfig, CallbackView, add_routes
from scrm.kernel.metrics import metrics_view
from scrm.kernel.service import Runtime


def health_view(runtime: Runtime) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /healthz``: 200 when the database answers and every worker runs, else 503."""

    async def healthz(request: web.Request) -> web.Response:
        checks: dict[str, Any] = {}
        try:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        workers = runtime.workers_alive()
        checks["workers"] = workers
        # A refused reload does not make the instance unhealthy (the last good playbook runs), but
        # it is said here and in /metrics (scrm_playbook_reload_failed), not found at the next restart.
        checks["playbook"] = {"version": runtime.playbook.version, "reload_failed": runtime.playbook.reload_failed}
        healthy = checks["database"] == "ok" and all(workers.values())
        return web.json_response({"status": "ok" if healthy else "unhealthy", **checks},
                                 status=200 if healthy else 503)

    return healthz


def create_app(runtime: Runtime, *, workers: bool = True) -> web.Application:
    """The HTTP application of one service instance: the WeCom callback, health, metrics, and
    the routes each feature adds (its views get their collaborators now, never look them up)."""
    settings = runtime.settings
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    view = CallbackView(
        CallbackConfig(runtime.crypto(), settings.server.max_body_bytes, settings.server.timestamp_window_s),
        runtime.inbox.put_wecom,
        runtime.clock,
    )
    add_routes(app, view)
    app.router.add_get("/healthz", health_view(runtime))
    app.router.add_get("/metrics", metrics_view(runtime))
    for feature in runtime.features:
        if feature.http is not None:
            feature.http(app, runtime)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await runtime.start(workers=workers)
        yield
        await runtime.stop()

    app.cleanup_ctx.append(lifecycle)
    return app
