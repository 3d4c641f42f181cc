"""Continuous learning, the monitoring side: has the data a model sees drifted from its reference?

    detector = fit_detector(model, x_reference_raw, version.transform)
    report = detector.test(batch.x)       # -> DriftReport
    print(report.reason)  # drift: 7 of 18 features differ (Holm, alpha 0.05); largest: ...

The detector describes every image by a few numbers (features) and compares their distribution
in a new batch with the reference's, one two-sample Kolmogorov-Smirnov test per feature
(`scipy.stats.ks_2samp`):

- input statistics: mean intensity, the centre of mass (row, column) and the ink's spread
  about it, and the top principal components of the pixels (fitted on the reference);
- the model's own view: the top principal components of its embedding (the "embedding" layer's
  output, or "encoding" when the model has no embedding layer), fitted on the reference.

Ties: KS assumes continuous values, raw digits are integers 0..16. The features above are
averages or projections over all pixels (hundreds of distinct values), not single pixels; the
ties that remain make the KS p-values conservative (larger), so they can cost power but never
add false alarms. Principal components rather than raw embedding units for the same reason:
a ReLU unit is exactly 0 for many images.

Decision: Holm-Bonferroni at family-wise alpha 0.05 over all features. A batch is flagged when
any feature's Holm-adjusted p-value is <= alpha, so the chance that an unshifted batch raises
an alarm is at most 5 %, whatever the dependence between the features (they are correlated:
the same images). Benjamini-Hochberg controls the expected share of false discoveries among the
flagged features instead; under no drift at all that is the same guarantee, but it needs
positive dependence and answers "which features", while the alarm is a yes/no per batch.

The reference should be data the model did not train on (the validation or gate split): a
model, an overfitted one above all, maps its own training images to more typical embeddings
than unseen ones, which would make unseen, unshifted batches look drifted. (On the smoke
profile benchmarks/production.py measured no difference: 5 of 200 unshifted batches flagged
with either reference.) The Wasserstein distance (`scipy.stats.wasserstein_distance`) of each
feature, in reference standard deviations, is reported as the effect size: the p-value says
whether a feature differs, the distance by how much.

Why scipy and not a drift library: Evidently pulls in 79 packages, including a web server and
telemetry; alibi-detect is under the Business Source License; NannyML pulls in 92 packages and
requires Python < 3.13. The tests above are a few lines of scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench import params
from workbench.config import load_keras, quiet_logger
from workbench.data.transform import Transform
from workbench.deploy.stream import raw_range
from workbench.errors import DataError, ParameterError

ALPHA = 0.05  # family-wise error rate per tested batch
METHOD = "Holm"
INPUT_STATISTICS = ("mean intensity", "centre row", "centre column", "ink spread")
PREDICT_BATCH = 256  # rows per predict_on_batch call


def embedding_layer(model: Any) -> str:
    """ "embedding" if the model has that layer, else "encoding" (e.g. compact_bn has none)."""
    names = {layer.name for layer in model.layers}
    for name in ("embedding", "encoding"):
        if name in names:
            return name
    raise ParameterError(
        f"Parameter 'model': expected a model with an 'embedding' or 'encoding' layer (built by "
        f"workbench.design.build), got {model.name!r} with layers {sorted(names)[:8]}...."
    )


def embedding_model(model: Any, layer: str | None = None) -> Any:
    """A sub-model from `model`'s input to the output of `layer` (default: `embedding_layer`)."""
    keras = load_keras()
    layer = layer or embedding_layer(model)
    params.check_choice("layer", layer, ("embedding", "encoding"))
    return keras.Model(model.inputs, model.get_layer(layer).output, name=f"{model.name}_{layer}")


def embeddings(model: Any, x_transformed: np.ndarray, layer: str | None = None) -> np.ndarray:
    """The `layer` output ("embedding" or "encoding") of `model` for transformed inputs, (N, D)."""
    return _predict(embedding_model(model, layer), x_transformed)


