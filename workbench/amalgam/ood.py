"""Task 2's out-of-distribution check: is this input a digit at all?

    x_ood = patches(300, 8, seed=0, match_mean=mean_intensity(x_train), value_range=(0, 16))
    scorer = fit_mahalanobis(low_train, y_train)          # fitted on training latents only
    auroc(scorer.score(low_test), scorer.score(low_ood))  # 1.0 = perfectly separated
    auroc(mean_intensity(x_test), mean_intensity(x_ood))  # the brightness baseline, ~0.5
    cached_fashion_mnist(300, 8, seed=0, value_range=(0, 16))  # a second set, if Keras has it

The out-of-distribution set works offline: patches of the two photographs that ship inside
scikit-learn (`load_sample_images`: a Chinese temple, a flower), turned grey, shrunk like the
digits were and brightened or darkened until each patch is as bright as a digit. If brightness
alone told them apart, a good AUROC would say nothing about the latent. Fashion-MNIST's test
images (clothes, 28x28) are a second set where Keras has them cached: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from workbench import params
from workbench.errors import DataError, ParameterError

ZOOM = 4  # patches are cut ZOOM times larger, then shrunk: sklearn's 8x8 digits are 32x32
# bitmaps summed over 4x4 blocks (a box filter), and MNIST's 28x28 are shrunk scans as well.
RIDGE = 1e-6  # added to the covariance's diagonal (relative to its trace) so it inverts


def patches(
    n: int,
    size: int,
    *,
    seed: int,
    match_mean: float | np.ndarray | None = None,
    value_range: tuple[float, float] = (0.0, 16.0),
    zoom: int = ZOOM,
) -> np.ndarray:
    """`n` grey photo patches (n, size, size, 1) float32 in `value_range`: out-of-distribution
    inputs in the digits' raw format (0..16 for sklearn digits, 0..255 for MNIST).

    Each patch is cut at `zoom * size` pixels from china.jpg or flower.jpg at a random place,
    converted to grey (Pillow's "L", ITU-R 601 luma) and shrunk with Pillow's box filter (the
    mean over each block, as the digits were made). `match_mean` sets each patch's mean pixel
    value: a number (all patches), or an array of the digits' per-image means (each patch gets
    the mean of a randomly drawn digit, so both sets have the same brightness distribution). The
    mean is reached with a gamma curve, v = hi * (v / hi) ** g, which keeps black and white.
    """
    from PIL import Image

    n = params.check_int("n", n, minimum=1)
    size = params.check_int("size", size, minimum=2)
    zoom = params.check_int("zoom", zoom, minimum=1)
    lo, hi = _check_range(value_range)
    rng = np.random.default_rng(params.check_int("seed", seed, minimum=0))
    photos = _grey_photos()
    big = size * zoom
    if any(big > min(p.shape) for p in photos):
        raise ParameterError(
            f"Parameters 'size' * 'zoom': expected at most {min(photos[0].shape)} pixels (the "
            f"photographs' height), got {size} * {zoom} = {big}."
        )
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        photo = photos[rng.integers(len(photos))]
        r, c = rng.integers(photo.shape[0] - big + 1), rng.integers(photo.shape[1] - big + 1)
        crop = Image.fromarray(photo[r : r + big, c : c + big])
        out[i] = np.asarray(crop.resize((size, size), Image.Resampling.BOX), np.float32) / 255.0
    if match_mean is not None:
        out = _gamma_to_mean(out, (_targets(match_mean, n, rng) - lo) / (hi - lo))
    return (lo + out * (hi - lo)).astype(np.float32)[..., np.newaxis]


@lru_cache(maxsize=1)
def _grey_photos() -> tuple[np.ndarray, ...]:
    """scikit-learn's two sample photographs (427 x 640) in grey, uint8; read once."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    grey = [np.asarray(Image.fromarray(img).convert("L")) for img in load_sample_images().images]
    for g in grey:
        g.setflags(write=False)  # shared by every call: read-only
    return tuple(grey)


def _check_range(value_range) -> tuple[float, float]:
    if not isinstance(value_range, tuple | list) or len(value_range) != 2:
        raise ParameterError(f"Parameter 'value_range': expected (low, high), got {value_range!r}.")
    lo = params.check_number("value_range[0]", value_range[0])
    hi = params.check_number("value_range[1]", value_range[1])
    if hi <= lo:
        raise ParameterError(f"Parameter 'value_range': expected low < high, got {value_range}.")
    return lo, hi


def _targets(match_mean, n: int, rng: np.random.Generator) -> np.ndarray:
    """The mean each of `n` patches should get: one number for all, or draws from an array."""
    means = np.atleast_1d(np.asarray(match_mean, dtype=float))
    if means.ndim != 1 or means.size == 0 or not np.isfinite(means).all():
        raise ParameterError(
            f"Parameter 'match_mean': expected a number or a 1D array of per-image means, got "
            f"an array of shape {means.shape}."
        )
    return means if means.size == 1 else rng.choice(means, size=n)


