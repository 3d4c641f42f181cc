"""Management: prepare() makes content-hashed versions, reused, atomic and checked on load."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import config
from workbench.data import list_versions, load_version, prepare
from workbench.data.versioning import content_hash
from workbench.errors import DataError, ParameterError
from workbench.files import read_json, sha256_file


def data_dir_entries(run_dir):
    """Everything in <run_dir>/data, hidden temporary folders included."""
    root = run_dir / "data"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_prepare_digits_writes_a_version(tmp_path):
    v = prepare("digits", run_dir=tmp_path, seed=0)
    assert v.id.startswith("v-") and len(v.id) == 14
    assert data_dir_entries(tmp_path) == [v.id]
    assert config.current(tmp_path, "data") == v.id
    m = read_json(tmp_path / "data" / v.id / "manifest.json")
    assert m["source"] == "digits" and m["task"] == "multiclass"
    assert m["parameters"] == {
        "seed": 0,
        "task": "multiclass",
        "test_fraction": 0.2,
        "val_fraction": 0.1,
    }
    assert m["shapes"]["x_train"][1:] == [8, 8, 1] and m["dtypes"]["x_train"] == "|u1"
    assert sum(m["sizes"].values()) == 1797
    assert sum(m["class_counts"]["test"].values()) == m["sizes"]["test"]
    assert m["transform"]["scale"] == 16.0 and m["transform"]["input_shape"] == [8, 8, 1]
    assert m["file_sha256"] == sha256_file(tmp_path / "data" / v.id / "arrays.npz")
    assert m["content_sha256"] == content_hash(v.arrays)
    assert repr(v).startswith(
        f"DatasetVersion('{v.id}', source='digits', task='multiclass', train="
    )


def test_same_inputs_reuse_the_version_and_changes_make_a_new_one(tmp_path):
    v1 = prepare("digits", run_dir=tmp_path)
    npz = tmp_path / "data" / v1.id / "arrays.npz"
    mtime = npz.stat().st_mtime_ns
    assert prepare("digits", run_dir=tmp_path).id == v1.id
    assert npz.stat().st_mtime_ns == mtime  # reused, not rewritten
    v2 = prepare("digits", run_dir=tmp_path, seed=1)
    assert v2.id != v1.id
    assert set(list_versions(tmp_path)) == {v1.id, v2.id}
    assert config.current(tmp_path, "data") == v2.id
    assert load_version(tmp_path).id == v2.id and load_version(tmp_path, v1.id).id == v1.id


def test_content_hash_ignores_file_bytes_but_not_content():
    a = {"x": np.arange(4, dtype=np.uint8)}
    assert content_hash(a) == content_hash({"x": np.arange(4, dtype=np.uint8)})
    assert content_hash(a) != content_hash({"x": np.arange(4, dtype=np.int64)})
    assert content_hash(a) != content_hash({"x": np.arange(4, dtype=np.uint8).reshape(2, 2)})


def test_corrupted_arrays_are_refused(tmp_path):
    v = prepare("digits", run_dir=tmp_path)
    npz = tmp_path / "data" / v.id / "arrays.npz"
    data = bytearray(npz.read_bytes())
    data[-100] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"Data version '{v.id}' is corrupted: arrays.npz has"):
        load_version(tmp_path)


def test_missing_version_says_which_exist(tmp_path):
    with pytest.raises(DataError, match=r"No current data version in .*versions there: \[\]"):
        load_version(tmp_path)
    v = prepare("digits", run_dir=tmp_path)
    with pytest.raises(
        DataError, match=rf"'v-000000000000' not found .* expected one of \['{v.id}'\]"
    ):
        load_version(tmp_path, "v-000000000000")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_savez(path, **arrays):
        open(path, "wb").write(b"half")  # noqa: SIM115 - a partial file, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        prepare("digits", run_dir=tmp_path)
    assert data_dir_entries(tmp_path) == []
    assert config.current(tmp_path, "data") is None


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "message"),
    [
        ("nope", {}, DataError, r"Unknown data source 'nope'"),
        ("digits", {"task": "ranking"}, ParameterError, r"Parameter 'task': expected one of"),
        (
            "digits",
            {"task": "binary"},
            DataError,
            r"'binary' needs exactly 2 classes; 'digits' has 10",
        ),
        ("digits", {"task": "regression"}, DataError, r"'regression' needs a numeric target"),
        (
            "sklearn:wine",
            {"task": "multilabel"},
            DataError,
            r"needs a digit source .* got 'sklearn:wine'",
        ),
        (
            "sklearn:diabetes",
            {},
            DataError,
            r"'multiclass' needs class labels; .* Use task='regression'",
        ),
        ("digits", {"seed": -1}, ParameterError, r"Parameter 'seed': expected an integer >= 0"),
        ("digits", {"test_fraction": 1.5}, ParameterError, r"Parameter 'test_fraction'"),
    ],
)
def test_bad_inputs_fail_clearly_and_leave_no_version(tmp_path, source, kwargs, error, message):
    with pytest.raises(error, match=message):
        prepare(source, run_dir=tmp_path, **kwargs)
    assert data_dir_entries(tmp_path) == []


def test_tasks_binary_multilabel_regression(tmp_path):
    binary = prepare("sklearn:breast_cancer", run_dir=tmp_path, task="binary")
    assert (
        binary.class_names == ["malignant", "benign"] and binary.arrays["y_train"].dtype == np.int64
    )
    assert binary.transform.kind == "tabular" and binary.transform.output_shape == (30,)
    multi = prepare("digits", run_dir=tmp_path, task="multilabel")
    assert multi.arrays["y_val"].shape[1] == 4 and multi.class_names[2] == "closed_loop"
    reg = prepare("sklearn:diabetes", run_dir=tmp_path, task="regression")
    assert reg.arrays["y_test"].dtype == np.float32 and reg.manifest["class_counts"]["test"] == {}


def test_csv_with_categories_prepares_a_one_hot_transform(tmp_path):
    path = tmp_path / "pets.csv"
    rows = [f"{w % 7},{c},{k}" for w, c, k in zip(range(20), "rgb" * 7, "xy" * 10, strict=False)]
    path.write_text("weight,colour,kind\n" + "\n".join(rows) + "\n")
    v = prepare(f"csv:{path}", run_dir=tmp_path, task="binary", target="kind")
    assert [c["type"] for c in v.transform.columns] == ["numeric", "categorical"]
    assert v.transform.output_shape == (4,)  # weight, then colour=b, colour=g, colour=r
    assert v.manifest["notes"]["categories"] == {"colour": ["b", "g", "r"]}
    assert v.manifest["parameters"]["target"] == "kind"


def test_keras_source_keeps_its_own_test_split(tmp_path):
    npz = tmp_path / "mini.npz"
    x = np.random.default_rng(0).integers(0, 255, (40, 28, 28), dtype=np.uint8)
    np.savez(npz, x_train=x, y_train=np.arange(40) % 4, x_test=x[:6], y_test=np.arange(6) % 4)
    v = prepare(
        "keras:mnist",
        run_dir=tmp_path / "run",
        origin=npz.as_uri(),
        file_hash=sha256_file(npz),
        cache_dir=tmp_path / "cache",
    )
    assert v.manifest["sizes"] == {"train": 36, "val": 4, "test": 6}
    assert v.manifest["parameters"]["test_fraction"] is None
    assert "cache_dir" not in v.manifest["parameters"]
    report = v.report()
    assert report.leakage["train/test"] == 6  # the planted overlap: test images are train copies


@pytest.mark.parametrize(
    "source, task", [("digits", "multilabel"), ("sklearn:diabetes", "regression")]
)
def test_split_targets_are_the_split_prepare_draws(tmp_path, source, task):
    from workbench.data import load_source, split_targets

    split = {"seed": 2, "val_fraction": 0.15, "test_fraction": 0.25}
    y_train, y_test = split_targets(load_source(source), task, **split)
    v = prepare(source, run_dir=tmp_path, task=task, **split)
    np.testing.assert_array_equal(y_train, v.split("train")[1])
    np.testing.assert_array_equal(y_test, v.split("test")[1])


def test_03_reuses_the_cards_split_and_other_fractions_resave_the_card(tmp_path, capsys):
    from workbench import upstream
    from workbench.identify import load_card

    run = config.setup(run_dir=tmp_path, profile="smoke", seed=4)
    card = upstream.ensure_card(run)  # none yet: made as 01 would, with the run's seed
    assert card.split == {"seed": 4, "val_fraction": 0.1, "test_fraction": 0.2}
    assert "No problem card in this run directory yet" in capsys.readouterr().out
    assert upstream.ensure_card(run, val_fraction=0.1) == card  # the card's own fraction
    assert capsys.readouterr().out == ""
    version = upstream.ensure_data(run, card)
    assert {k: version.manifest["parameters"][k] for k in card.split} == card.split
    assert "preparing one with them, as notebook 03_data would" in capsys.readouterr().out

    changed = upstream.ensure_card(run, test_fraction=0.3)
    printed = capsys.readouterr().out.strip()
    assert printed.count("\n") == 0 and "differs from the card's" in printed
    assert "re-saved the card" in printed and changed.baseline["description"] in printed
    assert changed.split == {"seed": 4, "val_fraction": 0.1, "test_fraction": 0.3}
    assert load_card(tmp_path) == changed and load_card(tmp_path).baseline == changed.baseline
    y_train = prepare("digits", run_dir=tmp_path / "check", **changed.split).split("train")[1]
    values, counts = np.unique(y_train, return_counts=True)
    assert changed.baseline["predictor"].startswith(f"majority class '{values[counts.argmax()]}'")
    assert upstream.ensure_data(run, changed).manifest["parameters"]["test_fraction"] == 0.3
    assert "preparing one with them, as notebook 03_data would" in capsys.readouterr().out
    with pytest.raises(ParameterError, match="Parameter 'val_fraction': expected a number in"):
        upstream.ensure_card(run, val_fraction=1.5)
