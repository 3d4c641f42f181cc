"""The downstream tasks of figure 3: each reuses the learned representation that suits it.

    task 1  similarity search     high latent   nearest(index, queries, k), precision_at_k
    task 2  map, clusters, OOD    low latent    fit_map_2d, cluster_ari, workbench.amalgam.ood
    task 3  calibrated classes    logits        fit_temperature, softmax, ECE; distill a student
    task 4  attribute tagging     attributes    fit_thresholds (validation), attribute_scores
    task 5  pairs of inputs       low latents   combine(a, b), pair_task("same" | "sum")

Every function takes plain arrays (a model's outputs per split), so the tasks run on any model.
Whatever a task selects (a temperature, thresholds) it fits on validation or training arrays,
which is what the parameter names say; test arrays only give the final estimate.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench import params
from workbench.errors import DataError
from workbench.evaluate import calibration, confusion_matrix, scores


def one_thread(fn):
    """Run `fn` with NumPy's and scikit-learn's BLAS and OpenMP pools at one thread each.

    Once TensorFlow has run in a process, its idle threads and those pools' spinning threads
    fight over the cores: on two cores a 0.2 s k-means took 6 s. These arrays are small, so
    one thread loses nothing (threadpoolctl ships with scikit-learn)."""

    @functools.wraps(fn)
    def limited(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return limited


# ---- task 1: similarity search on the high-dimensional latent -------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"Expected vectors of shape (N, D), got shape {x.shape}.")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # zero stays zero


@one_thread
def nearest(index: np.ndarray, queries: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The `k` vectors of `index` (N, D) closest to each query (Q, D) by cosine distance
    (1 - cosine similarity: the angle counts, not the length). Returns (indices, distances),
    both (Q, k), nearest first. Brute force: one matrix product, exact."""
    a, b = _unit(index), _unit(queries)
    k = params.check_int("k", k, minimum=1, maximum=len(a))
    if a.shape[1] != b.shape[1]:
        raise DataError(f"nearest: index has {a.shape[1]} dims, queries have {b.shape[1]}.")
    dist = 1.0 - b @ a.T  # (Q, N)
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]  # the k smallest, unordered
    order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(dist, idx, axis=1)


def precision_at_k(
    index: np.ndarray, index_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray,
    k: int = 5,
) -> float:  # fmt: skip
    """Share of each query's `k` nearest index vectors that have the query's class, averaged
    over the queries (index: training vectors, queries: test vectors). Chance ~ 1 / classes."""
    idx, _ = nearest(index, queries, k)
    return float((np.asarray(index_labels)[idx] == np.asarray(query_labels)[:, None]).mean())


# ---- task 2: a 2-D map and clusters of the low-dimensional latent ---------------------------


@dataclass(frozen=True)
class Map2D:
    """A linear map to 2-D: (x - mean) @ components.T; the identity when the latent is 2-D."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D)
    explained: float  # share of the training variance the two axes keep

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(N, D) latents -> (N, 2) points."""
        return (np.asarray(x, np.float64) - self.mean) @ self.components.T


