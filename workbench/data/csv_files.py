"""Extraction from a CSV file: pandas reads it, each column gets a type, the target is named.

`pandas.read_csv` turns the usual missing-value markers (empty, `NA`, `N/A`, `NaN`, `null`, ...)
into missing values and handles delimiters and quoting. Each feature column is then typed:
**numeric**; **mixed** (numbers except a few other strings, which are read as missing and
reported with their rows); **categorical** (text, stored as codes into its sorted categories,
as a pandas `Categorical` does); or **identifier** (unique per row, which cannot generalise:
left out of the features and reported). Rows whose target is missing are dropped and counted.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data.sources import display_source
from workbench.errors import DataError
from workbench.params import check_bool, check_str

MIXED_MAX_SHARE = 0.1  # a text column whose other cells are all numbers, these at most 10 %
MAX_CLASSES = 20  # a whole-number target with more distinct values is a quantity
IDENTIFIER_MIN_ROWS = 10  # a column unique per row is an identifier only in tables this long
SHOWN = 5  # offending values (and rows per value) named in notes and messages
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")  # "2,5": a number in many European files


def read_table(
    source: str,
    path: Path,
    *,
    target: str | None,
    sep: str | None,
    na_values: str | list[str] | None,
    decimal: str = ".",
    header: bool | None = None,
    ignore: list[str] | None = None,
) -> dict[str, Any]:
    """The table at `path` as arrays and notes: {"x", "y", "feature_names", "categories",
    "class_names", "notes"}. `y` holds class codes for a text target or one of at most
    MAX_CLASSES whole numbers (class names "3", "4", ...; regression reads them as numbers
    again), else float values. `header=None` refuses a first row that looks like data."""
    import pandas as pd

    owner = f"Source {display_source(source)!r}"
    decimal = check_str("decimal", decimal, error=DataError, owner=owner)
    if header is not None:
        header = check_bool("header", header, error=DataError, owner=owner)
    frame = _read(owner, path, sep, na_values, decimal, header is not False)
    if header is False:  # named as a spreadsheet counts them
        frame.columns = [f"column {j + 1}" for j in range(len(frame.columns))]
    columns = [str(c).strip() for c in frame.columns]
    if header is None and sum(map(is_number_text, columns)) * 2 >= len(columns):
        raise DataError(
            f"{owner}: the first row {columns[:6]}{'...' if len(columns) > 6 else ''} is mostly "
            "numbers: it looks like data, not a header row. Pass header=False if it is data "
            "(the columns are then 'column 1', 'column 2', ...), or header=True if it really "
            "names the columns."
        )
    frame.columns = columns
    if target is None:
        if "target" not in columns:
            raise DataError(
                f"{owner}: which column is the target? The file has columns {columns} and "
                "none is named 'target'. Name it: notebook 01 takes -p target COLUMN (in "
                "Python, load_source(source, target='COLUMN'))."
            )
        target = "target"
    target = check_str("target", target, error=DataError, owner=owner)
    if target not in columns:
        raise DataError(
            f"{owner}: no target column {target!r} in the file; its columns are {columns}. "
            "Pass target='<column>'."
        )
    ignore = _check_ignore(owner, ignore, columns, target)
    kinds = {name: _column(frame[name], pd) for name in columns if name not in ignore}
    for name, (kind, values, _) in kinds.items():
        present = [v for v in values if v is not None] if kind == "categorical" else []
        if present and decimal == "." and all(_DECIMAL_COMMA.fullmatch(v) for v in present):
            raise DataError(
                f"{owner}: column {name!r} holds numbers written with a decimal comma (e.g. "
                f"{present[0]!r}), which would be read as text categories. Pass decimal=','."
            )
    y_kind, y_values, y_offending = kinds[target]
    if y_offending:
        raise DataError(
            f"{owner}: target column {target!r} holds numbers except {_shown(y_offending)}. "
            f"If these mark missing labels, pass na_values={sorted(y_offending)} (those rows "
            "are then dropped and counted); otherwise fix the file."
        )
    keep = ~_missing(y_values)
    n_read = len(frame)
    dropped = np.flatnonzero(~keep)
    if not keep.any():
        raise DataError(f"{owner}: every row of the file misses its target {target!r}.")
    notes: dict[str, Any] = {
        "rows_read": n_read,
        "target": target,
        "dropped_rows": {"missing target": len(dropped), "rows": (dropped[:SHOWN] + 1).tolist()},
        "columns": {},
        "identifiers": [],
        "ignored_columns": ignore,  # left out as asked
    }
    features, x_columns, categories = [], [], {}
    for name in columns:
        if name == target or name in ignore:
            continue
        kind, values, offending = kinds[name]
        identifier = _is_identifier(kind, values)  # on every row read
        values = values[keep]
        present = values[~_missing(values)]
        distinct = len(set(present.tolist()))
        if identifier:
            notes["identifiers"].append(name)
            kind = "identifier"
        notes["columns"][name] = {
            "type": kind,
            "missing": int(len(values) - len(present)),
            "distinct": distinct,
            **({"offending": _rows(offending, keep)} if offending else {}),
        }
        if kind == "identifier":
            continue
        features.append(name)
        if kind == "categorical":
            cats = sorted(set(present.tolist()))
            codes = {c: i for i, c in enumerate(cats)}
            x_columns.append(np.array([codes.get(v, np.nan) for v in values], np.float64))
            categories[name] = cats
        else:
            x_columns.append(values.astype(np.float64))
    y_values = y_values[keep]
    if y_kind == "categorical":  # text labels
        class_names = tuple(sorted(set(y_values.tolist())))
        y = np.searchsorted(np.array(class_names, dtype=object), y_values).astype(np.int64)
    elif np.all(y_values == np.round(y_values)) and len(np.unique(y_values)) <= MAX_CLASSES:
        uniq = np.unique(y_values)
        y = np.searchsorted(uniq, y_values).astype(np.int64)
        class_names = tuple(str(int(v)) for v in uniq)
    else:  # real-valued target: regression
        y, class_names = y_values.astype(np.float32), ()
    x = np.stack(x_columns, axis=1) if x_columns else np.empty((int(keep.sum()), 0))
    if not features:
        raise DataError(
            f"{owner}: no feature column left in the file besides the target {target!r} "
            f"(identifiers left out: {notes['identifiers']}); expected at least one."
        )
    return {
        "x": x,  # (N, F) float64: numbers, category codes, NaN where missing
        "y": y,
        "feature_names": tuple(features),
        "categories": categories,
        "class_names": class_names,
        "notes": notes,
    }


def _read(
    owner: str,
    path: Path,
    sep: str | None,
    na_values: str | list[str] | None,
    decimal: str,
    header: bool,
) -> Any:
    """pandas' reading, with its errors said the workbench's way, and short rows refused."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{owner}: file {str(path)!r} does not exist; expected a CSV file.")
    if sep is not None:
        sep = check_str("sep", sep, error=DataError, owner=owner)
    if na_values is not None and not (
        isinstance(na_values, str)
        or (isinstance(na_values, list | tuple) and all(isinstance(v, str) for v in na_values))
    ):
        raise DataError(
            f"{owner}: na_values must be a string or a list of strings, got {na_values!r}. "
            "Pass e.g. na_values=['?', '-']."
        )
    if sep is not None and len(sep) == 1:
        _check_field_counts(owner, path, sep)  # before pandas, which pads or guesses an index
    options = {"sep": sep, "engine": "python"} if sep is None else {"sep": sep}
    try:
        frame = pd.read_csv(
            path,
            na_values=na_values,
            decimal=decimal,
            header=0 if header else None,
            skipinitialspace=True,
            encoding="utf-8",
            **options,
        )
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{owner}: the file is empty; expected a header row.") from e
    except pd.errors.ParserError as e:
        raise DataError(
            f"{owner}: cannot parse the file as CSV ({str(e).strip()}). Check the delimiter (pass "
            "sep=';' or sep='\\t') and the quoting of fields that hold the delimiter."
        ) from e
    except UnicodeDecodeError as e:
        raise DataError(f"{owner}: the file is not UTF-8 text ({e}); save it as UTF-8.") from e
    if frame.empty:
        raise DataError(
            f"{owner}: the file has a header and no data rows; expected at least one row."
        )
    return frame


