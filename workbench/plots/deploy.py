"""Stage 5 figures: each export format's in-process latency, and the latency of real requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def export_latency(export: dict[str, Any]) -> Figure:
    """Median in-process latency per export format at batch 1 and 256 (export.json's numbers),
    as grouped bars on a log scale: ONNX Runtime's lead is largest for one example."""
    latency = export.get("latency_ms", {})
    formats = [f for f in ("keras", "saved_model", "onnx") if f in latency]
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.subplots()
    width = 0.38
    for k, batch in enumerate(("1", "256")):
        values = [latency[f].get(batch, np.nan) for f in formats]
        bars = ax.bar(np.arange(len(formats)) + (k - 0.5) * width, values, width,
                      label=f"batch {batch}")  # fmt: skip
        ax.bar_label(bars, fmt="%.2g", fontsize=8)
    ax.set_xticks(np.arange(len(formats)), formats)
    ax.set_yscale("log")
    ax.set_ylabel("median latency per call (ms, log scale)")
    ax.set_title(f"In-process latency of the exports of {export.get('model_name', 'the model')!r}")
    ax.legend()
    return fig


def request_latency(latencies_ms: Sequence[float], *, title: str = "REST requests") -> Figure:
    """Histogram of request latencies with the p50 and p99 marked: the tail matters for a
    service, not the mean."""
    ms = np.asarray(latencies_ms, float)
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(ms, bins=min(50, max(10, len(ms) // 10)), color="#4c72b0")
    for q, style in ((50, "-"), (99, "--")):
        value = float(np.percentile(ms, q))
        ax.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.2f} ms")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    ax.set_title(f"{title}: {len(ms)} requests")
    ax.legend()
    return fig