@one_thread
def fit_map_2d(latent_train: np.ndarray) -> Map2D:
    """The latent itself if it is 2-D, else PCA to 2-D fitted on the training latents."""
    z = np.asarray(latent_train, np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise DataError(f"fit_map_2d: expected latents (N, D >= 2), got shape {z.shape}.")
    if z.shape[1] == 2:
        return Map2D(np.zeros(2), np.eye(2), 1.0)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(z)
    return Map2D(pca.mean_, pca.components_, float(pca.explained_variance_ratio_.sum()))


@one_thread
def fit_kmeans(latent_train: np.ndarray, *, n_clusters: int = 10, seed: int = 0) -> Any:
    """k-means with k = the number of classes, fitted on the training latents without labels
    (scikit-learn's KMeans, 10 starts); `.predict(latents)` gives each its nearest centre."""
    from sklearn.cluster import KMeans

    n_clusters = params.check_int("n_clusters", n_clusters, minimum=2)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit(np.asarray(latent_train, float))


@one_thread
def cluster_ari(
    kmeans: Any, latent_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, np.ndarray]:
    """(adjusted Rand index of the test latents' clusters against their labels: 1 = the classes
    exactly, 0 = chance; the clusters). The labels only score, they never shape the clusters."""
    from sklearn.metrics import adjusted_rand_score

    clusters = kmeans.predict(np.asarray(latent_test, float))
    return float(adjusted_rand_score(np.asarray(y_test), clusters)), clusters


# ---- task 3: calibrated classification from the logits ---------------------------------------


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities softmax(logits / T): T > 1 softens over-confident answers."""
    z = np.asarray(logits, np.float64) / params.check_number(
        "temperature", temperature, minimum=0, exclusive_minimum=True
    )
    z -= z.max(axis=1, keepdims=True)  # no overflow; the softmax is unchanged
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels `y` under softmax(logits / T)."""
    p = softmax(logits, temperature)[np.arange(len(y)), np.asarray(y, int)]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def fit_temperature(logits_val: np.ndarray, y_val: np.ndarray) -> float:
    """The temperature T that minimises the validation NLL (Guo et al., 2017), searched on
    log T in [log 0.05, log 20] (scipy's bounded Brent method). One number: the classes'
    order, hence accuracy, does not change; only how sure the probabilities are."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda log_t: nll(logits_val, y_val, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of class probabilities (N, K): confidence = the top probability, correct = its
    class is `y`, in `bins` equal-width bins (workbench.evaluate.calibration)."""
    probs, bins = np.asarray(probs), params.check_int("bins", bins, minimum=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    return calibration(probs.max(axis=1), correct, bins=bins)["ece"]


def accuracy(logits_or_probs: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose largest entry is the label."""
    return float((np.asarray(logits_or_probs).argmax(axis=1) == np.asarray(y)).mean())


@dataclass
class Student:
    """A small network trained to imitate a teacher's logits (knowledge distillation)."""

    model: Any  # keras.Model: flattened inputs -> logits
    params: int  # its number of weights
    temperature: float
    alpha: float  # weight of the soft (teacher) loss; 1 - alpha goes to the hard labels

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) inputs, transformed as the teacher's -> (N, K) logits."""
        x = np.asarray(x, np.float32)
        return np.asarray(self.model.predict_on_batch(x.reshape(len(x), -1)))


def distill(
    x_train: np.ndarray, teacher_logits: np.ndarray, y_train: np.ndarray, *,
    temperature: float = 2.0, alpha: float = 0.5, hidden: int = 32, epochs: int = 20,
    batch_size: int = 64, learning_rate: float = 3e-3, seed: int = 0,
) -> Student:  # fmt: skip
    """Train a one-hidden-layer MLP on the flattened model inputs (the transformed pixels) to
    match the teacher (Hinton et al., 2015): loss = alpha * T^2 * KL(teacher || student at
    temperature T) + (1 - alpha) * cross-entropy with the labels. The softened teacher says
    which wrong classes are close (a 3 that looks like an 8), more than the labels alone; T^2
    keeps the soft part's gradients as large as the hard part's."""
    from workbench.config import load_keras, seed_everything

    keras = load_keras()
    ops = keras.ops
    t = params.check_number("temperature", temperature, minimum=0, exclusive_minimum=True)
    a = params.check_number("alpha", alpha, minimum=0, maximum=1)
    x = np.asarray(x_train, np.float32).reshape(len(x_train), -1)
    teacher = np.asarray(teacher_logits, np.float32)
    if teacher.shape[0] != len(x) or len(np.asarray(y_train)) != len(x):
        raise DataError(
            f"distill: {len(x)} inputs, {teacher.shape[0]} teacher rows and "
            f"{len(np.asarray(y_train))} labels; expected the same number."
        )
    k = teacher.shape[1]
    targets = np.concatenate([np.eye(k, dtype=np.float32)[np.asarray(y_train, int)], teacher], 1)

    def soft_and_hard(y_true, y_pred):  # y_true = [one-hot labels | teacher logits]
        soft = ops.softmax(y_true[:, k:] / t)
        kl = ops.sum(soft * (ops.log_softmax(y_true[:, k:] / t) - ops.log_softmax(y_pred / t)), 1)
        hard = -ops.sum(y_true[:, :k] * ops.log_softmax(y_pred), axis=1)
        return a * t**2 * kl + (1 - a) * hard

    seed_everything(seed)
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(hidden, activation="relu"),
         keras.layers.Dense(k, name="logits")], name="student",
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(learning_rate), loss=soft_and_hard)
    model.fit(x, targets, epochs=epochs, batch_size=batch_size, verbose=0)
    return Student(model, int(model.count_params()), t, a)


# ---- task 4: multi-label attribute tagging ------------------------------------------------


def fit_thresholds(probs_val: np.ndarray, attributes_val: np.ndarray) -> np.ndarray:
    """Per attribute, the threshold on its probability with the best validation F1 (candidates:
    the validation probabilities themselves, so no grid is needed). Returns (L,)."""
    p, truth = np.asarray(probs_val, float), np.asarray(attributes_val).astype(bool)
    if p.shape != truth.shape or p.ndim != 2:
        raise DataError(f"fit_thresholds: probabilities {p.shape} vs attributes {truth.shape}.")
    out = np.empty(p.shape[1])
    for j in range(p.shape[1]):
        cand = np.unique(p[:, j])  # predict 1 when p >= cand
        pred = p[:, j][None, :] >= cand[:, None]  # (C, N)
        tp = (pred & truth[:, j]).sum(axis=1)
        f1 = 2 * tp / np.maximum(pred.sum(axis=1) + truth[:, j].sum(), 1)
        out[j] = cand[int(np.argmax(f1))]
    return out