def _check_field_counts(owner: str, path: Path, sep: str) -> None:
    """Every row has the header's number of fields: pandas pads a short row with missing
    values, and takes the first column as an index when every row has one field more."""
    expected = None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f, delimiter=sep, skipinitialspace=True)
            for line, row in enumerate(rows, 1):
                expected = len(row) if expected is None and row else expected
                if row and len(row) != expected:
                    raise DataError(
                        f"{owner}: line {line} of the file has {len(row)} fields; expected "
                        f"{expected} like the header. Fix the row (a missing delimiter or quote?)."
                    )
    except (UnicodeDecodeError, csv.Error):
        return  # pandas reports these in its own words below


def _column(series: Any, pd: Any) -> tuple[str, np.ndarray, dict[str, list[int]]]:
    """(type, values, offending): numbers as float64 with NaN, text as str with None; a text
    column that is numbers except a few strings is "mixed": those cells become NaN."""
    types = pd.api.types
    if types.is_bool_dtype(series) or types.is_numeric_dtype(series):
        return "numeric", series.to_numpy(np.float64, na_value=np.nan), {}
    text = series.astype("string").str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    present = text.notna()
    bad = present & numbers.isna()
    n_bad, n_present = int(bad.sum()), int(present.sum())
    if n_present > n_bad and n_bad <= MIXED_MAX_SHARE * n_present:
        offending: dict[str, list[int]] = {}
        for row, value in zip(np.flatnonzero(bad.to_numpy()), text[bad].tolist(), strict=True):
            offending.setdefault(value, []).append(int(row))
        kind = "mixed" if offending else "numeric"
        return kind, numbers.to_numpy(np.float64, na_value=np.nan), offending
    return "categorical", text.to_numpy(object, na_value=None), {}


