"""Continuous learning, the data side: new examples arrive in batches, some of them shifted.

    carved = carve(version, gate_fraction=0.15, stream_fraction=0.4, seed=0)
    day0 = save_training_version(run.dir, version, carved.x_train, carved.y_train, note="day 0")
    high = raw_range(version.transform)[1]                  # 16 for digits, 255 for MNIST
    plan = [None, None, None, ("rotate", 30), ("rotate", 30)]
    arrived = schedule(carved.x_pool, carved.y_pool, plan, batch_size=100, high=high, seed=0)
    day5 = save_training_version(run.dir, version, carved.x_train, carved.y_train,
                                 note="day 5", arrived=arrived)

Where the "new" data come from: `carve` splits the version's TRAIN split only, stratified by
class, into the rows the day-0 model trains on, a gate split (held out for the QA gate) and a
stream pool (the examples that arrive later). Validation and test stay as they are: validation
picks the epoch, test is scored once at the end. `batches` draws unseen pool rows; a shift
(`rotate`, `add_noise`, `invert`, `blur`) is applied to the raw images and keeps their shape,
dtype and raw range (0..16 for scikit-learn digits, 0..255 for MNIST).

`save_training_version` stores the accumulated training rows as a new content-hashed data
version beside the base version's validation and test splits and its FITTED transform: the
transform is not refitted. For images it divides by the source's largest possible pixel value,
a constant, so refitting would change nothing; for tables a refit would move the means and
scales, so the warm-started weights would receive differently scaled inputs than they learned,
and champion and challenger would no longer be scored on the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench import params
from workbench.data.transform import Transform, stratified_split
from workbench.data.versioning import DatasetVersion, save_version
from workbench.errors import DataError, ParameterError

SHIFT_KINDS = ("rotate", "noise", "invert", "blur")  # what a schedule step may name


@dataclass(frozen=True, repr=False)
class Carved:
    """The base version's training split in three disjoint, stratified parts (raw arrays)."""

    x_train: np.ndarray  # what the day-0 model trains on
    y_train: np.ndarray
    x_gate: np.ndarray  # held out for the QA gate: no model trains on it
    y_gate: np.ndarray
    x_pool: np.ndarray  # the examples that arrive later, in batches
    y_pool: np.ndarray
    rows: dict[str, np.ndarray]  # "train", "gate", "pool" -> row indices into the base train split
    base_version: str

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.rows.items())
        return f"Carved(from {self.base_version!r} train split: {sizes})"


@dataclass(frozen=True, repr=False)
class Batch:
    """One arrival: raw examples with their labels, and what happened to them."""

    index: int  # 1-based position in the stream
    x: np.ndarray  # raw images, as the data version stores them
    y: np.ndarray
    kind: str = "unshifted"  # "unshifted", "rotated 30°", "noise 10%", "inverted", "blurred σ=1"

    @property
    def shifted(self) -> bool:
        return self.kind != "unshifted"

    def __repr__(self) -> str:
        return f"Batch({self.index}, {self.kind}, {len(self.y)} examples)"


def carve(
    version: DatasetVersion, *, gate_fraction: float, stream_fraction: float, seed: int
) -> Carved:
    """Split `version`'s train split into initial training rows, a gate split and a stream pool.

    Each class keeps its share in every part (`stratified_split`; multilabel or real-valued
    targets get a plain shuffled split). The fractions are of the train split; the rest trains
    the day-0 model. Same version, fractions and seed: the same parts.
    """
    params.check_number("gate_fraction", gate_fraction, minimum=0.0, maximum=0.9)
    params.check_number("stream_fraction", stream_fraction, minimum=0.0, maximum=0.9)
    x, y = version.split("train")
    none_left = ParameterError(
        f"Parameters 'gate_fraction' + 'stream_fraction': expected a sum that leaves training "
        f"rows, got {gate_fraction} + {stream_fraction} of {len(y)} rows."
    )
    if gate_fraction + stream_fraction >= 1.0:
        raise none_left
    train, gate, pool = stratified_split(y, gate_fraction, stream_fraction, seed)
    if len(train) == 0:
        raise none_left
    rows = {"train": train, "gate": gate, "pool": pool}
    return Carved(x[train], y[train], x[gate], y[gate], x[pool], y[pool], rows, version.id)


