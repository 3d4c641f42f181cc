"""Analysis: what is in the data before a model sees it.

`analyze` counts classes per split, measures balance and value ranges, and looks for the
problems that quietly spoil a model: NaN/inf values, constant features, exact duplicates and
duplicates shared between training and test data (leakage). It returns plain data; the
figures live in `workbench.plots.data`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMBALANCE_WARNING = 1.5  # largest / smallest class count above this is worth a warning
NEAR_LEVELS = 8  # near-duplicates: equal once each value is rounded to one of this many levels
MOSTLY_MISSING = 0.5  # a column missing in more than this share of rows is worth a warning
HIGH_CARDINALITY = 0.5  # a text column with more distinct values than this share of rows


@dataclass(repr=False)
class DataReport:
    """The findings of `analyze`, as numbers and lists a notebook can print or test."""

    n_samples: int
    sample_shape: tuple[int, ...]  # shape of one sample, e.g. (8, 8) or (30,)
    target_kind: str  # "classes" (integer labels), "multilabel" (0/1 columns) or "values"
    class_counts: dict[str, int]  # per class (or per label: positives); empty for values
    split_counts: dict[str, dict[str, int]]  # per split, per class
    imbalance_ratio: float | None  # largest / smallest class count (1.0 = balanced)
    stats: dict[str, float]  # min, max, mean, std of all finite values of x
    n_nan: int
    n_inf: int
    constant_features: list[int]  # flat feature (pixel) indices that never change
    n_duplicates: int  # samples identical to an earlier sample
    duplicate_groups: list[list[int]]  # indices of identical samples (first 20 groups)
    leakage: dict[str, int]  # e.g. {"train/test": k}: test samples also present in train
    # ... counting near-duplicates too: samples equal once every value is rounded to one of
    # NEAR_LEVELS levels of the data's range (a re-saved, re-scaled or slightly noisy copy)
    near_leakage: dict[str, int]
    label_range: tuple[float, float] | None
    feature_stats: list[dict[str, float]] = field(default_factory=list)  # tabular: per column
    # tabular: per column {"column", "type", "missing", "distinct", "missing <split>"...,
    # "warning"}; the transform imputes each missing value (numbers: the training median)
    columns: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, Any] = field(default_factory=dict)  # folder: sizes and modes on disk
    source_warnings: list[str] = field(default_factory=list)  # what the loader changed

    @property
    def warnings(self) -> list[str]:
        """One sentence per problem found, empty when the data looks clean."""
        out = list(self.source_warnings)
        if self.imbalance_ratio is not None and self.imbalance_ratio > IMBALANCE_WARNING:
            out.append(f"classes are imbalanced: largest/smallest = {self.imbalance_ratio:.2f}")
        if self.n_nan or self.n_inf:
            out.append(f"{self.n_nan} missing (NaN) and {self.n_inf} infinite values")
        out += [f"column {c['column']!r}: {c['warning']}" for c in self.columns if c["warning"]]
        if self.constant_features and not self.columns:  # tables: said per column
            out.append(f"{len(self.constant_features)} constant features (no information)")
        if self.n_duplicates:
            out.append(f"{self.n_duplicates} samples duplicate an earlier sample")
        for pair, n in self.leakage.items():
            if n:
                out.append(f"leakage {pair}: {n} samples of the second split are in the first")
            near = self.near_leakage.get(pair, 0) - n
            if near > 0:
                out.append(
                    f"near-duplicate leakage {pair}: {near} more samples of the second split "
                    f"equal one of the first once rounded to {NEAR_LEVELS} levels"
                )
        return out

    def table(self) -> list[dict[str, Any]]:
        """The checks as rows {"check", "value"} (print them, or feed a DataFrame)."""
        rows: list[tuple[str, Any]] = [
            ("samples", self.n_samples),
            ("sample shape", self.sample_shape),
            ("target", self.target_kind),
            ("classes", len(self.class_counts)),
            ("imbalance ratio", _round(self.imbalance_ratio)),
            ("min", _round(self.stats["min"])),
            ("max", _round(self.stats["max"])),
            ("mean", _round(self.stats["mean"])),
            ("std", _round(self.stats["std"])),
            ("NaN values", self.n_nan),
            ("infinite values", self.n_inf),
            ("constant features", len(self.constant_features)),
            ("duplicate samples", self.n_duplicates),
            ("label range", self.label_range),
        ]
        rows += [(f"leakage {pair}", n) for pair, n in self.leakage.items()]
        rows += [(f"near leakage {pair}", n) for pair, n in self.near_leakage.items()]
        return [{"check": k, "value": v} for k, v in rows]

    def class_table(self) -> list[dict[str, Any]]:
        """Counts as rows {"class", <split>: n, ..., "total"}."""
        return [
            {"class": c, **{s: cnt.get(c, 0) for s, cnt in self.split_counts.items()}, "total": n}
            for c, n in self.class_counts.items()
        ]

    def __repr__(self) -> str:
        lines = [f"DataReport: {self.n_samples} samples of shape {self.sample_shape}"]
        lines += [f"  {r['check']}: {r['value']}" for r in self.table()[2:]]
        lines += [
            f"  column {c['column']!r}: {c['type']}, {c['missing']} missing, "
            f"{c['distinct']} distinct"
            for c in self.columns
        ]
        if self.images:
            lines.append(f"  on disk: sizes {self.images['sizes']}, modes {self.images['modes']}")
        lines += [f"  warning: {w}" for w in self.warnings] or ["  no warnings"]
        return "\n".join(lines)


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def analyze(
    x: np.ndarray,
    y: np.ndarray,
    splits: Mapping[str, Sequence[int] | np.ndarray] | None = None,
    class_names: Sequence[str] | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    notes: dict[str, Any] | None = None,
) -> DataReport:
    """Check `x`, `y` (all samples); `splits` maps split names to index arrays into them.

    Tables get a row per column (`feature_names`, with the types a CSV reader recorded in
    `notes`, a source's `RawData.notes`); an image folder's `notes` add its sizes and modes.
    """
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    splits = (
        {"all": np.arange(n)} if splits is None else {k: np.asarray(v) for k, v in splits.items()}
    )
    flat = x.reshape(n, -1)  # (N, features)
    kind, class_counts, split_counts = count_targets(y, splits, class_names)
    counts = list(class_counts.values())
    imbalance = max(counts) / min(counts) if counts and kind == "classes" and min(counts) else None
    is_float = flat.dtype.kind == "f"
    stats = _summary(flat)
    lo, hi = (np.nanmin(flat, 0), np.nanmax(flat, 0)) if is_float else (flat.min(0), flat.max(0))
    hashes = _row_hashes(flat)
    groups = _duplicate_groups(hashes)
    leakage = _shared(hashes, splits)
    # near-duplicates are an image notion: a few rounded table columns collide by chance
    near_leakage = _shared(_row_hashes(_rounded(flat, stats)), splits) if x.ndim > 2 else {}
    # tabular data: one row of statistics per column
    feature_stats = [_summary(flat[:, j]) for j in range(flat.shape[1])] if x.ndim == 2 else []
    notes = notes or {}
    columns = describe_columns(x, splits, feature_names, notes) if x.ndim == 2 else []
    return DataReport(
        n_samples=n,
        sample_shape=tuple(x.shape[1:]),
        target_kind=kind,
        class_counts=class_counts,
        split_counts=split_counts,
        imbalance_ratio=imbalance,
        stats=stats,
        n_nan=int(np.isnan(flat).sum()) if is_float else 0,
        n_inf=int(np.isinf(flat).sum()) if is_float else 0,
        constant_features=[int(j) for j in np.flatnonzero(lo == hi)],
        n_duplicates=sum(len(g) - 1 for g in groups),
        duplicate_groups=groups[:20],
        leakage=leakage,
        near_leakage=near_leakage,
        label_range=(float(np.min(y)), float(np.max(y))) if y.size else None,
        feature_stats=feature_stats,
        columns=columns,
        images={k: notes[k] for k in _IMAGE_NOTES if k in notes},
        source_warnings=source_warnings(notes),
    )


_IMAGE_NOTES = ("sizes", "modes", "resized", "converted", "image_size", "skipped", "ignored")


def describe_columns(
    x: np.ndarray,
    splits: Mapping[str, np.ndarray],
    feature_names: Sequence[str] | None,
    notes: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per table column: its type, missing values (in all and per split), distinct
    values and a warning (constant, mostly missing, numeric except a few strings); columns the
    reader left out (identifiers) are listed with their type."""
    names = list(feature_names or [f"x{j}" for j in range(x.shape[1])])
    read = notes.get("columns", {})
    rows = []
    for j, name in enumerate(names):
        column = np.asarray(x[:, j], np.float64)
        missing = np.isnan(column)
        distinct = int(np.unique(column[~missing]).size)
        info = read.get(name, {"type": "numeric"})
        warning = ""
        if info.get("offending"):
            shown = ", ".join(f"{v!r} (rows {r})" for v, r in info["offending"].items())
            warning = f"numeric except {shown}: read as missing (na_values= says so)"
        elif missing.mean() > MOSTLY_MISSING:
            warning = f"mostly missing ({missing.mean():.0%})"
        elif distinct <= 1:
            warning = "constant (no information)"
        elif info["type"] == "categorical" and distinct > HIGH_CARDINALITY * len(column):
            warning = (
                f"{distinct} categories in {len(column)} rows: one-hot adds a column per "
                "category seen in training; free text? (ignore= leaves it out)"
            )
        rows.append(
            {
                "column": name,
                "type": info["type"],
                "missing": int(missing.sum()),
                "distinct": distinct,
                **{f"missing {s}": int(missing[idx].sum()) for s, idx in splits.items()},
                "warning": warning,
            }
        )
    for name in notes.get("identifiers", []):
        rows.append(
            {
                "column": name,
                "type": "identifier",
                "missing": read[name]["missing"],
                "distinct": read[name]["distinct"],
                **{f"missing {s}": None for s in splits},
                "warning": "unique per row (an identifier): left out of the features",
            }
        )
    return rows


def source_warnings(notes: dict[str, Any]) -> list[str]:
    """What a loader changed, from its notes: rows dropped, images resized, converted or
    skipped (column warnings are per column, in `describe_columns`)."""
    out = []
    dropped = notes.get("dropped_rows", {})
    if dropped.get("missing target"):
        n, rows = dropped["missing target"], dropped["rows"]
        more = "..." if len(rows) < n else ""
        out.append(
            f"{n} row(s) without a target {notes['target']!r} dropped (data rows {rows}{more})"
        )
    if notes.get("ignored_columns"):
        out.append(f"columns left out as asked (ignore=): {notes['ignored_columns']}")
    if notes.get("resized"):
        h, w = notes["image_size"]
        out.append(f"{notes['resized']} images resized to {h}x{w} from sizes {notes['sizes']}")
    if notes.get("converted"):
        out.append(f"{notes['converted']} images converted to {notes['color']}")
    if notes.get("skipped"):
        out.append(f"{len(notes['skipped'])} unreadable files skipped: {sorted(notes['skipped'])}")
    return out


def count_targets(
    y: np.ndarray,
    splits: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
) -> tuple[str, dict[str, int], dict[str, dict[str, int]]]:
    """(target kind, counts per class, counts per split and class) of targets `y`.

    Multilabel targets count the positives of each label; real-valued targets count nothing.
    """
    y = np.asarray(y)
    if y.ndim == 2:
        names = list(class_names or [str(j) for j in range(y.shape[1])])
        per = {
            s: {names[j]: int(y[idx, j].sum()) for j in range(y.shape[1])}
            for s, idx in splits.items()
        }
        return "multilabel", {c: int(y[:, j].sum()) for j, c in enumerate(names)}, per
    if y.dtype.kind not in "iub":
        return "values", {}, {s: {} for s in splits}
    k = max(int(y.max()) + 1 if y.size else 0, len(class_names or []))
    names = list(class_names or [str(j) for j in range(k)])
    total = np.bincount(y, minlength=k)
    per = {
        s: dict(zip(names, map(int, np.bincount(y[idx], minlength=k)), strict=True))
        for s, idx in splits.items()
    }
    return "classes", dict(zip(names, map(int, total), strict=True)), per


def _summary(values: np.ndarray) -> dict[str, float]:
    """min, max, mean and std of the finite values (NaN when there are none)."""
    v = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if not v.size:
        return dict.fromkeys(("min", "max", "mean", "std"), float("nan"))
    return {
        "min": float(v.min()),
        "max": float(v.max()),
        "mean": float(v.mean()),
        "std": float(v.std()),
    }


def _shared(hashes: list[bytes], splits: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Per pair of splits (in order), how many samples of the second have a digest in the first."""
    names, shared = list(splits), {}
    for i, a in enumerate(names):
        seen = {hashes[j] for j in splits[a]}
        for b in names[i + 1 :]:
            shared[f"{a}/{b}"] = int(sum(hashes[j] in seen for j in splits[b]))
    return shared


def _rounded(flat: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    """Every value as one of NEAR_LEVELS levels of the data's finite range (NaN as -1)."""
    lo, span = stats["min"], (stats["max"] - stats["min"]) or 1.0
    levels = np.floor((flat.astype(np.float64) - lo) / span * NEAR_LEVELS)
    return np.nan_to_num(np.clip(levels, 0, NEAR_LEVELS - 1), nan=-1).astype(np.int8)


def _row_hashes(flat: np.ndarray) -> list[bytes]:
    """A digest per sample of its exact bytes (equal digests = identical samples)."""
    rows = np.ascontiguousarray(flat)
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]


def _duplicate_groups(hashes: list[bytes]) -> list[list[int]]:
    """Groups of indices of identical samples, largest first."""
    by_hash: dict[bytes, list[int]] = {}
    for i, h in enumerate(hashes):
        by_hash.setdefault(h, []).append(i)
    return sorted((g for g in by_hash.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
