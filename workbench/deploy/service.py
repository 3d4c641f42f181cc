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
import json
import logging
import signal
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

import workbench
from workbench import params
from workbench.deploy.batching import BatcherClosed, ServiceError
from workbench.deploy.export import BACKENDS as RUNNERS
from workbench.deploy.models import (
    TF_DTYPES,
    V2_DTYPES,
    FolderRepository,
    LoadedVersion,
    ModelRepository,
    ModelStore,
    RegistryRepository,
    Signature,
    TensorSpec,
    parse_ref,
    short_repr,
)
from workbench.errors import ServingError

log = logging.getLogger("workbench.serve")

DEFAULT_PORT = 8500
MAX_BATCH = 256
QUEUE_SIZE = 64
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LOADED = 4
DEFAULT_SIGNATURE = "serving_default"
PLATFORMS = {"onnx": "onnx_onnxv1", "keras": "keras_keras"}  # OIP's "<project>_<format>"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
BACKENDS = ("auto", *RUNNERS)  # auto: the faster one that passed the export check
_NUMERIC_V2 = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
               "UINT32", "UINT64"}  # fmt: skip


class JSONResponse(Response):
    """JSON that writes NaN, Infinity and -Infinity as TF Serving does (Starlette's own
    JSONResponse refuses them, which would turn a NaN output into a 500)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=True, separators=(",", ":")).encode()


_TF_BODY = {  # what /docs shows for :predict (the handler reads the body itself)
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "signature_name": {"type": "string"},
                        "instances": {"type": "array", "description": "one item per row"},
                        "inputs": {"description": "columnar: a tensor or {name: tensor}"},
                    },
                }
            }
        },
    }
}
_V2_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "shape", "datatype", "data"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "datatype": {"type": "string", "example": "FP32"},
                                    "data": {"type": "array"},
                                    "parameters": {"type": "object"},
                                },
                            },
                        },
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
    api = _Api(store, max_batch, request_timeout, max_body_bytes)
    _add_tf_routes(app, api)
    _add_v2_routes(app, api)
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
    async def service_error(request: Request, e: ServiceError) -> JSONResponse:
        return _error(e.status, str(e))

    @app.exception_handler(404)
    async def no_route(request: Request, e: Exception) -> JSONResponse:
        return _error(
            404,
            f"No route {request.method} {request.url.path}; see /docs for the routes (TF "
            "Serving under /v1/models, Open Inference Protocol v2 under /v2).",
        )

    @app.exception_handler(405)
    async def wrong_method(request: Request, e: Exception) -> JSONResponse:
        response = _error(405, f"{request.method} {request.url.path}: Method Not Allowed.")
        response.headers.update(getattr(e, "headers", None) or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        return _error(400, f"Invalid request: {e.errors()}")

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"Internal error (a bug in the service, not in the request): {e!r}")


class _Api:
    """The request handlers shared by both protocols."""

    def __init__(
        self, store: ModelStore, max_batch: int, request_timeout: float, max_body_bytes: int
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.timeout = request_timeout
        self.max_body = max_body_bytes

    async def body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object (NaN and Infinity allowed), within the size limit."""
        if request.headers.get("inference-header-content-length"):
            raise ServiceError(
                501,
                "The binary tensor data extension (Inference-Header-Content-Length) is not "
                "implemented; send the tensors as JSON in 'data'.",
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > 8 * self.max_body:
            raise self.too_large(int(declared))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= self.max_body:
                chunks.append(chunk)
            elif size > 8 * self.max_body:
                break  # read enough of it to answer; the connection closes
        if size > self.max_body:
            raise self.too_large(size)
        return _parse_json(b"".join(chunks), request.headers.get("content-type"))

    def too_large(self, size: int) -> ServiceError:
        return ServiceError(
            413,
            f"Request body has {size:,} bytes; this service takes at most "
            f"{self.max_body:,} (--max-body-bytes). Send fewer rows per request.",
        )

    async def infer(
        self, name: str, version: str | None, label: str | None, prepare
    ) -> tuple[LoadedVersion, Any, list[np.ndarray]]:
        """Look up the version, build its input arrays with `prepare(loaded)` and run them
        through its batcher. The look-up, checks and queueing run without an await between
        them, so a hot swap cannot unload the version in between; a version unloaded while
        this request was waiting for its load is looked up again."""
        for _ in range(3):
            loaded = await self.store.served(name, version=version, label=label)
            arrays, selection = prepare(loaded)
            try:
                outputs = await loaded.batcher.infer(arrays, timeout=self.timeout)
            except BatcherClosed:
                continue
            return loaded, selection, outputs
        raise ServiceError(503, f"Model {name!r} is being swapped; retry in a moment.")

    def rows(self, arrays: list[np.ndarray]) -> None:
        """One row count for all inputs, within --max-batch."""
        counts = {int(a.shape[0]) for a in arrays}
        if len(counts) > 1:
            raise ServiceError(
                400,
                f"The inputs have different numbers of rows {sorted(counts)}; every input "
                "needs one value per row.",
            )
        self.count(counts.pop())

    def count(self, n: int) -> None:
        if n > self.max_batch:
            raise ServiceError(
                400,
                f"The request has {n} rows; this service takes at most {self.max_batch} per "
                "request (--max-batch). Split it into smaller requests.",
            )


def _parse_json(body: bytes, content_type: str | None) -> dict[str, Any]:
    sent = f" (the request said Content-Type {content_type!r})" if content_type else ""
    if not body.strip():
        raise ServiceError(400, f"Request body is empty; send a JSON object{sent}.")
    try:
        value = json.loads(body)
    except RecursionError:
        raise ServiceError(400, "Request body nests JSON too deeply to read.") from None
    except UnicodeDecodeError as e:
        raise ServiceError(400, f"Request body is not UTF-8 text ({e.reason}){sent}.") from None
    except json.JSONDecodeError as e:
        raise ServiceError(
            400,
            f"Request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno} "
            f"(offset {e.pos}){sent}. Send a JSON object with Content-Type: application/json.",
        ) from None
    if not isinstance(value, dict):
        raise ServiceError(
            400, f"Request body must be a JSON object; got a JSON {_json_type(value)}."
        )
    return value


def _json_type(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


# -- TF Serving --------------------------------------------------------------------------------
def _signatures(signature: Signature) -> dict[str, tuple[TensorSpec, ...]]:
    """serving_default gives every output; with several outputs each also has a signature
    of its own (TF Serving clients choose outputs by `signature_name`)."""
    found = {DEFAULT_SIGNATURE: signature.outputs}
    if len(signature.outputs) > 1:
        found.update({t.name: (t,) for t in signature.outputs})
    return found


def _tf_tensor(spec: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": TF_DTYPES.get(spec.dtype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
        "name": f"{spec.name}:0",
    }


def _tf_metadata(name: str, version: str, signature: Signature) -> dict[str, Any]:
    inputs = {t.name: _tf_tensor(t) for t in signature.inputs}
    defs = {
        key: {
            "inputs": inputs,
            "outputs": {t.name: _tf_tensor(t) for t in outputs},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
        for key, outputs in _signatures(signature).items()
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {"signature_def": {"signature_def": defs}},
    }


def _tf_request(body: dict[str, Any]) -> tuple[bool, Any, str]:
    """(row format?, its instances or inputs, signature name) of a predict request."""
    signature = body.get("signature_name", "")
    if not isinstance(signature, str):
        raise ServiceError(400, f"'signature_name' must be a string; got {short_repr(signature)}.")
    rows, columns = "instances" in body, "inputs" in body
    if rows and columns:
        raise ServiceError(
            400,
            "The request has both 'instances' (row format) and 'inputs' (columnar format); "
            "send exactly one of them.",
        )
    if not rows and not columns:
        raise ServiceError(
            400,
            f"The request has neither 'instances' nor 'inputs' (its keys: {sorted(body)}); "
            'send {"instances": [...]} (one item per row) or {"inputs": ...} (columnar).',
        )
    value = body["instances" if rows else "inputs"]
    if rows and not isinstance(value, list):
        raise ServiceError(
            400,
            f"'instances' must be a list with one item per row; got a JSON {_json_type(value)}.",
        )
    if rows and not value:
        raise ServiceError(400, "'instances' is an empty list; send at least one row.")
    if columns and _looks_like_v2(value):
        raise ServiceError(
            400,
            "'inputs' holds Open Inference Protocol v2 tensors ({name, shape, datatype, "
            "data}); send them to /v2/models/{name}/infer, or send the nested values here.",
        )
    return rows, value, signature


def _looks_like_v2(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _tf_outputs(
    signature: Signature, signature_name: str
) -> tuple[list[int], tuple[TensorSpec, ...]]:
    found = _signatures(signature)
    key = signature_name or DEFAULT_SIGNATURE
    if key not in found:
        raise ServiceError(
            400,
            f'Serving signature name: "{key}" not found in signature def; this model has '
            f"{sorted(found)}.",
        )
    specs = found[key]
    return [signature.outputs.index(t) for t in specs], specs


def _tf_arrays(loaded: LoadedVersion, rows: bool, value: Any) -> list[np.ndarray]:
    specs = loaded.signature.inputs
    names = [t.name for t in specs]
    if rows:
        named = isinstance(value[0], dict)
        if len(specs) > 1 and not named:
            raise ServiceError(
                400,
                f"'instances' is a plain list, but the model takes the named inputs {names}; "
                "send one object {name: value} per row.",
            )
        if named:
            for i, row in enumerate(value):
                if not isinstance(row, dict):
                    raise ServiceError(
                        400,
                        f"Row {i} of 'instances' is a JSON {_json_type(row)}; every row must "
                        f"be an object with the keys {names}.",
                    )
                if sorted(row) != sorted(names):
                    raise ServiceError(
                        400,
                        f"Row {i} of 'instances' has keys {sorted(row)}; every row must be an "
                        f"object with exactly the keys {names} ({_key_difference(row, specs)}).",
                    )
            columns = [[row[n] for row in value] for n in names]
        else:
            columns = [value]
    elif isinstance(value, dict):
        if sorted(value) != sorted(names):
            raise ServiceError(
                400,
                f"'inputs' has keys {sorted(value)}; the model takes {names} "
                f"({_key_difference(value, specs)}).",
            )
        columns = [value[n] for n in names]
    else:
        if len(specs) > 1:
            raise ServiceError(
                400,
                f"'inputs' is a plain value or list, but the model takes the named inputs "
                f"{names}; send an object {{name: values}}.",
            )
        columns = [value]
    return [t.convert(v, what=f"Input {t.name!r}") for t, v in zip(specs, columns, strict=True)]


def _key_difference(given: dict[str, Any], specs: tuple[TensorSpec, ...]) -> str:
    names = [t.name for t in specs]
    missing = [n for n in names if n not in given]
    text = f"missing {missing}, unknown {sorted(set(given) - set(names))}"
    if any(t.nonfinite == "nan" for t in specs):  # table columns
        text += "; send a missing value as NaN (numbers) or '' (text)"
    return text


def _tf_answer(
    rows: bool, specs: tuple[TensorSpec, ...], outputs: list[np.ndarray]
) -> dict[str, Any]:
    if len(specs) == 1:
        return {"predictions" if rows else "outputs": outputs[0].tolist()}
    lists = {t.name: y.tolist() for t, y in zip(specs, outputs, strict=True)}
    if not rows:
        return {"outputs": lists}
    rows_of = zip(*lists.values(), strict=True)
    return {"predictions": [dict(zip(lists, row, strict=True)) for row in rows_of]}


def _add_tf_routes(app: FastAPI, api: _Api) -> None:
    store = api.store

    async def status(name: str, version: str | None = None, label: str | None = None):
        _no_method(name, version, label)
        if version is None and label is None:
            versions = await store.versions(name)
        else:
            versions = [await store.version_of(name, version=version, label=label)]
        return {"model_version_status": [_version_status(store, name, v) for v in versions]}

    async def metadata(name: str, version: str | None = None, label: str | None = None):
        number = await store.version_of(name, version=version, label=label)
        signature = Signature.from_export(await store.export(name, number))
        return _tf_metadata(name, number, signature)

    async def predict(
        request: Request, name: str, version: str | None = None, label: str | None = None
    ):
        rows, value, signature_name = _tf_request(await api.body(request))

        def prepare(loaded: LoadedVersion):
            picked, specs = _tf_outputs(loaded.signature, signature_name)
            if rows:
                api.count(len(value))  # before converting thousands of rows
            arrays = _tf_arrays(loaded, rows, value)
            api.rows(arrays)
            return arrays, (picked, specs)

        _, (picked, specs), outputs = await api.infer(name, version, label, prepare)
        return _tf_answer(rows, specs, [outputs[i] for i in picked])

    async def unimplemented(request: Request):
        name, method = request.path_params["name"], request.url.path.rsplit(":", 1)[-1]
        raise ServiceError(
            501,
            f"The {method} API is not implemented (it takes tf.Example inputs); use "
            f"POST /v1/models/{name}:predict or /v2/models/{name}/infer.",
        )

    @app.get("/v1/models/{name}", summary="TF Serving: model status")
    async def tf_status(name: str):
        return await status(name)

    @app.get("/v1/models/{name}/versions/{version}", summary="TF: version status")
    async def tf_version_status(name: str, version: str):
        return await status(name, version=version)

    @app.get("/v1/models/{name}/labels/{label}", summary="TF: label status")
    async def tf_label_status(name: str, label: str):
        return await status(name, label=label)

    @app.get("/v1/models/{name}/metadata", summary="TF Serving: signature_def")
    async def tf_metadata(name: str):
        return await metadata(name)

    @app.get("/v1/models/{name}/versions/{version}/metadata", summary="TF")
    async def tf_version_metadata(name: str, version: str):
        return await metadata(name, version=version)

    @app.get("/v1/models/{name}/labels/{label}/metadata", summary="TF")
    async def tf_label_metadata(name: str, label: str):
        return await metadata(name, label=label)

    @app.post("/v1/models/{name}:predict", summary="TF Serving: predict", openapi_extra=_TF_BODY)
    async def tf_predict(request: Request, name: str):
        return await predict(request, name)

    @app.post(
        "/v1/models/{name}/versions/{version}:predict",
        summary="TF",
        openapi_extra=_TF_BODY,
    )
    async def tf_version_predict(request: Request, name: str, version: str):
        return await predict(request, name, version=version)

    @app.post(
        "/v1/models/{name}/labels/{label}:predict",
        summary="TF",
        openapi_extra=_TF_BODY,
    )
    async def tf_label_predict(request: Request, name: str, label: str):
        return await predict(request, name, label=label)

    for method in ("classify", "regress"):
        for suffix in ("", "/versions/{version}", "/labels/{label}"):
            app.add_api_route(
                f"/v1/models/{{name}}{suffix}:{method}",
                unimplemented,
                methods=["POST"],
                include_in_schema=False,
            )


def _no_method(*parts: str | None) -> None:
    """A GET whose path ends in ":predict" (the status route took it): TF Serving's methods
    take POST."""
    for part in parts:
        if part and ":" in part:
            method = part.split(":", 1)[1]
            raise ServiceError(
                405, f"GET on :{method}: Method Not Allowed; send POST with a JSON body."
            )


def _version_status(store: ModelStore, name: str, version: str) -> dict[str, Any]:
    state = store.state(name, version)
    return {
        "version": version,
        "state": state.state,
        "status": {"error_code": state.error_code, "error_message": state.error_message},
    }


# -- Open Inference Protocol v2 ------------------------------------------------------------------
def _v2_tensor(spec: TensorSpec) -> dict[str, Any]:
    datatype = V2_DTYPES.get(spec.dtype, spec.dtype)
    return {"name": spec.name, "datatype": datatype, "shape": list(spec.shape)}


def _v2_accepts(spec: TensorSpec) -> set[str]:
    """The datatypes a client may send for `spec` (integers and FP64 convert to FP32)."""
    if spec.dtype == "string":
        return {"BYTES"}
    if np.dtype(spec.dtype).kind == "f":
        return _NUMERIC_V2
    if np.dtype(spec.dtype).kind in "iu":
        return {t for t in _NUMERIC_V2 if not t.startswith("FP")}
    return {V2_DTYPES.get(spec.dtype, spec.dtype)}


def _v2_parameters(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise ServiceError(
            400,
            f"{where} 'parameters' must be an object {{name: value}}; got a JSON "
            f"{_json_type(value)}.",
        )


def _v2_request(body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str] | None, str]:
    """(input tensors by name, requested output names or None, request id)."""
    if "instances" in body:
        raise ServiceError(
            400,
            "This is a TF Serving request ('instances'); send it to "
            "/v1/models/{name}:predict, or send v2 tensors in 'inputs'.",
        )
    _v2_parameters(body.get("parameters"), "The request's")
    request_id = body.get("id", None)
    if request_id is not None and not isinstance(request_id, str):
        raise ServiceError(400, f"'id' must be a string; got {short_repr(request_id)}.")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise ServiceError(
            400,
            '\'inputs\' must be a non-empty list of tensors {"name", "shape", "datatype", '
            f'"data"}}; got {"nothing" if tensors is None else repr(tensors)[:80]}.',
        )
    by_name: dict[str, dict[str, Any]] = {}
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict):
            raise ServiceError(
                400,
                f"inputs[{i}] must be an object {{name, shape, datatype, data}}; got a "
                f"JSON {_json_type(tensor)}.",
            )
        missing = [k for k in ("name", "shape", "datatype", "data") if k not in tensor]
        if missing:
            raise ServiceError(
                400, f"inputs[{i}] lacks {missing}; a tensor needs name, shape, datatype and data."
            )
        name = tensor["name"]
        if not isinstance(name, str) or name in by_name:
            what = "not a string" if not isinstance(name, str) else "a duplicate"
            raise ServiceError(400, f"inputs[{i}] has name {short_repr(name)}, {what}.")
        _v2_parameters(tensor.get("parameters"), f"Input {name!r}:")
        by_name[name] = tensor
    wanted = body.get("outputs")
    if wanted is None:
        return by_name, None, request_id or uuid.uuid4().hex
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted
    ):
        raise ServiceError(
            400, f"'outputs' must be a list of objects {{\"name\": ...}}; got {short_repr(wanted)}."
        )
    for o in wanted:
        _v2_parameters(o.get("parameters"), f"Output {o['name']!r}:")
    return by_name, [o["name"] for o in wanted], request_id or uuid.uuid4().hex


def _v2_arrays(signature: Signature, tensors: dict[str, dict[str, Any]]) -> list[np.ndarray]:
    names = signature.input_names
    unknown = sorted(set(tensors) - set(names))
    missing = [n for n in names if n not in tensors]
    if unknown or missing:
        raise ServiceError(
            400,
            f"The request's inputs are {sorted(tensors)}; the model takes {names} "
            f"(missing {missing}, unknown {unknown}). See GET /v2/models/{{name}}.",
        )
    arrays = []
    for spec in signature.inputs:
        tensor = tensors[spec.name]
        what = f"Input {spec.name!r}"
        shape, datatype, data = tensor["shape"], tensor["datatype"], tensor["data"]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ServiceError(
                400,
                f"{what}: 'shape' must be a list of non-negative integers; got "
                f"{short_repr(shape)}.",
            )
        accepts = _v2_accepts(spec)
        if not isinstance(datatype, str) or datatype not in accepts:
            raise ServiceError(
                400,
                f"{what} has datatype {short_repr(datatype)}; the model takes "
                f"{V2_DTYPES.get(spec.dtype, spec.dtype)} (also accepted: {sorted(accepts)}).",
            )
        if not isinstance(data, list):
            raise ServiceError(
                400,
                f"{what}: 'data' must be a list (nested or flat, row-major); got a JSON "
                f"{_json_type(data)}.",
            )
        values = _v2_values(spec, data, datatype, what)
        if values.size != int(np.prod(shape)):
            raise ServiceError(
                400,
                f"{what}: 'data' holds {values.size} values, but shape {shape} needs "
                f"{int(np.prod(shape))}.",
            )
        arrays.append(spec.convert(values.reshape(shape), what=what))
    return arrays


def _v2_values(spec: TensorSpec, data: list, datatype: str, what: str) -> np.ndarray:
    """`data` (nested or flat) as one array, refusing values its datatype cannot hold."""
    try:
        values = np.asarray(data, dtype=object if spec.dtype == "string" else None)
    except (ValueError, TypeError, OverflowError):
        raise ServiceError(
            400, f"{what}: 'data' is a ragged nested list; send it flat or with equal lengths."
        ) from None
    if datatype.startswith(("INT", "UINT")) and not _integral(values):
        raise ServiceError(
            400,
            f"{what} has datatype {datatype}, but 'data' holds non-integer numbers; "
            "send FP32 for them.",
        )
    return values


def _integral(values: np.ndarray) -> bool:
    if values.dtype.kind != "f":
        return True
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.mod(values, 1) == 0))


