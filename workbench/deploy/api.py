"""What both protocols share: JSON that writes NaN as TF Serving does, the request body read
within the size limit, the row checks, and the call through a version's batcher."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import Request, Response

from workbench.deploy.batching import BatcherClosed, ServiceError
from workbench.deploy.models import LoadedVersion, ModelStore


class JSONResponse(Response):
    """JSON that writes NaN, Infinity and -Infinity as TF Serving does (Starlette's own
    JSONResponse refuses them, which would turn a NaN output into a 500)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=True, separators=(",", ":")).encode()


def error_response(status: int, message: str) -> JSONResponse:
    """The error body both protocols use: {\"error\": message}."""
    return JSONResponse({"error": message}, status_code=status)


class Api:
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
        return parse_json(b"".join(chunks), request.headers.get("content-type"))

    def too_large(self, size: int) -> ServiceError:
        return ServiceError(
            413,
            f"Request body has {size:,} bytes; this service takes at most "
            f"{self.max_body:,} (--max-body-bytes). Send fewer rows per request.",
        )

    async def infer(
        self, name: str, version: str | None, label: str | None, prepare
    ) -> tuple[LoadedVersion, Any, list[np.ndarray]]:
        """Look up the version, build its input arrays with `prepare(loaded)` -> (function,
        arrays, selection) and run them through that function's batcher (MAIN: the version's
        main call). The look-up, checks and queueing run without an await between them, so a
        hot swap cannot unload the version in between; a version unloaded while this request
        was waiting for its load is looked up again."""
        for _ in range(3):
            loaded = await self.store.served(name, version=version, label=label)
            function, arrays, selection = prepare(loaded)
            try:
                outputs = await loaded.batcher_for(function).infer(arrays, timeout=self.timeout)
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


def parse_json(body: bytes, content_type: str | None) -> dict[str, Any]:
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
            400, f"Request body must be a JSON object; got a JSON {json_type(value)}."
        )
    return value


def json_type(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")
