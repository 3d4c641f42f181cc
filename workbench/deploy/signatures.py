"""What a served version takes and gives, as clients of both protocols see it: one
`TensorSpec` per input and output (name, dtype, shape with -1 for any size), read from the
export's export.json, and the conversion of a request's JSON values into arrays of the model's
dtype with messages that say what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.deploy.batching import ServiceError

TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "bool": "DT_BOOL",
    "string": "DT_STRING",
}
V2_DTYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "bool": "BOOL",
    "string": "BYTES",
}


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (a message must not echo a whole body)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as a client sees it: name, dtype, shape (-1: any size; rows first),
    and for inputs what the model can take: `nonfinite` "reject" (images), "nan" (NaN marks
    a missing table value) or "allow"; `range` of raw values, with its description."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nonfinite: str = "allow"
    range: tuple[float, float] | None = None
    description: str = ""

    def key(self) -> tuple[str, str, tuple[int, ...]]:
        return self.name, self.dtype, self.shape

    def convert(self, value: Any, *, what: str) -> np.ndarray:
        """`value` (nested lists from JSON, rows first) as this input's array, or a 400 that
        says what was expected."""
        arr = _strings(value, what) if self.dtype == "string" else _numbers(value, self, what)
        if arr.ndim != len(self.shape) or any(
            want not in (-1, got) for want, got in zip(self.shape, arr.shape, strict=False)
        ):
            raise _bad(
                f"{what} has shape {list(arr.shape)}; the model takes {list(self.shape)} "
                f"(-1: any size), i.e. rows of shape {list(self.shape[1:])}."
            )
        if arr.shape[0] == 0:
            raise _bad(f"{what} has no rows; send at least one.")
        if arr.dtype.kind == "f":
            self._check_values(arr, what)
        return arr

    def _check_values(self, arr: np.ndarray, what: str) -> None:
        finite = np.isfinite(arr)
        if self.nonfinite != "allow" and not finite.all():
            nan = np.isnan(arr)
            bad = ~finite if self.nonfinite == "reject" else ~finite & ~nan
            if bad.any():
                kind = "NaN or infinite" if self.nonfinite == "reject" else "infinite"
                first = [int(i) for i in np.argwhere(bad)[0]]
                note = "; NaN marks a missing value" if self.nonfinite == "nan" else ""
                raise _bad(
                    f"{what} holds {int(bad.sum())} {kind} value(s) (first at index {first}); "
                    f"the model takes {self.description or 'finite numbers'}{note}."
                )
        if self.range is not None and finite.any():
            lo, hi = float(arr[finite].min()), float(arr[finite].max())
            if lo < self.range[0] or hi > self.range[1]:
                raise _bad(
                    f"{what} holds values outside [{self.range[0]:g}, {self.range[1]:g}] (min "
                    f"{lo:g}, max {hi:g}); the model takes {self.description or 'that range'}."
                )


def _bad(message: str) -> ServiceError:
    return ServiceError(400, message)


def _numbers(value: Any, spec: TensorSpec, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise _bad(
            f"{what} is a ragged nested list (rows of different lengths); every row must have "
            f"shape {list(spec.shape[1:])}."
        ) from None
    integer = np.dtype(spec.dtype).kind in "iu"
    if arr.dtype.kind not in ("iu" if integer else "fiu"):
        found = {
            "b": "booleans",
            "U": "strings",
            "f": "non-integer numbers",
        }.get(arr.dtype.kind, "nulls, objects or numbers out of range")
        raise _bad(
            f"{what} must hold {'integers' if integer else 'numbers'} ({spec.dtype}); it holds "
            f"{found}, e.g. {short_repr(_example(arr, _is_integer if integer else _is_number))}."
        )
    with np.errstate(over="ignore"):
        return arr.astype(spec.dtype, copy=False)


def _example(arr: np.ndarray, fits) -> Any:
    """The first element of `arr` that `fits` refuses, as the client sent it."""
    for v in arr.ravel()[:10_000]:
        v = v.item() if isinstance(v, np.generic) else v
        if not fits(v):
            return v
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strings(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=object)
    if not all(isinstance(v, str) for v in arr.ravel()):
        example = _example(arr, lambda v: isinstance(v, str))
        raise _bad(f"{what} must hold strings ('' where missing); it holds {short_repr(example)}.")
    # Whitespace around text is stripped as the CSV reader and Transform.apply strip it (the
    # exported model cannot: no Keras layer strips strings), so " Adelie" is "Adelie" here too.
    return np.vectorize(str.strip, otypes=[object])(arr) if arr.size else arr


@dataclass(frozen=True)
class Signature:
    """A version's inputs and outputs, as export.json describes them."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_export(cls, export: dict[str, Any]) -> Signature:
        block = export["input"]
        if block.get("kind") == "tabular":
            inputs = tuple(
                TensorSpec(
                    c["name"],
                    c["dtype"],
                    tuple(c.get("shape", [-1])),
                    nonfinite="nan",
                    description=f"column {c.get('column', c['name'])!r} as the table holds it",
                )
                for c in block["columns"]
            )
        else:
            image = block.get("kind") == "image"
            inputs = (
                TensorSpec(
                    block["name"],
                    block["dtype"],
                    tuple(block["shape"]),
                    nonfinite="reject" if image else "allow",
                    range=tuple(block["range"]) if block.get("range") else None,
                    description=block.get("description", ""),
                ),
            )
        outputs = tuple(
            TensorSpec(o["name"], o["dtype"], tuple(o["shape"])) for o in export["outputs"]
        )
        return cls(inputs, outputs)

    def difference(self, other: Signature) -> str:
        """What differs from `other` ("" when clients see the same inputs and outputs)."""
        parts = []
        for what, mine, theirs in (
            ("inputs", self.inputs, other.inputs),
            ("outputs", self.outputs, other.outputs),
        ):
            a, b = [t.key() for t in mine], [t.key() for t in theirs]
            if a != b:
                parts.append(f"{what} {_keys(b)} instead of {_keys(a)}")
        return "; ".join(parts)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def _keys(keys: list[tuple[str, str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{n} {d} {list(s)}" for n, d, s in keys)
