"""Extraction: every named source, the student's own files, and every bad input's message."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from workbench.data import list_sources, load_source
from workbench.data.sources import DOWNLOADS
from workbench.errors import DataError
from workbench.files import sha256_file


def write_png_folder(root, classes=("cat", "dog"), per_class=3, size=(6, 5), mode="L"):
    """A folder source: one subfolder per class of small PNGs (pixel value = class * 40 + k)."""
    for c_i, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            colour = c_i * 40 + k if mode == "L" else (c_i * 40 + k, 10, 200)
            Image.new(mode, size, colour).save(root / name / f"{k}.png")
    return root


# ---- offline named sources -------------------------------------------------------------------


def test_list_sources_names_every_source():
    names = list_sources()
    for name in ("digits", "mnist5k", "sklearn:wine", "keras:cifar10", "folder:PATH", "csv:PATH"):
        assert name in names


def test_digits_are_8x8_images_with_pixels_up_to_16():
    raw = load_source("digits")
    assert raw.x.shape == (1797, 8, 8) and raw.x.dtype == np.uint8
    assert raw.x.max() == 16 and raw.pixel_max == 16
    assert raw.modality == "image" and raw.class_names == tuple("0123456789")
    assert "RawData('digits', image, x=(1797, 8, 8) uint8" in repr(raw)


def test_mnist5k_is_5000_images_28x28_uint8():
    raw = load_source("mnist5k")
    assert raw.x.shape == (5000, 28, 28) and raw.x.dtype == np.uint8
    assert raw.x.max() == 255 and sorted(np.unique(raw.y)) == list(range(10))


@pytest.mark.parametrize(
    ("name", "shape", "n_classes"),
    [("sklearn:breast_cancer", (569, 30), 2), ("sklearn:wine", (178, 13), 3)],
)
def test_sklearn_tabular_classification(name, shape, n_classes):
    raw = load_source(name)
    assert raw.x.shape == shape and raw.modality == "tabular"
    assert len(raw.class_names) == n_classes and len(raw.feature_names) == shape[1]
    assert raw.y.dtype == np.int64


def test_sklearn_diabetes_is_regression():
    raw = load_source("sklearn:diabetes")
    assert raw.x.shape == (442, 10) and raw.class_names == ()
    assert raw.y.dtype == np.float32 and "numeric target" in repr(raw)


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(DataError, match=r"Unknown data source 'mnist6k'; expected one of .*digits"):
        load_source("mnist6k")


def test_unexpected_argument_names_what_the_source_accepts():
    with pytest.raises(DataError, match=r"unexpected argument\(s\) \['target'\]; it accepts \[\]"):
        load_source("digits", target="x")


# ---- folder:PATH -----------------------------------------------------------------------------


def test_folder_of_grayscale_pngs(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    raw = load_source(f"folder:{root}")
    assert raw.x.shape == (6, 5, 6) and raw.x.dtype == np.uint8  # (N, H, W): 5 rows, 6 columns
    assert raw.class_names == ("cat", "dog") and raw.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert raw.x[4, 0, 0] == 41 and raw.pixel_max == 255


def test_folder_with_a_colour_image_is_read_as_rgb(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    Image.new("RGB", (6, 5), (1, 2, 3)).save(root / "dog" / "rgb.png")
    raw = load_source(f"folder:{root}")
    assert raw.x.shape == (7, 5, 6, 3)
    assert load_source(f"folder:{root}", color="grayscale").x.shape == (7, 5, 6)


def test_folder_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; expected a folder with one subfolder"):
        load_source(f"folder:{tmp_path / 'nowhere'}")


def test_folder_without_class_subfolders(tmp_path):
    with pytest.raises(DataError, match=r"has no subfolders; expected one subfolder per class"):
        load_source(f"folder:{tmp_path}")


def test_folder_empty_class_folder(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    (root / "emu").mkdir()
    with pytest.raises(DataError, match=r"class folder '.*emu' has no images; expected files"):
        load_source(f"folder:{root}")


def test_folder_unreadable_image(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image '.*broken.png'.*expected a valid PNG"):
        load_source(f"folder:{root}")


def test_folder_images_of_different_sizes(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    Image.new("L", (9, 9)).save(root / "dog" / "big.png")
    with pytest.raises(DataError, match=r"big.png' is 9x9 pixels; expected 6x5"):
        load_source(f"folder:{root}")


# ---- csv:PATH --------------------------------------------------------------------------------


def test_csv_with_text_column_and_default_target(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("weight,colour,kind\n4.0,black,cat\n30,brown,dog\n5.5,brown,cat\n,white,dog\n")
    raw = load_source(f"csv:{path}")
    assert raw.feature_names == ("weight", "colour") and raw.class_names == ("cat", "dog")
    assert raw.y.tolist() == [0, 1, 0, 1]
    assert raw.categories == {"colour": ["black", "brown", "white"]}
    assert raw.x[:, 1].tolist() == [0, 1, 1, 2] and np.isnan(raw.x[3, 0])


def test_csv_named_target_and_regression(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("target,a,price\n1,0.5,10.25\n0,0.1,3.5\n1,0.2,7.0\n")
    assert load_source(f"csv:{path}").class_names == ("0", "1")  # "target" wins over last column
    raw = load_source(f"csv:{path}", target="price")
    assert raw.class_names == () and raw.y.dtype == np.float32 and raw.x.shape == (3, 2)


def test_csv_without_the_target_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no target column 'label' in .* columns are \['a', 'b'\]"):
        load_source(f"csv:{path}", target="label")


def test_csv_missing_file_and_ragged_row(tmp_path):
    with pytest.raises(DataError, match=r"file '.*none.csv' does not exist"):
        load_source(f"csv:{tmp_path / 'none.csv'}")
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match=r"line 3 of .* has 1 fields; expected 2"):
        load_source(f"csv:{path}")


# ---- keras:* through small file:// files with their own hashes -------------------------------


def test_keras_mnist_from_a_local_file(tmp_path):
    npz = tmp_path / "mini.npz"
    x = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28)
    np.savez(npz, x_train=x, y_train=np.array([0, 1, 2, 3]), x_test=x[:2], y_test=np.array([5, 6]))
    raw = load_source(
        "keras:mnist",
        origin=npz.as_uri(),
        file_hash=sha256_file(npz),
        cache_dir=tmp_path / "cache",
    )
    assert raw.x.shape == (4, 28, 28) and raw.y.tolist() == [0, 1, 2, 3]
    assert raw.predefined_test[1].tolist() == [5, 6]
    assert (tmp_path / "cache" / "datasets" / "mnist.npz").is_file()


def test_keras_download_with_a_wrong_hash_is_refused_and_not_cached(tmp_path):
    npz = tmp_path / "mini.npz"
    np.savez(npz, x_train=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DataError, match=r"does not have the expected hash '0{64}'"):
        load_source(
            "keras:mnist", origin=npz.as_uri(), file_hash="0" * 64, cache_dir=tmp_path / "c"
        )
    assert not (tmp_path / "c" / "datasets" / "mnist.npz").exists()


def test_keras_mnist_with_a_wrong_file_says_what_it_expected(tmp_path):
    npz = tmp_path / "other.npz"
    np.savez(npz, images=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DataError, match=r"is not an MNIST npz file .* expected arrays x_train"):
        load_source(
            "keras:mnist", origin=npz.as_uri(), file_hash=sha256_file(npz), cache_dir=tmp_path
        )


def _idx_gz(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return path


def test_keras_fashion_mnist_from_local_idx_files(tmp_path, monkeypatch):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    files = {
        "train-labels-idx1-ubyte.gz": np.array([9, 0, 3]),
        "train-images-idx3-ubyte.gz": images,
        "t10k-labels-idx1-ubyte.gz": np.array([1]),
        "t10k-images-idx3-ubyte.gz": images[:1],
    }
    downloads = {}
    for name, array in files.items():
        path = _idx_gz(tmp_path / name, array)
        downloads[name] = (path.as_uri(), sha256_file(path))
    raw = load_source("keras:fashion_mnist", downloads=downloads, cache_dir=tmp_path / "cache")
    assert raw.x.shape == (3, 28, 28) and raw.y.tolist() == [9, 0, 3]
    assert raw.class_names[9] == "Ankle boot" and raw.predefined_test[0].shape == (1, 28, 28)
    with pytest.raises(DataError, match=r"has 4 files; origin= works for one-file sources"):
        load_source("keras:fashion_mnist", origin="file:///x", cache_dir=tmp_path)


def test_downloads_table_can_be_patched(tmp_path, monkeypatch):
    from workbench.data.sources import Download

    npz = tmp_path / "mini.npz"
    x = np.zeros((2, 28, 28), np.uint8)
    np.savez(npz, x_train=x, y_train=np.array([1, 2]), x_test=x, y_test=np.array([3, 4]))
    patched = (Download("mnist.npz", npz.as_uri(), sha256_file(npz)),)
    monkeypatch.setitem(DOWNLOADS, "keras:mnist", patched)
    assert load_source("keras:mnist", cache_dir=tmp_path / "c").y.tolist() == [1, 2]


def _cifar_batch(n, first_label):
    data = np.arange(n * 3072).reshape(n, 3072) % 256  # (N, 3*32*32), channels first
    return {b"data": data.astype(np.uint8), b"labels": [first_label + i for i in range(n)]}


def test_keras_cifar10_from_a_local_tarball(tmp_path):
    tar_path = tmp_path / "cifar.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, batch in (
            ("data_batch_1", _cifar_batch(3, 0)),
            ("test_batch", _cifar_batch(2, 5)),
        ):
            blob = pickle.dumps(batch, protocol=4)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    raw = load_source(
        "keras:cifar10",
        origin=tar_path.as_uri(),
        file_hash=sha256_file(tar_path),
        cache_dir=tmp_path,
    )
    assert raw.x.shape == (3, 32, 32, 3) and raw.y.tolist() == [0, 1, 2]
    assert raw.x[0, 0, 1, 0] == 1 and raw.x[0, 0, 0, 1] == 1024 % 256  # channels-last
    assert raw.predefined_test[1].tolist() == [5, 6] and raw.class_names[0] == "airplane"


def test_keras_cifar10_refuses_pickled_code(tmp_path):
    tar_path = tmp_path / "evil.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        blob = pickle.dumps({b"data": print}, protocol=4)  # a global outside numpy
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DataError, match=r"is not a CIFAR-10 python archive \(refusing to load"):
        load_source(
            "keras:cifar10",
            origin=tar_path.as_uri(),
            file_hash=sha256_file(tar_path),
            cache_dir=tmp_path,
        )


def test_folder_unexpected_argument(tmp_path):
    with pytest.raises(
        DataError, match=r"unexpected argument\(s\) \['target'\]; it accepts \['color'\]"
    ):
        load_source(f"folder:{tmp_path}", target="y")
