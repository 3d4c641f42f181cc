"""Adaptive batching: concurrent requests to one model version share one model call.

    batcher = Batcher(run, max_batch=256, max_wait_ms=0, queue_size=64, name="digits/3")
    batcher.start()
    outputs = await batcher.infer([images], timeout=1.0)    # in a request handler
    batcher.close()                                         # drains what is queued, then stops

One worker thread per loaded version runs the model, so inference never blocks the event loop.
While a batch runs, new requests queue; the next batch takes everything that queued, up to
`max_batch` rows (TF Serving's and Triton's CPU advice: no added delay by default; an optional
`max_wait_ms` waits that long for more rows when a batch is not full). The queue is bounded: a
request that finds `queue_size` requests waiting is answered at once with 429, and one still
unanswered `timeout` seconds after it arrived is answered with 504.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.errors import ServingError

log = logging.getLogger("workbench.serve")

Run = Callable[[list[np.ndarray]], list[np.ndarray]]


class ServiceError(ServingError):
    """A request that cannot be answered, with the HTTP status TF Serving would use for it
    (`model_servers/http_server.cc`: 400 invalid argument, 404 not found, 429 resource
    exhausted, 501 unimplemented, 503 unavailable, 504 deadline exceeded; 413 is our own)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BatcherClosed(ServingError):
    """The version was swapped out or unloaded between look-up and submit: look it up again."""


@dataclass
class _Item:
    inputs: list[np.ndarray]
    rows: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    abandoned: bool = False  # timed out before its batch started: skip it


@dataclass
class BatchStats:
    """What a batcher has done so far (shown by the service's admin status)."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest: int = 0  # most rows in one model call
    sizes: dict[int, int] = field(default_factory=dict)  # rows per call -> number of calls


class Batcher:
    """Queue requests for one model call `run(inputs) -> outputs` (lists of arrays, rows first)
    and run them in batches on a worker thread.

    `run` is the model call; it is a plain attribute so a test can wrap it (e.g. block it on
    an event to fill the queue deterministically).
    """

    def __init__(
        self,
        run: Run,
        *,
        max_batch: int,
        max_wait_ms: float = 0.0,
        queue_size: int,
        name: str = "model",
    ) -> None:
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.name = name
        self.stats = BatchStats()
        self.running = 0  # requests in the batch being collected or run
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"batcher {name}", daemon=True)

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        self._thread.start()

    def close(self, *, wait: bool = False) -> None:
        """Take no new requests; what is queued still runs, then the worker thread ends."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait and self._thread.is_alive():
            self._thread.join()

    async def infer(self, inputs: list[np.ndarray], *, timeout: float) -> list[np.ndarray]:
        """Queue one request (arrays sharing their first dimension, at most `max_batch` rows)
        and return its outputs. Raises ServiceError 429 at once when the queue is full, 504
        when no answer came within `timeout` seconds, and BatcherClosed after `close`. The
        queueing happens before the first await, so a look-up followed by `infer` is atomic
        on the event loop."""
        loop = asyncio.get_running_loop()
        item = _Item(inputs, int(inputs[0].shape[0]), loop.create_future(), loop)
        with self._cond:
            if self._closed:
                raise BatcherClosed(f"{self.name} takes no more requests.")
            if len(self._queue) >= self.queue_size:
                raise ServiceError(
                    429,
                    f"Queue full: {len(self._queue)} requests are waiting for {self.name} "
                    f"(the limit is {self.queue_size}, --queue). Retry after a short wait or "
                    "send more rows per request.",
                )
            self._queue.append(item)
            self._cond.notify()
        try:
            return await asyncio.wait_for(item.future, timeout)
        except asyncio.TimeoutError:
            item.abandoned = True
            raise ServiceError(
                504,
                f"Request timed out: no answer from {self.name} within {timeout:g} s "
                f"(--request-timeout; {self.queued} requests queued). Retry, or raise the "
                "timeout if the model needs longer.",
            ) from None
        except asyncio.CancelledError:  # the client went away
            item.abandoned = True
            raise

    def _take(self, batch: list[_Item], rows: int) -> int:
        """Move queued items into `batch` while they fit in `max_batch` rows (caller holds the
        lock); return the batch's rows."""
        while self._queue and rows + self._queue[0].rows <= self.max_batch:
            item = self._queue.popleft()
            if not item.abandoned:
                batch.append(item)
                rows += item.rows
        self.running = len(batch)
        return rows

    def _collect(self) -> list[_Item] | None:
        """Wait for work; return the next batch, or None once closed and drained."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Item] = []
            rows = self._take(batch, 0)
            if self.max_wait > 0:
                deadline = time.monotonic() + self.max_wait
                while rows < self.max_batch and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or (
                        self._queue and self._queue[0].rows + rows > self.max_batch
                    ):
                        break
                    if not self._queue:
                        self._cond.wait(remaining)
                    rows = self._take(batch, rows)
            return batch

    def _work(self) -> None:
        while (batch := self._collect()) is not None:
            if batch:
                self._run(batch)
            self.running = 0

    def _run(self, batch: list[_Item]) -> None:
        try:
            outputs = self._call(batch)
        except Exception as e:  # a model failure on validated input: a bug, not the client's
            if len(batch) > 1:  # one request must not fail the others: retry one by one
                for item in batch:
                    self._run([item])
                return
            log.exception("%s: inference failed", self.name)
            _deliver(batch[0], error=ServiceError(500, f"Inference failed in {self.name}: {e!r}"))
            return
        start = 0
        for item in batch:
            end = start + item.rows
            _deliver(item, result=[out[start:end] for out in outputs])
            start = end

    def _call(self, batch: list[_Item]) -> list[np.ndarray]:
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = [
                np.concatenate(arrays) for arrays in zip(*(i.inputs for i in batch), strict=True)
            ]
        rows = sum(item.rows for item in batch)
        outputs = [np.asarray(out) for out in self.run(inputs)]
        bad = [tuple(out.shape) for out in outputs if out.ndim == 0 or out.shape[0] != rows]
        if bad:
            raise ServingError(f"the model returned shapes {bad} for a batch of {rows} rows")
        stats = self.stats
        stats.batches += 1
        stats.requests += len(batch)
        stats.rows += rows
        stats.largest = max(stats.largest, rows)
        stats.sizes[rows] = stats.sizes.get(rows, 0) + 1
        return outputs


def _deliver(
    item: _Item, *, result: Sequence[np.ndarray] | None = None, error: Exception | None = None
) -> None:
    """Hand a result to the request's event loop (futures are not thread-safe)."""

    def settle() -> None:
        if item.future.done():
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(list(result or []))

    try:
        item.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop has closed (shutdown): nobody waits any more
        pass