def raw_range(transform: Transform) -> tuple[float, float]:
    """(lowest, highest) raw pixel value of an image transform: 0 and the value it divides by."""
    if transform.kind != "image" or transform.scale is None:
        raise ParameterError(
            f"Parameter 'transform': expected an image transform (shifts act on pixels), got "
            f"{transform!r}."
        )
    return 0.0, float(transform.scale)


# ---- shifts on raw images (N, H, W[, C]) -----------------------------------------------------


def _as_raw(values: np.ndarray, like: np.ndarray, high: float) -> np.ndarray:
    """Float results back to `like`'s dtype within [0, high] (rounded for integer pixels)."""
    values = np.clip(values, 0.0, high)
    if np.issubdtype(like.dtype, np.integer):
        values = np.rint(values)
    return values.astype(like.dtype)


def _images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise DataError(f"Shifts take images (N, H, W[, C]), got an array of shape {x.shape}.")
    return x


def rotate(x: np.ndarray, degrees: float, *, high: float) -> np.ndarray:
    """Each image turned by `degrees` (counter-clockwise) about its centre, same size, with
    bilinear interpolation (scipy.ndimage.rotate, as Keras' RandomRotation): what comes in from
    outside is background (0).

    mode="grid-constant", not "constant": "constant" sets every output pixel whose source lies
    even a hair outside the image to 0, so a 0.5° turn of an 8x8 digit already erases half of
    its edge rows (mean ink -12 %); "grid-constant" interpolates against the zero background.
    """
    from scipy import ndimage

    x = _images(x)
    params.check_number("degrees", degrees)
    turned = ndimage.rotate(
        x.astype(np.float64), degrees, axes=(1, 2), reshape=False, order=1, mode="grid-constant"
    )
    return _as_raw(turned, x, high)


def add_noise(x: np.ndarray, sigma: float, rng: np.random.Generator, *, high: float) -> np.ndarray:
    """Gaussian noise on every pixel, `sigma` a fraction of the raw range (0.1 = 10 % of
    `high`), clipped back into the range."""
    x = _images(x)
    params.check_number("sigma", sigma, minimum=0.0)
    return _as_raw(x + rng.normal(0.0, sigma * high, size=x.shape), x, high)


def invert(x: np.ndarray, *, high: float) -> np.ndarray:
    """Light ink on a dark page becomes dark ink on a light page: `high - x`."""
    x = _images(x)
    return _as_raw(high - x.astype(np.float64), x, high)


def blur(x: np.ndarray, sigma: float, *, high: float) -> np.ndarray:
    """Each image smoothed by a Gaussian of `sigma` pixels (an out-of-focus camera)."""
    from scipy import ndimage

    x = _images(x)
    params.check_number("sigma", sigma, minimum=0.0)
    spread = (0, sigma, sigma) + (0,) * (x.ndim - 3)  # not across images or channels
    return _as_raw(ndimage.gaussian_filter(x.astype(np.float64), spread), x, high)


def shift(
    x: np.ndarray, kind: str, amount: float = 0.0, *, high: float, seed: int = 0
) -> tuple[np.ndarray, str]:
    """Apply the shift `kind` ("rotate" degrees, "noise" sigma, "invert", "blur" sigma) and
    return the shifted images with their label ("rotated 30°")."""
    params.check_choice("kind", kind, SHIFT_KINDS)
    if kind == "rotate":
        return rotate(x, amount, high=high), f"rotated {amount:g}°"
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return add_noise(x, amount, rng, high=high), f"noise {100 * amount:g}%"
    if kind == "invert":
        return invert(x, high=high), "inverted"
    return blur(x, amount, high=high), f"blurred σ={amount:g}"


# ---- the stream ------------------------------------------------------------------------------


def batches(
    x: np.ndarray, y: np.ndarray, *, n_batches: int, batch_size: int, seed: int
) -> list[Batch]:
    """`n_batches` batches of `batch_size` rows drawn at random from (x, y), no row twice."""
    n_batches = params.check_int("n_batches", n_batches, minimum=1)
    batch_size = params.check_int("batch_size", batch_size, minimum=1)
    if n_batches * batch_size > len(y):
        raise ParameterError(
            f"Parameters 'n_batches' x 'batch_size': expected at most {len(y)} rows (the pool), "
            f"got {n_batches} x {batch_size} = {n_batches * batch_size}."
        )
    order = np.random.default_rng(seed).permutation(len(y))[: n_batches * batch_size]
    return [Batch(i + 1, x[rows], y[rows]) for i, rows in enumerate(order.reshape(n_batches, -1))]