def _predict(sub_model: Any, x: np.ndarray) -> np.ndarray:
    """Outputs in chunks of PREDICT_BATCH rows, the last one padded: one input shape, so
    TensorFlow traces each sub-model once, whatever the sizes of the batches tested (its note
    that a new sub-model traces anew is expected and kept quiet)."""
    chunks = []
    with quiet_logger("tensorflow"):
        for i in range(0, len(x), PREDICT_BATCH):
            part = x[i : i + PREDICT_BATCH]
            pad = np.zeros((PREDICT_BATCH - len(part), *part.shape[1:]), part.dtype)
            rows = sub_model.predict_on_batch(np.concatenate([part, pad]))
            chunks.append(np.asarray(rows)[: len(part)])
    return np.concatenate(chunks).reshape(len(x), -1)


def input_statistics(x_raw: np.ndarray, high: float) -> np.ndarray:
    """Per image (N, 4): mean intensity (share of `high`), centre of mass row and column (in
    pixels) and the ink's spread about it (root mean square distance, in pixels)."""
    x = np.asarray(x_raw, np.float64)
    x = x.reshape(len(x), x.shape[1], x.shape[2], -1).sum(axis=3)  # (N, H, W), channels summed
    rows, cols = np.indices(x.shape[1:])
    ink = x.sum(axis=(1, 2))
    weight = x / np.where(ink > 0, ink, 1.0)[:, None, None]
    r = (weight * rows).sum(axis=(1, 2))
    c = (weight * cols).sum(axis=(1, 2))
    dist2 = (rows[None] - r[:, None, None]) ** 2 + (cols[None] - c[:, None, None]) ** 2
    spread = np.sqrt((weight * dist2).sum(axis=(1, 2)))
    mean = x.mean(axis=(1, 2)) / high
    return np.stack([mean, r, c, spread], axis=1)


@dataclass(frozen=True)
class Projection:
    """Principal components fitted on reference rows: `project` gives the top scores."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), orthonormal rows, largest variance first

    @classmethod
    def fit(cls, rows: np.ndarray, k: int) -> Projection:
        rows = np.asarray(rows, np.float64).reshape(len(rows), -1)
        mean = rows.mean(axis=0)
        _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
        return cls(mean, vt[: min(k, len(vt))])

    def project(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float64).reshape(len(rows), -1)
        return (rows - self.mean) @ self.components.T


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values: the i-th smallest times (m - i), running max, <= 1."""
    p = np.asarray(p_values, np.float64)
    m = len(p)
    order = np.argsort(p)
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


@dataclass(frozen=True)
class FeatureTest:
    """One feature's comparison of a batch with the reference."""

    name: str  # "mean intensity", "pixel pc1", "embedding pc2", ...
    statistic: float  # KS: the largest gap between the two empirical CDFs, 0..1
    p_value: float
    adjusted_p: float  # Holm-adjusted over all features
    distance: float  # Wasserstein distance, in reference standard deviations
    drifted: bool  # adjusted_p <= alpha