def attribute_scores(
    predicted: np.ndarray, attributes: np.ndarray
) -> dict[str, np.ndarray | float]:
    """Per-attribute precision, recall, F1 and support of 0/1 predictions (N, L), and the
    exact-match ratio (all L attributes right). Threshold probabilities first:
    `probs >= fit_thresholds(probs_val, attributes_val)`."""
    pred, truth = np.asarray(predicted).astype(int), np.asarray(attributes).astype(int)
    if pred.shape != truth.shape or pred.ndim != 2:
        raise DataError(f"attribute_scores: predictions {pred.shape} vs truth {truth.shape}.")
    per_label = np.stack(
        [confusion_matrix(truth[:, j], pred[:, j], 2) for j in range(pred.shape[1])]
    )
    out: dict[str, np.ndarray | float] = dict(scores(per_label[:, ::-1, ::-1]))  # positive first
    out["exact_match"] = float((pred == truth).all(axis=1).mean())
    return out


# ---- task 5: pairs of inputs, their embeddings combined -------------------------------------

PAIR_TASKS = ("same", "sum")  # are the two digits the same? / their sum (0..18, 19 classes)


def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two embeddings (N, D) -> one (N, 4D): [a, b, |a - b|, a * b] (InferSent's features:
    the difference says how far apart, the product where they agree)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim != 2:
        raise DataError(
            f"combine: expected two arrays (N, D) of one shape, got {a.shape}, {b.shape}."
        )
    return np.concatenate([a, b, np.abs(a - b), a * b], axis=1)


def make_pairs(
    y: np.ndarray, n: int, *, task: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` pairs (i, j, target) of examples of ONE split (indices into its labels `y`), so
    pairs never mix splits. "same": half the pairs share a class (target 1), half do not;
    "sum": uniformly random pairs, target y[i] + y[j]."""
    params.check_choice("task", task, PAIR_TASKS)
    n = params.check_int("n", n, minimum=2)
    y = np.asarray(y).astype(int)
    rng = np.random.default_rng(seed)
    i = rng.integers(len(y), size=n)
    if task == "sum":
        j = rng.integers(len(y), size=n)
        return i, j, y[i] + y[j]
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"make_pairs: 'same' needs two classes or more, got {classes.tolist()}.")
    same = rng.permutation(np.arange(n) < n // 2)  # exactly half, in random order
    ci = np.searchsorted(classes, y[i])  # i's class; j's: the same, or another one at random
    cj = np.where(same, ci, (ci + rng.integers(1, len(classes), size=n)) % len(classes))
    by_class = np.argsort(y, kind="stable")  # the examples of class c: a block of this order
    first = np.r_[0, np.cumsum(counts)[:-1]]
    j = by_class[first[cj] + rng.integers(counts[cj])]
    return i, j, same.astype(int)


_PAIR_FITS: dict[tuple, Any] = {}  # content-keyed: the table, task 5 and the served head
# fit the same pairs; a fit is deterministic (its seed), so a repeat returns the first one


def _content_key(*arrays: np.ndarray) -> tuple:
    return tuple(
        (a.shape, str(a.dtype), hashlib.sha1(np.ascontiguousarray(a).data).hexdigest())
        for a in arrays
    )


@one_thread
def fit_pair_classifier(
    z_train: np.ndarray, y_train: np.ndarray, *, task: str, n_pairs: int = 4000, seed: int = 0
) -> Any:
    """A small MLP (scikit-learn, 64 hidden units, standardised inputs) on combine(z[i], z[j])
    for `n_pairs` pairs of the training split; `.predict(combine(a, b))` answers new pairs.
    The same arguments return the same (already fitted) classifier: do not refit it."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train, y_train = np.asarray(z_train, np.float32), np.asarray(y_train).astype(int)
    key = (*_content_key(z_train, y_train), task, n_pairs, seed)
    if key not in _PAIR_FITS:
        i, j, target = make_pairs(y_train, n_pairs, task=task, seed=seed)
        mlp = MLPClassifier((64,), max_iter=300, early_stopping=True, random_state=seed)
        clf = make_pipeline(StandardScaler(), mlp).fit(combine(z_train[i], z_train[j]), target)
        if len(_PAIR_FITS) >= 16:  # a notebook fits a handful; a long session stays small
            _PAIR_FITS.pop(next(iter(_PAIR_FITS)))
        _PAIR_FITS[key] = clf
    return _PAIR_FITS[key]


@one_thread
def pair_task(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, *,
    task: str, n_train: int = 4000, n_test: int = 1000, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Task 5 end to end: the classifier fitted on training pairs, scored on test pairs.
    Returns accuracy, chance (the most frequent test target's share), the test pairs (i, j),
    their targets and predictions, and the classifier."""
    clf = fit_pair_classifier(z_train, y_train, task=task, n_pairs=n_train, seed=seed)
    i, j, target = make_pairs(y_test, n_test, task=task, seed=seed + 1)
    pred = clf.predict(combine(z_test[i], z_test[j]))
    return {
        "accuracy": float((pred == target).mean()),
        "chance": float(np.bincount(target).max() / len(target)),
        "pairs": (i, j),
        "target": target,
        "predicted": pred,
        "classifier": clf,
    }
