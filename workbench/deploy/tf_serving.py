"""TF Serving's REST API (tensorflow/serving `g3doc/api_rest.md`) over the loaded models:

    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]            model_version_status
    GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata   signature_def
    POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict    {"instances"} or {"inputs"}

Row format ("instances" -> "predictions") and columnar ("inputs" -> "outputs"); one output
loses its name, several come back as objects. Clients choose outputs by `signature_name`;
a signature with inputs of its own (a pipeline's pair task: "a" and "b") is chosen the same
way and runs its own function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI, Request

from workbench.deploy.api import Api, json_type
from workbench.deploy.batching import ServiceError
from workbench.deploy.models import LoadedVersion, ModelStore
from workbench.deploy.signatures import (
    DEFAULT_SIGNATURE,
    TF_DTYPES,
    Signature,
    SignatureDef,
    TensorSpec,
    short_repr,
)

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
    defs = {
        key: {
            "inputs": {t.name: _tf_tensor(t) for t in entry.inputs},
            "outputs": {t.name: _tf_tensor(t) for t in entry.outputs},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
        for key, entry in signature.defs().items()
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
            f"'instances' must be a list with one item per row; got a JSON {json_type(value)}.",
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


def _tf_signature(signature: Signature, signature_name: str) -> tuple[SignatureDef, list[int]]:
    """The signature a request names and the positions of its outputs among its function's."""
    found = signature.defs()
    key = signature_name or DEFAULT_SIGNATURE
    if key not in found:
        raise ServiceError(
            400,
            f'Serving signature name: "{key}" not found in signature def; this model has '
            f"{sorted(found)}.",
        )
    entry = found[key]
    outputs = signature.function(entry.function).outputs
    return entry, [outputs.index(t) for t in entry.outputs]


def _tf_arrays(specs: tuple[TensorSpec, ...], rows: bool, value: Any) -> list[np.ndarray]:
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
                        f"Row {i} of 'instances' is a JSON {json_type(row)}; every row must "
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


def _other_signature(signature: Signature, function: str, value: Any) -> str:
    """A hint when the input names sent are another function's (a pipeline's pair task takes
    "a" and "b"): which `signature_name` takes them."""
    sent = value[0] if isinstance(value, list) and value else value
    found = signature.function_for(set(sent)) if isinstance(sent, dict) else None
    if found is None or found == function:
        return ""
    return f' Send "signature_name": "{found or DEFAULT_SIGNATURE}" for the inputs {sorted(sent)}.'


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


def add_routes(app: FastAPI, api: Api) -> None:
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
            entry, picked = _tf_signature(loaded.signature, signature_name)
            if rows:
                api.count(len(value))  # before converting thousands of rows
            try:
                arrays = _tf_arrays(entry.inputs, rows, value)
            except ServiceError as e:
                hint = _other_signature(loaded.signature, entry.function, value)
                raise ServiceError(e.status, f"{e}{hint}") from None
            api.rows(arrays)
            return entry.function, arrays, (picked, entry.outputs)

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