@dataclass(frozen=True)
class DriftReport:
    """A batch's drift tests and the decision, with a reason a student can read."""

    features: list[FeatureTest]
    drift: bool
    alpha: float
    batch_size: int
    reference_size: int

    @property
    def reason(self) -> str:
        """ "drift: 7 of 18 features differ (Holm, alpha 0.05); largest: embedding pc1 KS 0.41,
        p=3e-09" (without drift, the closest call)."""
        hits = [f for f in self.features if f.drifted]
        top = min(self.features, key=lambda f: (f.p_value, -f.statistic))
        head = "drift" if self.drift else "no drift"
        which = "largest" if self.drift else "closest"
        adjusted = "" if self.drift else f", adjusted {_p(top.adjusted_p)}"
        return (
            f"{head}: {len(hits)} of {len(self.features)} features differ ({METHOD}, alpha "
            f"{self.alpha:g}); {which}: {top.name} KS {top.statistic:.2f}, p={_p(top.p_value)}"
            f"{adjusted}"
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per feature, for `workbench.tables.format_table`."""
        return [
            {
                "feature": f.name,
                "KS": round(f.statistic, 3),
                "p": _p(f.p_value),
                "adjusted p": _p(f.adjusted_p),
                "Wasserstein (sd)": round(f.distance, 2),
                "differs": "yes" if f.drifted else "",
            }
            for f in self.features
        ]

    def __repr__(self) -> str:
        return f"DriftReport({self.reason})"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


@dataclass(repr=False)
class DriftDetector:
    """Reference feature values and how to compute them for a new batch; `test` decides."""

    names: list[str]
    reference: np.ndarray  # (n_reference, n_features)
    high: float  # raw pixel maximum
    transform: Transform
    pixels: Projection
    embedding: Projection
    layer: str
    alpha: float = ALPHA
    sub_model: Any = field(default=None)  # model input -> embedding layer

    def features(self, x_raw: np.ndarray) -> np.ndarray:
        """(N, n_features): input statistics, pixel and embedding principal component scores."""
        x_raw = np.asarray(x_raw)
        if x_raw.shape[1:] != tuple(self.transform.input_shape):
            raise DataError(
                f"DriftDetector: expected raw images of shape {tuple(self.transform.input_shape)}"
                f", got a batch of shape {x_raw.shape}."
            )
        emb = _predict(self.sub_model, self.transform.apply(x_raw))
        parts = [
            input_statistics(x_raw, self.high),
            self.pixels.project(x_raw),
            self.embedding.project(emb),
        ]
        return np.concatenate(parts, axis=1)

    def test(self, x_raw: np.ndarray) -> DriftReport:
        """KS test and Wasserstein distance per feature; drift if any Holm-adjusted p <= alpha."""
        from scipy import stats

        values = self.features(x_raw)
        if len(values) < 2:
            raise DataError(
                f"DriftDetector.test: expected a batch of at least 2 images, got {len(values)}."
            )
        scale = self.reference.std(axis=0)
        ks = [stats.ks_2samp(self.reference[:, j], values[:, j]) for j in range(len(self.names))]
        p = np.array([r.pvalue for r in ks])
        adjusted = holm(p)
        tests = [
            FeatureTest(
                name,
                float(r.statistic),
                float(p[j]),
                float(adjusted[j]),
                float(stats.wasserstein_distance(self.reference[:, j], values[:, j]))
                / float(scale[j] if scale[j] > 0 else 1.0),
                bool(adjusted[j] <= self.alpha),
            )
            for j, (name, r) in enumerate(zip(self.names, ks, strict=True))
        ]
        drift = any(t.drifted for t in tests)
        return DriftReport(tests, drift, self.alpha, len(values), len(self.reference))

    def __repr__(self) -> str:
        return (
            f"DriftDetector({len(self.names)} features on {len(self.reference)} reference images: "
            f"{len(INPUT_STATISTICS)} input statistics, {len(self.pixels.components)} pixel and "
            f"{len(self.embedding.components)} {self.layer} principal components; {METHOD} at "
            f"alpha {self.alpha:g})"
        )


def fit_detector(
    model: Any,
    x_reference: np.ndarray,
    transform: Transform,
    *,
    layer: str | None = None,
    pixel_components: int = 6,
    embedding_components: int = 8,
    alpha: float = ALPHA,
) -> DriftDetector:
    """A detector whose reference is `x_reference` (raw images the model did NOT train on, e.g.
    the validation or gate split) and `model`'s embeddings of them."""
    params.check_int("pixel_components", pixel_components, minimum=1)
    params.check_int("embedding_components", embedding_components, minimum=1)
    params.check_number("alpha", alpha, minimum=0, maximum=1, exclusive_minimum=True)
    x_reference = np.asarray(x_reference)
    if len(x_reference) < 10:
        raise DataError(
            f"fit_detector: expected at least 10 reference images, got {len(x_reference)}."
        )
    layer = layer or embedding_layer(model)
    sub_model = embedding_model(model, layer)
    emb = _predict(sub_model, transform.apply(x_reference))
    pixels = Projection.fit(x_reference, pixel_components)
    embedding = Projection.fit(emb, embedding_components)
    names = [
        *INPUT_STATISTICS,
        *(f"pixel pc{i + 1}" for i in range(len(pixels.components))),
        *(f"{layer} pc{i + 1}" for i in range(len(embedding.components))),
    ]
    high = raw_range(transform)[1]
    detector = DriftDetector(names, np.empty((0, len(names))), high, transform, pixels,
                             embedding, layer, alpha, sub_model)  # fmt: skip
    detector.reference = detector.features(x_reference)
    return detector