def shift_plan(unshifted: int, shifted: int, kind: str = "rotate", amount: float = 30.0) -> list:
    """A `schedule` plan: `unshifted` batches as they come, then `shifted` batches shifted by
    `kind` and `amount`, e.g. (2, 2) -> [None, None, ("rotate", 30.0), ("rotate", 30.0)]."""
    params.check_int("unshifted", unshifted, minimum=0, maximum=100)
    params.check_int("shifted", shifted, minimum=0, maximum=100)
    params.check_choice("kind", kind, SHIFT_KINDS)
    params.check_number("amount", amount)
    return [None] * unshifted + [(kind, amount)] * shifted


def schedule(
    x: np.ndarray,
    y: np.ndarray,
    plan: Sequence[tuple | None],
    *,
    batch_size: int,
    high: float,
    seed: int,
) -> list[Batch]:
    """One batch per step of `plan`: None arrives unshifted, ("rotate", 30) rotated 30°, ...
    e.g. [None, None, None, ("rotate", 30), ("rotate", 30)]."""
    arrived = batches(x, y, n_batches=len(plan), batch_size=batch_size, seed=seed)
    out = []
    for batch, step in zip(arrived, plan, strict=True):
        if step is None:
            out.append(batch)
            continue
        shifted, kind = shift(batch.x, *step, high=high, seed=seed + batch.index)
        out.append(Batch(batch.index, shifted, batch.y, kind))
    return out


def describe(arrived: Sequence[Batch]) -> str:
    """Runs of equal kinds: "batches 1-3 unshifted, 4-5 rotated 30°"."""
    runs: list[list] = []
    for b in arrived:
        if runs and runs[-1][2] == b.kind and runs[-1][1] == b.index - 1:
            runs[-1][1] = b.index
        else:
            runs.append([b.index, b.index, b.kind])
    parts = [f"{a}-{b} {k}" if a != b else f"{a} {k}" for a, b, k in runs]
    if not parts:
        return "no batches"
    return ("batches " if len(arrived) > 1 else "batch ") + ", ".join(parts)


def save_training_version(
    run_dir: str | Path,
    base_version: DatasetVersion,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    note: str,
    arrived: Sequence[Batch] = (),
) -> DatasetVersion:
    """A new data version: train = (`x_train`, `y_train`) followed by the `arrived` batches'
    rows; val, test and the fitted transform are `base_version`'s. It becomes the current data
    version.

    Its `parameters` record the lineage: the base version, `note`, the initial row count and
    each batch (index, kind, rows), so the manifest says what was accumulated.
    """
    params.check_str("note", note)
    x_base, y_base = base_version.split("train")
    xs = [np.asarray(x_train), *(b.x for b in arrived)]
    ys = [np.asarray(y_train), *(b.y for b in arrived)]
    for what, parts, like in (("x", xs, x_base), ("y", ys, y_base)):
        for part in parts:
            if part.shape[1:] != like.shape[1:] or part.dtype != like.dtype:
                raise DataError(
                    f"save_training_version: {what} rows of shape {part.shape[1:]} {part.dtype}; "
                    f"version {base_version.id!r} stores {like.shape[1:]} {like.dtype}."
                )
    arrays = {"x_train": np.concatenate(xs), "y_train": np.concatenate(ys)}
    for split in ("val", "test"):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = base_version.split(split)
    lineage = {
        "version": base_version.id,
        "note": note,
        "initial_rows": len(ys[0]),
        "batches": [{"index": b.index, "kind": b.kind, "rows": len(b.y)} for b in arrived],
    }
    m = base_version.manifest
    return save_version(
        run_dir,
        arrays,
        source=base_version.source,
        parameters={**m["parameters"], "derived_from": lineage},
        task=base_version.task,
        class_names=base_version.class_names,
        transform=base_version.transform,
        notes={**m.get("notes", {}), "derived_from": f"{base_version.id}: {note}"},
    )
