"""The ASGI app of `galaxy-hpc serve`: the stores, the models and their batching queues,
the guards, the routes, and errors as one line of JSON.

FastAPI's own /docs page loads Swagger UI from a CDN, which compute nodes cannot reach:
it is off, /openapi.json stays, and /docs is a local page that lists the API from it.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import galaxy_hpc
from galaxy_hpc.serve.batching import BatchQueue, QueueFull
from galaxy_hpc.serve.catalog import NotFound, StoreSet, ThumbnailCache
from galaxy_hpc.serve.catalog_routes import catalog_router
from galaxy_hpc.serve.config import ServeConfig
from galaxy_hpc.serve.infer_routes import infer_router
from galaxy_hpc.serve.limits import install_guards, json_error
from galaxy_hpc.serve.metrics import Metrics

STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class ServeState:
    cfg: ServeConfig
    stores: StoreSet
    thumbnails: ThumbnailCache
    metrics: Metrics
    queues: dict[str, BatchQueue] = field(default_factory=dict)  # "model", "base"

    def queue_depth(self) -> tuple[int, int]:
        depths = [q.depth for q in self.queues.values()]
        return sum(d[0] for d in depths), sum(d[1] for d in depths)


def load_queues(cfg: ServeConfig, metrics: Metrics) -> dict[str, BatchQueue]:
    """Each configured model loaded (galaxy_hpc.generate.ondemand) behind its own queue."""
    from galaxy_hpc.generate.ondemand import load_ondemand

    queues = {}
    for name, section in (("model", cfg.model), ("base", cfg.base_model)):
        if section is None:
            continue
        model = load_ondemand(section, cfg.sampler, cfg.runtime)
        queues[name] = BatchQueue(model, max_batch=cfg.batching.max_batch,
                                  max_wait_s=cfg.batching.max_wait_ms / 1000,
                                  max_queue_images=cfg.limits.max_queue_images,
                                  on_batch=metrics.batch)
    return queues


def create_app(cfg: ServeConfig, *, queues: dict[str, BatchQueue] | None = None) -> FastAPI:
    """The app over `cfg`'s stores and models (`queues`: already loaded ones, e.g. a test's)."""
    metrics = Metrics()
    state = ServeState(cfg=cfg, stores=StoreSet(cfg.stores, cfg.reports),
                       thumbnails=ThumbnailCache(cfg.thumbnail_cache), metrics=metrics)
    state.queues = queues if queues is not None else load_queues(cfg, metrics)
    for queue in state.queues.values():
        queue.on_batch = metrics.batch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        for queue in state.queues.values():
            queue.close()

    app = FastAPI(title="galaxy-hpc serve", version=galaxy_hpc.__version__, docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="Browse galaxy stores and draw galaxies from trained models.")
    app.state.serve = state
    app.include_router(catalog_router())
    app.include_router(infer_router())
    _add_pages(app, state)
    _add_errors(app)
    install_guards(app, cfg)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        metrics.request(request.url.path, response.status_code, time.perf_counter() - started)
        return response

    return app


def _add_pages(app: FastAPI, state: ServeState) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def browser() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/health", tags=["service"], summary="liveness: ok, stores and models served")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": galaxy_hpc.__version__, "stores": state.stores.names(),
                "models": list(state.queues)}

    @app.get("/metrics-lite", tags=["service"], summary="requests, queue depth, latency "
             "percentiles, images/s")
    def metrics_lite() -> dict[str, Any]:
        snapshot = state.metrics.snapshot(state.queue_depth())
        snapshot["thumbnails"] = {"hits": state.thumbnails.hits,
                                  "misses": state.thumbnails.misses}
        return snapshot


def _add_errors(app: FastAPI) -> None:
    """Every error one line of JSON, {"error": ...}; the server stays up."""

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> JSONResponse:
        return json_error(400, _line(error))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> JSONResponse:
        return json_error(404, _line(error))

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return json_error(503, _line(error), headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        if first.get("type") == "json_invalid":
            return json_error(400, f"malformed JSON body: {first.get('ctx', {}).get('error', '')}"
                              .rstrip(": "))
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return json_error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404:
            detail = f"not found: {request.url.path[:200]}"
        return json_error(error.status_code, detail, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> JSONResponse:
        return json_error(500, f"internal error: {type(error).__name__}: {_line(error)}")


def _line(error: BaseException) -> str:
    return str(error).splitlines()[0][:500] if str(error) else type(error).__name__
