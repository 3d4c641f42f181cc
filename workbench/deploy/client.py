"""A client of the service written from the two protocols' documents, not from its code.

TF Serving REST: `POST /v1/models/{name}[/labels/{label}|/versions/{v}]:predict` with
`{"instances": [...]}` answers `{"predictions": [...]}`. Open Inference Protocol v2:
`POST /v2/models/{name}[/versions/{v}]/infer` with typed tensors answers typed tensors. Errors
come back as `{"error": "..."}` with a 4xx or 5xx status; `ServingError` carries both.
"""

from __future__ import annotations

import time
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
    client: Any = None,
) -> list:
    """TF Serving's row format: one instance per example; the predictions, in order."""
    path = f"/v1/models/{name}"
    if label is not None:
        path += f"/labels/{label}"
    elif version is not None:
        path += f"/versions/{version}"
    body = {"instances": np.asarray(instances).tolist()}
    return _post(url, f"{path}:predict", body, client)["predictions"]


def infer(
    url: str, name: str, inputs: dict[str, np.ndarray], *, version: str | None = None, client=None
) -> dict[str, np.ndarray]:
    """Open Inference Protocol v2: each input as a typed tensor (flat data, row-major); the
    outputs by name, reshaped to their shapes."""
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    answer = _post(url, path, v2_body(inputs), client)
    return {
        out["name"]: np.asarray(out["data"], np.float32).reshape(out["shape"])
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
