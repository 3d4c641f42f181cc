"""A client of the service written from the two protocols' documents, not from its code.

TF Serving REST: `POST /v1/models/{name}[/labels/{label}|/versions/{v}]:predict` with
`{"instances": [...]}` answers `{"predictions": [...]}`. Open Inference Protocol v2:
`POST /v2/models/{name}[/versions/{v}]/infer` with typed tensors answers typed tensors. Errors
come back as `{"error": "..."}` with a 4xx or 5xx status; `ServingError` carries both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.errors import ServingError

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32"}


def predict(
    url: str,
    name: str,
    instances: Any,
    *,
    label: str | None = None,
    version: str | None = None,
    signature_name: str | None = None,
    client: Any = None,
) -> list:
    """TF Serving's row format: one instance per example (an array, or a list of {input:
    value} rows for a signature of several inputs); the predictions, in order."""
    path = f"/v1/models/{name}"
    if label is not None:
        path += f"/labels/{label}"
    elif version is not None:
        path += f"/versions/{version}"
    named = isinstance(instances, list) and bool(instances) and isinstance(instances[0], dict)
    if named:  # a row per example of several named inputs, e.g. a pair task's "a" and "b"
        rows = [{k: np.asarray(v).tolist() for k, v in row.items()} for row in instances]
    body = {"instances": rows if named else np.asarray(instances).tolist()}
    if signature_name is not None:
        body["signature_name"] = signature_name
    return _post(url, f"{path}:predict", body, client)["predictions"]


def infer(
    url: str, name: str, inputs: dict[str, np.ndarray], *, version: str | None = None,
    outputs: Sequence[str] | None = None, client=None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Open Inference Protocol v2: each input as a typed tensor (flat data, row-major), and
    optionally the `outputs` wanted; the outputs by name, reshaped, in their datatypes."""
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    body = v2_body(inputs)
    if outputs is not None:
        body["outputs"] = [{"name": o} for o in outputs]
    answer = _post(url, path, body, client)
    dtypes = {v: k for k, v in DATATYPES.items()}
    return {
        out["name"]: np.asarray(out["data"], dtypes.get(out["datatype"], "float32")).reshape(
            out["shape"]
        )
        for out in answer["outputs"]
    }


def v2_body(inputs: dict[str, np.ndarray]) -> dict[str, list]:
    """An Open Inference Protocol v2 infer request: each input a typed tensor, flat row-major."""
    tensors = []
    for input_name, value in inputs.items():
        array = np.asarray(value)
        tensors.append(
            {
                "name": input_name,
                "shape": list(array.shape),
                "datatype": DATATYPES.get(str(array.dtype), "FP32"),
                "data": array.reshape(-1).tolist(),
            }
        )
    return {"inputs": tensors}


def timed_predictions(url: str, name: str, instance: Any, *, n: int = 200) -> list[float]:
    """Latency in ms of `n` sequential one-instance predict requests on one kept-alive
    connection (what one client sees; the first is left out as the connection's warm-up)."""
    import httpx

    latencies = []
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for _ in range(n + 1):
            start = time.perf_counter()
            predict(url, name, [instance], client=client)
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies[1:]


def _post(url: str, path: str, body: dict, client: Any) -> dict:
    import httpx

    own = client is None
    client = httpx.Client(base_url=url, timeout=10.0) if own else client
    try:
        response = client.post(path, json=body)
    except httpx.TransportError as e:
        raise ServingError(f"POST {url}{path}: no answer from the service ({e}).") from e
    finally:
        if own:
            client.close()
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise ServingError(f"POST {path} answered {response.status_code}: {message}")
    return response.json()


def reload(url: str, *, client: Any = None) -> list[dict]:
    """POST /admin/reload (loopback clients only): the service checks its labels now and swaps
    to any version a label moved to; the changes it made ("swapped", "refused", ...)."""
    return _post(url, "/admin/reload", {}, client)["changes"]
