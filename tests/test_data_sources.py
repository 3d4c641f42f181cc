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


def test_folder_images_of_different_sizes_are_resized_to_the_most_common(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    Image.new("L", (9, 9), 77).save(root / "dog" / "big.png")
    raw = load_source(f"folder:{root}")
    assert raw.x.shape == (7, 5, 6)  # six 6x5 images outvote one 9x9
    assert raw.x[6].min() == raw.x[6].max() == 77  # dog/big.png, last in sorted order
    assert raw.notes["resized"] == 1 and raw.notes["sizes"] == {"6x5": 6, "9x9": 1}
    assert raw.notes["image_size"] == [5, 6]


def write_messy_folder(root):
    """Two sizes, RGB and grayscale, a corrupt and a truncated PNG, and files to ignore."""
    write_png_folder(root, per_class=2, size=(8, 8))  # cat/0-1, dog/0-1: L, 8x8
    Image.new("RGB", (12, 10), (200, 0, 0)).save(root / "cat" / "red.png")
    Image.new("L", (4, 4), 9).save(root / "dog" / "small.png")
    (root / "cat" / "corrupt.png").write_bytes(b"\x89PNG garbage, not an image")
    stream = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), np.uint8)
    Image.fromarray(noise).save(stream, "PNG")
    (root / "dog" / "truncated.png").write_bytes(stream.getvalue()[:300])
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "dog" / "notes.txt").write_text("taken on my phone")
    (root / "dog" / "Thumbs.db").write_bytes(b"\x00")
    (root / ".hidden").mkdir()
    return root


def test_folder_with_mixed_and_bad_files_names_the_bad_file(tmp_path):
    root = write_messy_folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"cannot read image '.*corrupt.png' .*skip_bad=True"):
        load_source(f"folder:{root}")
    (root / "cat" / "corrupt.png").unlink()
    with pytest.raises(DataError, match=r"cannot read image '.*truncated.png' \(image file is"):
        load_source(f"folder:{root}")


def test_folder_skip_bad_reads_the_rest_and_reports_it(tmp_path):
    root = write_messy_folder(tmp_path / "imgs")
    raw = load_source(f"folder:{root}", skip_bad=True, image_size=(6, 7))
    assert raw.x.shape == (6, 6, 7, 3) and raw.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert raw.x[2].reshape(-1, 3).tolist() == [[200, 0, 0]] * 42  # cat/red.png, resized
    notes = raw.notes
    assert notes["images"] == {"cat": 3, "dog": 3} and notes["color"] == "rgb"
    assert notes["sizes"] == {"8x8": 4, "12x10": 1, "4x4": 1} and notes["resized"] == 6
    assert notes["modes"] == {"L": 5, "RGB": 1} and notes["converted"] == 5
    assert sorted(notes["skipped"]) == ["cat/corrupt.png", "dog/truncated.png"]
    assert "cannot identify image file" in notes["skipped"]["cat/corrupt.png"]
    assert notes["ignored"] == [".hidden", "cat/.DS_Store", "dog/Thumbs.db", "dog/notes.txt"]
    default = load_source(f"folder:{root}", skip_bad=True, color="grayscale")
    assert default.x.shape == (6, 8, 8) and default.notes["resized"] == 2  # the most common size


def test_folder_class_with_only_bad_images(tmp_path):
    root = write_png_folder(tmp_path / "imgs", per_class=1)
    (root / "dog" / "0.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"class folder\(s\) \['dog'\] have no readable image"):
        load_source(f"folder:{root}", skip_bad=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"image_size": 28},
            r"image_size must be \(height, width\), two positive integers, got 28",
        ),
        ({"image_size": (28, 0)}, r"image_size\[1\] must be a positive integer, got 0"),
        ({"skip_bad": "yes"}, r"skip_bad must be True or False, got 'yes'"),
        ({"color": "RGB"}, r"unknown color 'RGB'; expected one of \['auto', 'grayscale', 'rgb'\]"),
    ],
)
def test_folder_bad_options(tmp_path, options, message):
    root = write_png_folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=message):
        load_source(f"folder:{root}", **options)


def test_folder_shows_progress_only_for_large_folders(tmp_path, monkeypatch, capsys):
    from workbench.data import sources

    root = write_png_folder(tmp_path / "imgs", per_class=2)
    load_source(f"folder:{root}")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sources, "PROGRESS_MIN_IMAGES", 3)
    load_source(f"folder:{root}")
    assert "4/4" in capsys.readouterr().err


# ---- csv:PATH --------------------------------------------------------------------------------


def test_csv_with_a_text_column_and_a_named_target(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("weight,colour,kind\n4.0,black,cat\n30,brown,dog\n5.5,brown,cat\n,white,dog\n")
    raw = load_source(f"csv:{path}", target="kind")
    assert raw.feature_names == ("weight", "colour") and raw.class_names == ("cat", "dog")
    assert raw.y.tolist() == [0, 1, 0, 1]
    assert raw.categories == {"colour": ["black", "brown", "white"]}
    assert raw.x[:, 1].tolist() == [0, 1, 1, 2] and np.isnan(raw.x[3, 0])


def test_csv_target_column_by_name_and_regression(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("target,a,price\n1,0.5,10.25\n0,0.1,3.5\n1,0.2,7.0\n")
    assert load_source(f"csv:{path}").class_names == ("0", "1")  # the column named "target"
    raw = load_source(f"csv:{path}", target="price")
    assert raw.class_names == () and raw.y.dtype == np.float32 and raw.x.shape == (3, 2)


def test_csv_without_the_target_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no target column 'label' in the file; its columns are"):
        load_source(f"csv:{path}", target="label")


def test_csv_missing_file_and_ragged_rows(tmp_path):
    with pytest.raises(DataError, match=r"file '.*none.csv' does not exist"):
        load_source(f"csv:{tmp_path / 'none.csv'}")
    path = tmp_path / "r.csv"
    path.write_text("a,target\n1,2\n3\n")  # pandas would pad the short row with NaN
    with pytest.raises(DataError, match=r"line 3 of the file has 1 fields; expected 2"):
        load_source(f"csv:{path}")
    path.write_text("a,target\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"line 3 of the file has 3 fields; expected 2"):
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
    accepts = r"it accepts \['color', 'image_size', 'skip_bad'\]"
    with pytest.raises(DataError, match=r"unexpected argument\(s\) \['target'\]; " + accepts):
        load_source(f"folder:{tmp_path}", target="y")
