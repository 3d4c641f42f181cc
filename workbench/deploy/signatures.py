"""What a served version takes and gives, as clients of both protocols see it: one
`TensorSpec` per input and output (name, dtype, shape with -1 for any size), read from the
export's export.json, and the conversion of a request's JSON values into arrays of the model's
dtype with messages that say what was expected.

Most versions have one call (its inputs and outputs). A version can declare more in export.json
"signatures" (a pipeline of `workbench.amalgam.pipeline` does): named subsets of the call's
outputs ({"classes": {"outputs": ["probabilities"]}}) and functions with inputs of their own
({"pair": {"inputs": [...], "outputs": [...]}}), each run by its own batcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.deploy.batching import ServiceError
from workbench.errors import ServingError

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
DEFAULT_SIGNATURE = "serving_default"  # TF Serving's name of the call that gives every output
MAIN = ""  # the function name of a version's main call (a declared function has its own name)


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


def _input_spec(block: dict[str, Any]) -> TensorSpec:
    """One input of export.json ("input" block of an image or tensor model, or one entry of a
    declared function's "inputs"); images refuse NaN and infinity."""
    image = block.get("kind") == "image"
    return TensorSpec(
        block["name"],
        block["dtype"],
        tuple(block["shape"]),
        nonfinite="reject" if image else "allow",
        range=tuple(block["range"]) if block.get("range") else None,
        description=block.get("description", ""),
    )


def _output_specs(outputs: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(o["name"], o["dtype"], tuple(o["shape"])) for o in outputs)


@dataclass(frozen=True)
class SignatureDef:
    """One entry of TF Serving's signature_def map: the function it runs (MAIN or a declared
    function's name), its inputs and the outputs it returns (some of the function's)."""

    function: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Signature:
    """A version's inputs and outputs, as export.json describes them: the main call's, plus
    any declared `subsets` (signature name -> output names of the main call) and `functions`
    (signature name -> a Signature with inputs of its own)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    subsets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    functions: Mapping[str, Signature] = field(default_factory=dict)

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
            inputs = (_input_spec(block),)
        outputs = _output_specs(export["outputs"])
        subsets, functions = {}, {}
        for name, entry in export.get("signatures", {}).items():
            if "inputs" in entry:
                ins = tuple(_input_spec(b) for b in entry["inputs"])
                functions[name] = cls(ins, _output_specs(entry["outputs"]))
            else:
                subsets[name] = tuple(entry["outputs"])
        unknown = {n for names in subsets.values() for n in names} - {t.name for t in outputs}
        clash = {DEFAULT_SIGNATURE, MAIN} & (set(subsets) | set(functions))
        if unknown or clash:
            raise ServingError(
                f"export.json 'signatures' name outputs {sorted(unknown)} that 'outputs' does "
                f"not list, or use the reserved names {sorted(clash)}; expected subsets of "
                f"{[t.name for t in outputs]} under new names."
            )
        return cls(inputs, outputs, subsets, functions)

    def difference(self, other: Signature) -> str:
        """What differs from `other` ("" when clients see the same signatures)."""
        parts = []
        for what, mine, theirs in (
            ("inputs", self.inputs, other.inputs),
            ("outputs", self.outputs, other.outputs),
        ):
            a, b = [t.key() for t in mine], [t.key() for t in theirs]
            if a != b:
                parts.append(f"{what} {_keys(b)} instead of {_keys(a)}")
        if dict(self.subsets) != dict(other.subsets):
            parts.append(f"signatures {dict(other.subsets)} instead of {dict(self.subsets)}")
        for name in sorted(set(self.functions) | set(other.functions)):
            mine, theirs = self.functions.get(name), other.functions.get(name)
            if mine is None or theirs is None:
                parts.append(f"signature {name!r} {'added' if mine is None else 'removed'}")
            elif diff := mine.difference(theirs):
                parts.append(f"signature {name!r}: {diff}")
        return "; ".join(parts)

    def defs(self) -> dict[str, SignatureDef]:
        """TF Serving's signature_def map: serving_default gives every output of the main
        call; each declared subset (or, with none declared, each of several outputs) is a
        signature of it, and each declared function is one with its own inputs."""
        found = {DEFAULT_SIGNATURE: SignatureDef(MAIN, self.inputs, self.outputs)}
        by_name = {t.name: t for t in self.outputs}
        if self.subsets:
            for name, names in self.subsets.items():
                found[name] = SignatureDef(MAIN, self.inputs, tuple(by_name[n] for n in names))
        elif len(self.outputs) > 1:
            found.update({t.name: SignatureDef(MAIN, self.inputs, (t,)) for t in self.outputs})
        for name, fn in self.functions.items():
            found[name] = SignatureDef(name, fn.inputs, fn.outputs)
        return found

    def function(self, name: str) -> Signature:
        """The inputs and outputs of one function (MAIN: the main call)."""
        return Signature(self.inputs, self.outputs) if name == MAIN else self.functions[name]

    def function_for(self, names: set[str]) -> str | None:
        """The function whose inputs are exactly `names` (how an Open Inference Protocol
        client, which has no signatures, picks one), or None."""
        for name in (MAIN, *self.functions):
            if set(self.function(name).input_names) == names:
                return name
        return None

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def _keys(keys: list[tuple[str, str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{n} {d} {list(s)}" for n, d, s in keys)