def _check_ignore(owner: str, ignore: Any, columns: list[str], target: str) -> list[str]:
    """`ignore` as a list of column names of the file, the target not among them."""
    if ignore is None:
        return []
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, list | tuple) or not all(isinstance(c, str) for c in ignore):
        raise DataError(
            f"{owner}: ignore must be a list of column names, got {ignore!r}; e.g. ignore=['name']."
        )
    unknown = [c for c in ignore if c not in columns]
    if unknown:
        raise DataError(
            f"{owner}: ignore names {unknown}, which the file does not have; its columns are "
            f"{columns}."
        )
    if target in ignore:
        raise DataError(f"{owner}: the target {target!r} cannot be ignored.")
    return list(ignore)


def is_number_text(text: str) -> bool:
    """Whether `text` reads as a number ("3", "2.5", "1e3", "nan")."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _missing(values: np.ndarray) -> np.ndarray:
    """Missing cells: NaN in a numeric column, None in a text one."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.array([v is None for v in values], bool)


def _is_identifier(kind: str, values: np.ndarray) -> bool:
    """Unique per row of the file: a text column with no repeats and no gaps, or distinct whole
    numbers that count the rows (one constant step once sorted, such as 1, 2, 3 or 1000, 1010)."""
    present = values[~_missing(values)]
    if len(values) < IDENTIFIER_MIN_ROWS or len(present) != len(values):
        return False
    if len(set(present.tolist())) != len(values):
        return False
    if kind == "categorical":
        return True
    if not np.all(present == np.round(present)):
        return False
    return bool(np.unique(np.diff(np.sort(present))).size == 1)


def _rows(offending: dict[str, list[int]], keep: np.ndarray) -> dict[str, list[int]]:
    """Offending values -> their first data rows (1 = the first row under the header), among
    the rows kept."""
    kept = set(np.flatnonzero(keep).tolist())
    out = {v: [r + 1 for r in rows if r in kept][:SHOWN] for v, rows in offending.items()}
    return {v: rows for v, rows in sorted(out.items())[:SHOWN] if rows}


def _shown(offending: dict[str, list[int]]) -> str:
    """E.g. "'?' in data rows [3, 9] and 'n/a' in data rows [12]"."""
    return " and ".join(f"{v!r} in data rows {rows}" for v, rows in offending.items())
