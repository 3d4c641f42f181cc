"""KServe's Open Inference Protocol v2 (kserve/open-inference-protocol `inference_rest.md`),
also spoken by Triton, Seldon MLServer and OpenVINO Model Server, over the loaded models:

    GET  /v2   /v2/health/live   /v2/health/ready
    GET  /v2/models/{m}[/versions/{v}][/ready]
    POST /v2/models/{m}[/versions/{v}]/infer

Typed tensors (name, shape, datatype, data nested or flat); integer and FP64 inputs are
converted to the model's dtype; the optional `outputs` list selects what comes back.

The protocol has no signatures: for a version with functions of its own inputs (a pipeline's
pair task takes "a" and "b"), the input names a request sends choose the function, and model
metadata lists every function's inputs and outputs, with one "signature.<name>" parameter
per function saying which inputs give which outputs.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from fastapi import FastAPI, Request

import workbench
from workbench.deploy.api import Api, JSONResponse, json_type
from workbench.deploy.batching import ServiceError
from workbench.deploy.models import LoadedVersion
from workbench.deploy.signatures import (
    DEFAULT_SIGNATURE,
    MAIN,
    V2_DTYPES,
    Signature,
    TensorSpec,
    short_repr,
)

PLATFORMS = {  # OIP's "<project>_<format>"
    "onnx": "onnx_onnxv1",
    "keras": "keras_keras",
    "pipeline": "workbench_pipeline",
}
_NUMERIC_V2 = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
               "UINT32", "UINT64"}  # fmt: skip
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
            f"{json_type(value)}.",
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
                f"JSON {json_type(tensor)}.",
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


def _v2_function(signature: Signature, tensors: dict[str, dict[str, Any]]) -> str:
    """The function the request's input names choose (the main call unless they are exactly
    another function's inputs)."""
    found = signature.function_for(set(tensors))
    if found is not None:
        return found
    if signature.functions:
        takes = [
            f"{signature.function(f).input_names} ({f or DEFAULT_SIGNATURE})"
            for f in (MAIN, *signature.functions)
        ]
        raise ServiceError(
            400,
            f"The request's inputs are {sorted(tensors)}; the model takes {' or '.join(takes)}. "
            "See GET /v2/models/{name}.",
        )
    return MAIN


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
                f"{json_type(data)}.",
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


def _v2_outputs(signature: Signature, wanted: list[str] | None, *, inputs: str = "") -> list[int]:
    names = signature.output_names
    if wanted is None:
        return list(range(len(names)))
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ServiceError(
            400, f"Unknown output(s) {unknown} in 'outputs'; the model gives {names}{inputs}."
        )
    return [names.index(n) for n in wanted]


def _v2_metadata_tensors(signature: Signature) -> dict[str, Any]:
    """Model metadata's inputs and outputs: every function's, and with several functions one
    parameter per function ("signature.pair": "inputs a, b; outputs same")."""
    functions = [signature.function(f) for f in (MAIN, *signature.functions)]
    body: dict[str, Any] = {
        "inputs": [_v2_tensor(t) for f in functions for t in f.inputs],
        "outputs": [_v2_tensor(t) for f in functions for t in f.outputs],
    }
    if signature.functions:
        body["parameters"] = {
            f"signature.{name or DEFAULT_SIGNATURE}": (
                f"inputs {', '.join(f.input_names)}; outputs {', '.join(f.output_names)}"
            )
            for name, f in zip((MAIN, *signature.functions), functions, strict=True)
        }
    return body


def add_routes(app: FastAPI, api: Api) -> None:
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
            **_v2_metadata_tensors(signature),
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
            function = _v2_function(loaded.signature, tensors)
            called = loaded.signature.function(function)
            given = f" for the inputs {called.input_names}" if loaded.signature.functions else ""
            picked = _v2_outputs(called, wanted, inputs=given)
            arrays = _v2_arrays(called, tensors)
            api.rows(arrays)
            return function, arrays, (called, picked)

        loaded, (called, picked), outputs = await api.infer(name, version, None, prepare)
        return {
            "model_name": name,
            "model_version": loaded.version,
            "id": request_id,
            "outputs": [
                {
                    **_v2_tensor(called.outputs[i]),
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