def _v2_outputs(signature: Signature, wanted: list[str] | None) -> list[int]:
    names = signature.output_names
    if wanted is None:
        return list(range(len(names)))
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ServiceError(
            400, f"Unknown output(s) {unknown} in 'outputs'; the model gives {names}."
        )
    return [names.index(n) for n in wanted]


def _add_v2_routes(app: FastAPI, api: _Api) -> None:
    store = api.store

    async def model_metadata(name: str, version: str | None = None):
        number = await store.version_of(name, version=version)
        export = await store.export(name, number)
        signature = Signature.from_export(export)
        backend = store.backend_for(export)
        return {
            "name": name,
            "versions": await store.versions(name),
            "platform": PLATFORMS.get(backend, backend),
            "inputs": [_v2_tensor(t) for t in signature.inputs],
            "outputs": [_v2_tensor(t) for t in signature.outputs],
        }

    async def model_ready(name: str, version: str | None = None):
        store.check_name(name)
        if version is not None:
            await store.version_of(name, version=version)
        ready, why = store.ready(name, version)
        body = {"name": name, "ready": ready}
        return JSONResponse(body if ready else {**body, "error": why}, 200 if ready else 400)

    async def infer(request: Request, name: str, version: str | None = None):
        tensors, wanted, request_id = _v2_request(await api.body(request))

        def prepare(loaded: LoadedVersion):
            picked = _v2_outputs(loaded.signature, wanted)
            arrays = _v2_arrays(loaded.signature, tensors)
            api.rows(arrays)
            return arrays, picked

        loaded, picked, outputs = await api.infer(name, version, None, prepare)
        return {
            "model_name": name,
            "model_version": loaded.version,
            "id": request_id,
            "outputs": [
                {
                    **_v2_tensor(loaded.signature.outputs[i]),
                    "shape": list(outputs[i].shape),
                    "data": outputs[i].ravel().tolist(),
                }
                for i in picked
            ],
        }

    @app.get("/v2", summary="OIP v2: server metadata")
    async def v2_server():
        return {"name": "workbench", "version": workbench.__version__, "extensions": []}

    @app.get("/v2/health/live", summary="OIP v2: live (200) as soon as HTTP is served")
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready", summary="OIP v2: ready (200) once every default model is")
    async def v2_ready():
        ready, why = store.ready()
        return JSONResponse({"ready": True} if ready else {"ready": False, "error": why},
                            200 if ready else 400)  # fmt: skip

    @app.get("/v2/models/{name}", summary="OIP v2: model metadata")
    async def v2_metadata(name: str):
        return await model_metadata(name)

    @app.get("/v2/models/{name}/versions/{version}", summary="OIP v2")
    async def v2_version_metadata(name: str, version: str):
        return await model_metadata(name, version)

    @app.get("/v2/models/{name}/ready", summary="OIP v2: model ready (200) or not (400)")
    async def v2_model_ready(name: str):
        return await model_ready(name)

    @app.get("/v2/models/{name}/versions/{version}/ready", summary="OIP v2")
    async def v2_version_ready(name: str, version: str):
        return await model_ready(name, version)

    @app.post("/v2/models/{name}/infer", summary="OIP v2: inference", openapi_extra=_V2_BODY)
    async def v2_infer(request: Request, name: str):
        return await infer(request, name)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        summary="OIP v2",
        openapi_extra=_V2_BODY,
    )
    async def v2_version_infer(request: Request, name: str, version: str):
        return await infer(request, name, version)


# -- admin ---------------------------------------------------------------------------------------
def _add_admin_routes(app: FastAPI, api: _Api) -> None:
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
