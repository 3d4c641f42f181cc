"""The REST microservice: TF Serving's REST API and KServe's Open Inference Protocol v2 over the
same loaded models, so clients of either work unchanged (one FastAPI app on uvicorn).

    app = create_app(FolderRepository("/models"), models=["digits@champion"])
    serve(["digits@champion"], model_dir="/models")     # what `workbench serve` runs

TF Serving (tensorflow/serving `g3doc/api_rest.md`):
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]            model_version_status
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata   signature_def
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict    {"instances"} or {"inputs"}
Open Inference Protocol v2 (kserve/open-inference-protocol `inference_rest.md`):
    GET  /v2   /v2/health/live   /v2/health/ready
    GET  /v2/models/{m}[/versions/{v}][/ready]
    POST /v2/models/{m}[/versions/{v}]/infer
Admin (loopback clients only): POST /admin/reload (the alias check, now), GET /admin/status.

Every error is {"error": "<message>"} with the status TF Serving maps its codes to
(`model_servers/http_server.cc`): 400 invalid argument, 403 permission denied, 404 unknown
model, version or label, 413 body over our limit, 429 queue full, 501 unimplemented, 503 not
loaded (or refused), 504 past the request timeout. A 500 is a bug in the service. NaN and
Infinity are read from requests and written in responses as TF Serving does (not strict JSON).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

import workbench
from workbench import params
from workbench.deploy import open_inference, tf_serving
from workbench.deploy.api import Api, JSONResponse, error_response
from workbench.deploy.batching import ServiceError
from workbench.deploy.export import BACKENDS as RUNNERS
from workbench.deploy.models import ModelStore
from workbench.deploy.repositories import (
    FolderRepository,
    ModelRepository,
    RegistryRepository,
    parse_ref,
)
from workbench.errors import ServingError

log = logging.getLogger("workbench.serve")

DEFAULT_PORT = 8500
MAX_BATCH = 256
QUEUE_SIZE = 64
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LOADED = 4
LOOPBACK = ("127.0.0.1", "::1", "localhost")
BACKENDS = ("auto", *RUNNERS)  # auto: the faster one that passed the export check


def create_app(
    repository: ModelRepository,
    *,
    models: Sequence[str] | None = None,
    backend: str = "auto",
    max_batch: int = MAX_BATCH,
    max_wait_ms: float = 0.0,
    queue_size: int = QUEUE_SIZE,
    request_timeout: float = 1.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    poll_seconds: float = 5.0,
    max_loaded: int = MAX_LOADED,
) -> FastAPI:
    """The service over `repository`, serving `models` ("digits", "digits@champion",
    "digits/3"; None: every model it holds). The default versions load and warm up once the
    app starts (live at once, ready when loaded); labels are re-checked every `poll_seconds`
    (0: only on POST /admin/reload)."""
    params.check_choice("backend", backend, BACKENDS)
    params.check_int("max_batch", max_batch, minimum=1)
    params.check_number("max_wait_ms", max_wait_ms, minimum=0)
    params.check_int("queue_size", queue_size, minimum=1)
    params.check_number("request_timeout", request_timeout, minimum=0, exclusive_minimum=True)
    params.check_int("max_body_bytes", max_body_bytes, minimum=1024)
    params.check_number("poll_seconds", poll_seconds, minimum=0)
    params.check_int("max_loaded", max_loaded, minimum=1)
    store = ModelStore(
        repository,
        models=models,
        backend=backend,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        max_loaded=max_loaded,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await store.start()
        poller = asyncio.ensure_future(_poll(store, poll_seconds)) if poll_seconds else None
        yield
        if poller is not None:
            poller.cancel()
        await store.close()

    app = FastAPI(
        title="workbench model service",
        version=workbench.__version__,
        description=__doc__,
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.store = store
    _add_error_handlers(app)
    api = Api(store, max_batch, request_timeout, max_body_bytes)
    tf_serving.add_routes(app, api)
    open_inference.add_routes(app, api)
    _add_admin_routes(app, api)
    return app


async def _poll(store: ModelStore, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await store.refresh()
        except Exception:  # keep polling: the next check may succeed
            log.exception("the alias check failed")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def serviceerror_response(request: Request, e: ServiceError) -> JSONResponse:
        return error_response(e.status, str(e))

    @app.exception_handler(404)
    async def no_route(request: Request, e: Exception) -> JSONResponse:
        return error_response(
            404,
            f"No route {request.method} {request.url.path}; see /docs for the routes (TF "
            "Serving under /v1/models, Open Inference Protocol v2 under /v2).",
        )

    @app.exception_handler(405)
    async def wrong_method(request: Request, e: Exception) -> JSONResponse:
        response = error_response(405, f"{request.method} {request.url.path}: Method Not Allowed.")
        response.headers.update(getattr(e, "headers", None) or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validationerror_response(request: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(400, f"Invalid request: {e.errors()}")

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500, f"Internal error (a bug in the service, not in the request): {e!r}"
        )


# -- admin ---------------------------------------------------------------------------------------
def _add_admin_routes(app: FastAPI, api: Api) -> None:
    store = api.store

    def loopback_only(request: Request) -> None:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK and not host.startswith("127."):
            raise ServiceError(
                403,
                f"The admin API answers loopback clients only; this request came from "
                f"{host or 'an unknown address'}. Call it on the service's own host (e.g. "
                "docker exec ... curl -X POST http://127.0.0.1:8500/admin/reload).",
            )

    @app.post("/admin/reload", summary="Check the labels now (and retry refused versions)")
    async def admin_reload(request: Request):
        loopback_only(request)
        return {"changes": await store.refresh(retry=True)}

    @app.get("/admin/status", summary="Labels, loaded versions, queues and refusals")
    async def admin_status(request: Request):
        loopback_only(request)
        return store.status()


# -- running it ------------------------------------------------------------------------------------
def serve(
    models: Sequence[str] = (),
    *,
    model_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    backend: str = "auto",
    max_batch: int = MAX_BATCH,
    max_wait_ms: float = 0.0,
    queue_size: int = QUEUE_SIZE,
    request_timeout: float = 1.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    poll_seconds: float = 5.0,
) -> None:
    """Run the service with uvicorn until SIGTERM or Ctrl-C: it stops accepting connections,
    finishes the requests in flight, unloads the models and returns (exit status 0).

    The models come from `model_dir` (TF Serving's folder layout; every model in it unless
    `models` names some) or, without it, from the MLflow model registry (`models` required).
    """
    import uvicorn

    params.check_int("port", port, minimum=0, maximum=65535)
    params.check_str("host", host)
    if model_dir is not None:
        repository: ModelRepository = FolderRepository(params.check_path("model_dir", model_dir))
    elif models:
        repository = RegistryRepository(sorted({parse_ref(m)[0] for m in models}))
    else:
        raise ServingError(
            "Nothing to serve: name a registered model (--model digits@champion) or a model "
            "folder (--model-dir /models)."
        )
    app = create_app(
        repository,
        models=list(models) or None,
        backend=backend,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        request_timeout=request_timeout,
        max_body_bytes=max_body_bytes,
        poll_seconds=poll_seconds,
    )
    _log_to_stderr()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # a log line per request costs more than a small model's call
        timeout_graceful_shutdown=request_timeout + 10.0,
        log_level="info",
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: Any) -> None:
        """While uvicorn runs, its own handler shuts down gracefully and then raises the signal
        again for this one, so the process ends normally (status 0) instead of being killed
        by the signal; before uvicorn runs, this one asks it to stop at once."""
        server.should_exit = True
        log.info(
            "stopped on %s after finishing the requests in flight", signal.Signals(signum).name
        )

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    server.run()


def _log_to_stderr() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
