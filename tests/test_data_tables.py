"""Stage 3 on a messy CSV the test writes: pandas reading, column types, a named target, the
imputing and one-hot transform fitted on the training split, serving unseen categories, and
one feature count from 01 to the served model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_messy_csv

from workbench.data import analyze, input_shape, load_source, prepare, split_indices
from workbench.data.prepare import fit_transform
from workbench.data.serving import serve_batch
from workbench.data.transform import MISSING_CATEGORY, table_transformer
from workbench.errors import DataError, SpecError
from workbench.identify import ProblemCard, check_source_options

SPLIT = {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return write_messy_csv(tmp_path_factory.mktemp("messy") / "penguins.csv")


@pytest.fixture(scope="module")
def raw(messy):
    return load_source(f"csv:{messy}", target="species")


def test_columns_get_their_types_and_missing_values_are_counted(raw):
    assert raw.feature_names == ("bill, mm", "mass_g", "island", "comment")  # quoted header
    assert raw.class_names == ("Adelie", "Chinstrap", "Gentoo") and len(raw.y) == 239
    read = raw.notes["columns"]
    assert {name: c["type"] for name, c in read.items()} == {
        "id": "identifier",
        "bill, mm": "numeric",
        "mass_g": "mixed",
        "island": "categorical",
        "comment": "categorical",
    }
    missing = np.isnan(raw.x).sum(axis=0).tolist()
    assert missing == [read[n]["missing"] for n in raw.feature_names] == [20, 27, 11, 0]
    assert read["mass_g"]["offending"] == {"?": [8]}  # data row 8: the file's line 9
    assert raw.categories["comment"] == [f"seen, {k} times" for k in range(4)]  # quoted commas
    assert raw.notes["dropped_rows"] == {"missing target": 1, "rows": [12]}
    assert raw.notes["identifiers"] == ["id"]


def test_the_target_is_never_guessed(messy):
    with pytest.raises(DataError) as e:
        load_source(f"csv:{messy}")
    assert "which column is the target?" in str(e.value)
    assert "columns ['species', 'id', 'bill, mm', 'mass_g', 'island', 'comment']" in str(e.value)
    assert "-p target COLUMN" in str(e.value) and "target='COLUMN'" in str(e.value)


def test_na_values_and_sep_pass_through_to_pandas(tmp_path, messy):
    raw = load_source(f"csv:{messy}", target="species", na_values=["?"])
    assert raw.notes["columns"]["mass_g"]["type"] == "numeric"  # the "?" said to be missing
    semi = tmp_path / "semi.csv"
    semi.write_text("target;a;b\n1;2,5;x\n0;NA;y\n1;-4,0;\n")
    with pytest.raises(DataError, match=r"column 'a' holds numbers written with a decimal comma"):
        load_source(f"csv:{semi}", sep=";")  # else "2,5" would be a text category
    table = load_source(f"csv:{semi}", sep=";", decimal=",")
    assert table.feature_names == ("a", "b") and table.categories == {"b": ["x", "y"]}
    assert table.x[:, 0].tolist()[::2] == [2.5, -4.0] and np.isnan(table.x[1, 0])
    assert np.isnan(table.x[2, 1])
    with pytest.raises(DataError, match=r"na_values must be a string or a list of strings"):
        load_source(f"csv:{messy}", target="species", na_values=3)


def test_a_mixed_target_empty_files_and_other_bad_tables_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,target\n" + "".join(f"{i},{i % 3}\n" for i in range(30)) + "5,unknown\n")
    with pytest.raises(DataError, match=r"target column 'target' holds numbers except 'unknown'"):
        load_source(f"csv:{path}")
    path.write_text("")
    with pytest.raises(DataError, match="the file is empty; expected a header row"):
        load_source(f"csv:{path}")
    path.write_text("a,target\n")
    with pytest.raises(DataError, match="a header and no data rows"):
        load_source(f"csv:{path}")
    path.write_text("a,target\n1,\n2,\n")
    with pytest.raises(DataError, match="every row of the file misses its target 'target'"):
        load_source(f"csv:{path}")
    path.write_bytes("a,target\n\xe9t\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_source(f"csv:{path}")


def test_the_report_lists_every_column_with_its_warnings(raw):
    train, val, test = split_indices(raw, **SPLIT)
    splits = {"train": train, "val": val, "test": test}
    report = analyze(
        raw.x, raw.y, splits, raw.class_names, feature_names=raw.feature_names, notes=raw.notes
    )
    rows = {c["column"]: c for c in report.columns}
    assert list(rows) == ["bill, mm", "mass_g", "island", "comment", "id"]
    assert (rows["island"]["type"], rows["island"]["missing"], rows["island"]["distinct"]) == (
        "categorical",
        11,
        3,
    )
    assert sum(rows["mass_g"][f"missing {s}"] for s in splits) == 27
    text = " | ".join(report.warnings)
    assert "1 row(s) without a target 'species' dropped (data rows [12])" in text
    assert "column 'mass_g': numeric except '?' (rows [8]): read as missing" in text
    assert "column 'id': unique per row (an identifier): left out of the features" in text
    assert "58 missing (NaN)" in text and report.near_leakage == {}


def test_constant_and_mostly_missing_columns_are_flagged(tmp_path):
    path = tmp_path / "c.csv"
    rows = [
        f"{i % 2},{'' if i % 4 else i},same,{i % 5},{(i * 7) % 40 * 10 + 10}" for i in range(40)
    ]
    path.write_text("target,sparse,const,n,row\n" + "\n".join(rows) + "\n")
    raw = load_source(f"csv:{path}")
    report = analyze(raw.x, raw.y, feature_names=raw.feature_names, notes=raw.notes)
    warnings = {c["column"]: c["warning"] for c in report.columns}
    assert warnings == {
        "sparse": "mostly missing (75%)",
        "const": "constant (no information)",
        "n": "",
        "row": "unique per row (an identifier): left out of the features",  # 10, 20, ... 400
    }


def test_imputation_and_one_hot_are_learned_from_the_training_rows_only(raw):
    train, _, test = split_indices(raw, **SPLIT)
    t = fit_transform(raw, raw.x[train])
    bill, mass, island, comment = t.columns
    assert bill["median"] == np.nanmedian(raw.x[train, 0])
    assert bill["median"] != np.nanmedian(raw.x[:, 0])  # the other splits play no part
    assert bill["indicator"] and mass["indicator"]
    assert island["categories"] == [MISSING_CATEGORY, "Biscoe", "Dream", "Torgersen"]
    assert t.output_shape == (2 + 2 + 4 + 4,)
    fitted = table_transformer(t).fit(t.frame(raw.x[train]))  # scikit-learn's own transform
    np.testing.assert_allclose(t.apply(raw.x), fitted.transform(t.frame(raw.x)), atol=1e-5)
    assert not np.isnan(t.apply(raw.x[test])).any()


def test_an_unseen_category_is_all_zeros_at_serving_time(raw, tmp_path, messy):
    version = prepare(f"csv:{messy}", run_dir=tmp_path, target="species", **SPLIT)
    t = version.transform
    rows = [
        {"bill, mm": 44.0, "mass_g": 3600, "island": "Atlantis", "comment": "seen, 1 times"},
        {"bill, mm": None, "island": "Dream"},  # missing values and columns
    ]
    served = serve_batch(version, rows)
    names = t.feature_names
    island = [j for j, n in enumerate(names) if n.startswith("island=")]
    assert served.shape == (2, len(names)) and served[0, island].tolist() == [0, 0, 0, 0]
    assert served[1, names.index("bill, mm missing")] == 1.0
    assert served[1, names.index("island=Dream")] == 1.0
    assert np.array_equal(serve_batch(version, pd.DataFrame(rows)), served)
    with pytest.raises(DataError, match=r"column 'mass_g' expects numbers, got \['heavy'\]"):
        serve_batch(version, [{"mass_g": "heavy"}])
    with pytest.raises(DataError, match="must hold numbers and category codes, as a version"):
        t.apply(np.array([["44", "3600", "Dream", "seen, 1 times"]], dtype=object))


def test_01_03_and_the_served_model_agree_on_the_feature_count(raw, tmp_path, messy):
    from workbench.upstream import card_for

    card = card_for(f"csv:{messy}", split=SPLIT, target="species")
    version = prepare(f"csv:{messy}", run_dir=tmp_path, **SPLIT, **card.source_kwargs)
    shape = input_shape(raw, **SPLIT)
    assert card.input_shape == shape == version.transform.output_shape == (12,)
    x_test, _ = version.split("test")
    assert serve_batch(version, x_test).shape[1:] == shape


def test_the_card_records_target_and_source_options(messy):
    from workbench.upstream import card_for

    card = card_for(f"csv:{messy}", split=SPLIT, target="species", source_options='{sep: ","}')
    assert (card.target, card.source_options) == ("species", {"sep": ","})
    assert card.source_kwargs == {"sep": ",", "target": "species"}
    assert ProblemCard.from_dict(card.to_dict()) == card
    assert "read with:   {'sep': ',', 'target': 'species'}" in repr(card)
    with pytest.raises(SpecError, match="give the target column as target="):
        check_source_options({"target": "species"})
    with pytest.raises(SpecError, match="expected a dict of option names to values"):
        check_source_options(["sep", ";"])
    with pytest.raises(SpecError, match="cannot read"):
        check_source_options("{sep: [")


def test_a_first_row_of_data_is_not_taken_for_a_header(tmp_path):
    path = tmp_path / "autompg.csv"  # as mlxtend ships it: no header, car names as text
    rows = [
        f"{4 + i % 3 * 2},{100 + i * i % 97}.0,{2000 + i % 11 * 37},car {i % 13},{20 + i % 9}.5"
        for i in range(40)
    ]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"the first row \['4', '100.0', .* looks like data"):
        load_source(f"csv:{path}", target="4")
    raw = load_source(f"csv:{path}", header=False, target="column 5", ignore=["column 4"])
    assert raw.feature_names == ("column 1", "column 2", "column 3") and raw.class_names == ()
    assert raw.notes["ignored_columns"] == ["column 4"] and len(raw.y) == 40
    report = analyze(raw.x, raw.y, feature_names=raw.feature_names, notes=raw.notes)
    assert "columns left out as asked (ignore=): ['column 4']" in report.warnings
    with pytest.raises(DataError, match=r"ignore names \['name'\], which the file does not have"):
        load_source(f"csv:{path}", header=False, target="column 5", ignore=["name"])
    with pytest.raises(DataError, match="the target 'column 5' cannot be ignored"):
        load_source(f"csv:{path}", header=False, target="column 5", ignore="column 5")


def test_whole_number_targets_are_classes_or_quantities(tmp_path):
    from workbench.data import targets

    path = tmp_path / "n.csv"
    path.write_text("a,few,many\n" + "".join(f"{i % 7}.5,{i % 3},{i * 11}\n" for i in range(30)))
    few = load_source(f"csv:{path}", target="few")
    assert few.class_names == ("0", "1", "2")
    assert targets(few, "regression")[0][:4].tolist() == [0.0, 1.0, 2.0, 0.0]  # as numbers
    assert targets(few, "multiclass")[0][:4].tolist() == [0, 1, 2, 0]
    many = load_source(f"csv:{path}", target="many")  # 30 distinct whole numbers: a quantity
    assert many.class_names == () and many.y.dtype == np.float32


def test_free_text_columns_get_a_high_cardinality_warning(tmp_path):
    path = tmp_path / "t.csv"
    names = [f"name {i % 25}" for i in range(40)]
    path.write_text("target,name\n" + "".join(f"{i % 2},{n}\n" for i, n in enumerate(names)))
    raw = load_source(f"csv:{path}")
    (row,) = analyze(raw.x, raw.y, feature_names=raw.feature_names, notes=raw.notes).columns
    assert row["warning"].startswith("25 categories in 40 rows: one-hot adds a column per")