def _gamma_to_mean(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Images x (n, h, w) in [0, 1] raised to a per-image power g so that mean(x ** g) = target.

    mean(x ** g) falls as g grows, so a bisection on log g finds it (60 halvings, all images at
    once). Black stays (nearly) black and white stays white.
    """
    target = np.clip(np.broadcast_to(target, (len(x),)), 1e-3, 1 - 1e-3)
    x = np.clip(x, 1e-3, 1.0)  # a pure black pixel could never brighten
    low, high = np.full(len(x), -8.0), np.full(len(x), 8.0)  # log g
    for _ in range(60):
        mid = (low + high) / 2
        too_bright = (x ** np.exp(mid)[:, None, None]).mean(axis=(1, 2)) > target
        low, high = np.where(too_bright, mid, low), np.where(too_bright, high, mid)
    return x ** np.exp((low + high) / 2)[:, None, None]


FASHION_TEST = "t10k-images-idx3-ubyte.gz"  # in <keras cache>/datasets/fashion-mnist/


def cached_fashion_mnist(
    n: int, size: int, *, seed: int, value_range: tuple[float, float] = (0.0, 255.0),
    cache_dir: str | Path | None = None, file_hash: str | None = None,
) -> np.ndarray | None:  # fmt: skip
    """`n` random Fashion-MNIST test images (n, size, size, 1) float32 in `value_range`, from
    the Keras cache (`cache_dir`, default $KERAS_HOME or ~/.keras), shrunk with Pillow's box
    filter when `size` < 28; None when the file is not cached (nothing is downloaded). The
    file is checked against its published md5 (`file_hash` to check another)."""
    from PIL import Image

    from workbench.data.sources import DOWNLOADS, read_idx

    n, size = params.check_int("n", n, minimum=1), params.check_int("size", size, minimum=2)
    lo, hi = _check_range(value_range)
    base = Path(cache_dir or os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    path = base / "datasets" / "fashion-mnist" / FASHION_TEST
    if not path.is_file():
        return None
    want = file_hash or next(
        d.file_hash for d in DOWNLOADS["keras:fashion_mnist"] if d.fname == FASHION_TEST
    )
    found = hashlib.new("md5" if len(want) == 32 else "sha256", path.read_bytes()).hexdigest()
    if found != want:
        raise DataError(
            f"The cached {path} has hash {found}, not the expected {want}: it is incomplete or "
            "not Fashion-MNIST. Delete it (the data source keras:fashion_mnist downloads it)."
        )
    images = read_idx(path, "keras:fashion_mnist")
    pick = np.random.default_rng(params.check_int("seed", seed, minimum=0)).choice(
        len(images), size=min(n, len(images)), replace=False
    )
    out = np.stack([
        np.asarray(Image.fromarray(images[i]).resize((size, size), Image.Resampling.BOX))
        for i in pick
    ]).astype(np.float32) / 255.0  # fmt: skip
    return (lo + out * (hi - lo))[..., np.newaxis].astype(np.float32)


def mean_intensity(x: np.ndarray) -> np.ndarray:
    """Each image's mean pixel value (N, ...) -> (N,): what `patches` matches, and the baseline
    OOD score. Its AUROC near 0.5 says brightness alone cannot tell the two sets apart."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1).mean(axis=1)


@dataclass(frozen=True)
class Mahalanobis:
    """Class means (K, D) and the inverse of their shared covariance (D, D), fitted on training
    latents; `score` = distance to the nearest class mean (higher = less like any digit)."""

    means: np.ndarray
    precision: np.ndarray

    def score(self, latent: np.ndarray) -> np.ndarray:
        """(N, D) latents -> (N,) Mahalanobis distance to the closest class mean."""
        z = _as_matrix("latent", latent, self.means.shape[1])
        diff = z[:, None, :] - self.means[None, :, :]  # (N, K, D)
        d2 = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def fit_mahalanobis(latent_train: np.ndarray, y_train: np.ndarray) -> Mahalanobis:
    """Class-conditional Gaussians with one shared covariance (Lee et al., 2018) on the training
    latents. Chosen over the plain distance to the nearest centroid because the latent's axes
    have different scales (Mahalanobis divides each direction by the training spread along
    it), and over kNN distance
    because it needs no index of training vectors: K means and a D x D matrix, cheap for the
    2..16-dimensional low latent, where the covariance is well estimated from ~1,000 examples."""
    z = _as_matrix("latent_train", latent_train)
    y = np.asarray(y_train).astype(int)
    if y.shape != (len(z),):
        raise DataError(f"fit_mahalanobis: {len(z)} latents but labels of shape {y.shape}.")
    classes = np.unique(y)
    means = np.stack([z[y == c].mean(axis=0) for c in classes])
    centred = z - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / max(len(z) - len(classes), 1)
    cov += np.eye(len(cov)) * RIDGE * max(np.trace(cov), 1e-12)
    return Mahalanobis(means, np.linalg.inv(cov))


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve when out-of-distribution is the positive class and a higher
    score means "more out": the chance that a random OOD input scores above a random digit
    (1.0 = perfect, 0.5 = no better than a coin)."""
    from sklearn.metrics import roc_auc_score

    a, b = np.ravel(in_scores), np.ravel(out_scores)
    if not len(a) or not len(b):
        raise DataError(f"auroc: expected scores in both sets, got {len(a)} and {len(b)}.")
    truth = np.r_[np.zeros(len(a)), np.ones(len(b))]
    return float(roc_auc_score(truth, np.r_[a, b]))


def _as_matrix(name: str, x: np.ndarray, dims: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or (dims is not None and x.shape[1] != dims):
        want = f"(N, {dims})" if dims else "(N, D)"
        raise DataError(f"{name}: expected vectors of shape {want}, got shape {x.shape}.")
    return x
