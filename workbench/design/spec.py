"""A model described as data: stem -> learner -> task (the book's composable pattern).

A `ModelSpec` says what to build, never how: the stem turns raw input into coarse features,
the learner refines them in groups of blocks, and the task section pools them into an encoding,
an optional embedding, logits and the head's activation (the head comes from the ProblemCard).
Specs are frozen: sweeps and widgets derive new specs with `replace`/`scaled`, so a shared preset
is never changed behind anyone's back.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import params
from workbench.config import set_current
from workbench.errors import SpecError
from workbench.files import atomic_write_json, read_json, sha256_bytes, to_json

BLOCKS = ("conv", "residual", "separable", "dense")  # learner block types
IMAGE_BLOCKS = ("conv", "residual", "separable")  # blocks that work on feature maps
DOWNSAMPLES = (None, "pool", "stride")  # how a group halves the spatial size at its start
POOLINGS = ("avg", "flatten", "pool_flatten", "none")  # feature map -> encoding vector
PADDINGS = ("same", "valid")
STEM_KINDS = ("conv", "dense")
SPEC_FILE = Path("design") / "spec.json"


@dataclass(frozen=True)
class Stem:
    """First layers: coarse features from the raw input (convolutions, or dense for tables)."""

    filters: tuple[int, ...] = (32,)  # one layer per entry: its filters (units when kind="dense")
    kernel_size: int = 3  # kernel height = width of the stem convolutions
    strides: int = 1  # stride of the first convolution; 2 halves the image early (ResNet style)
    pool: bool = False  # a 2x2 max pooling after the stem's convolutions
    kind: str = "conv"  # "conv" for images, "dense" for tabular rows

    def __post_init__(self) -> None:
        filters = (self.filters,) if isinstance(self.filters, int) else tuple(self.filters)
        object.__setattr__(self, "filters", filters)

    def replace(self, **changes: Any) -> Stem:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Group:
    """A learner group: `n_blocks` blocks of one type with the same number of filters."""

    filters: int = 64  # filters of every block in the group (units for dense blocks)
    n_blocks: int = 2  # blocks stacked in the group
    block: str = "conv"  # "conv" (conv-BN-ReLU), "residual", "separable" (MobileNet) or "dense"
    downsample: str | None = None  # at group start: "pool" (2x2 max pool), "stride" or None

    def replace(self, **changes: Any) -> Group:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Task:
    """The task section: encoding -> optional embedding -> logits -> head activation."""

    pooling: str = "avg"  # "avg" global average, "flatten", "pool_flatten" (2x2 max pool, flatten)
    # or "none" for tabular rows (already a vector)
    embedding_units: int = 0  # a Dense+ReLU embedding of this size after the encoding; 0 = none

    def replace(self, **changes: Any) -> Task:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelSpec:
    """What to build: stem, learner groups, task section and options (the head is the card's)."""

    name: str = "custom"  # names the Keras model and the spec's version in the run directory
    stem: Stem = Stem()  # first convolution(s)
    groups: tuple[Group, ...] = (Group(64, 2, "conv", "pool"),)  # the learner, in order
    task: Task = Task()  # pooling, embedding; units and activation come from the ProblemCard
    batch_norm: bool = True  # BatchNormalization after every convolution / dense block
    # BatchNormalization's moving mean/variance (used at inference) keep `momentum` of their old
    # value each step. Keras' default 0.99 needs ~100s of steps: after one epoch of 55 steps,
    # 0.99**55 = 58 % is still the start value (mean 0, variance 1) and test accuracy collapsed
    # to 10 %. With 0.9, 0.9**55 = 0.3 % is left and the model trains fine.
    bn_momentum: float = 0.9
    dropout: float = 0.0  # Dropout rate just before the logits; 0 = no Dropout layer
    padding: str = "same"  # "same" keeps the size; "valid" shrinks it by kernel_size - 1 per conv
    kernel_size: int = 3  # kernel of the learner's convolutions

    def __post_init__(self) -> None:
        if isinstance(self.groups, list | tuple):
            object.__setattr__(self, "groups", tuple(self.groups))

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with `changes` applied (the spec itself never changes)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, width: float) -> ModelSpec:
        """A copy with every stem and learner width multiplied by `width` (sweeps use this)."""
        params.check_number(
            "width",
            width,
            minimum=0,
            exclusive_minimum=True,
            error=SpecError,
            owner="ModelSpec.scaled",
        )

        def w(n: int) -> int:
            return max(1, round(n * width))

        stem = self.stem.replace(filters=tuple(w(f) for f in self.stem.filters))
        groups = tuple(g.replace(filters=w(g.filters)) for g in self.groups)
        return self.replace(stem=stem, groups=groups)

    def with_blocks(self, n_blocks: int) -> ModelSpec:
        """A copy with `n_blocks` blocks in every learner group."""
        return self.replace(groups=tuple(g.replace(n_blocks=n_blocks) for g in self.groups))

    def with_block_type(self, block: str) -> ModelSpec:
        """A copy whose learner groups all use `block` ("conv", "residual", "separable", ...)."""
        return self.replace(groups=tuple(g.replace(block=block) for g in self.groups))

    @property
    def version(self) -> str:
        """`<name>-<12 hex of the spec's JSON hash>`: the version named in the run's index."""
        return f"{self.name}-{sha256_bytes(to_json(self.to_dict()).encode())[:12]}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written to spec.json."""
        d = dataclasses.asdict(self)
        d["stem"]["filters"] = list(self.stem.filters)
        d["groups"] = [dataclasses.asdict(g) for g in self.groups]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Build a spec from plain data, refusing unknown fields (checks values too)."""
        if not isinstance(data, dict):
            raise SpecError(f"ModelSpec: expected a JSON object, got {type(data).__name__}.")
        data = dict(_fields(cls, data, "ModelSpec"))
        if "stem" in data:
            data["stem"] = Stem(**_fields(Stem, data["stem"], "Stem"))
        if "task" in data:
            data["task"] = Task(**_fields(Task, data["task"], "Task"))
        if "groups" in data:
            if not isinstance(data["groups"], list | tuple):
                raise SpecError(f"ModelSpec: groups must be a list, got {data['groups']!r}.")
            data["groups"] = tuple(
                Group(**_fields(Group, g, f"Group {i}")) for i, g in enumerate(data["groups"], 1)
            )
        spec = cls(**data)
        check(spec)
        return spec

    def __repr__(self) -> str:
        s = self.stem
        unit = "units" if s.kind == "dense" else f"filters {s.kernel_size}x{s.kernel_size}"
        stem = f"{len(s.filters)} x {s.kind} {list(s.filters)} {unit}"
        stem += f", stride {s.strides}" if s.strides != 1 else ""
        stem += ", then 2x2 max pool" if s.pool else ""
        lines = [f"ModelSpec {self.name!r}", f"  stem      {stem}"]
        for i, g in enumerate(self.groups, 1):
            down = f", downsample by {g.downsample}" if g.downsample else ""
            head = "  learner  " if i == 1 else "           "
            lines.append(f"{head} group {i}: {g.n_blocks} x {g.block} block, {g.filters}{down}")
        if not self.groups:
            lines.append("  learner   (no groups)")
        t = self.task
        emb = f", embedding {t.embedding_units}" if t.embedding_units else ""
        drop = f", dropout {self.dropout}" if self.dropout else ""
        lines.append(f"  task      pooling {t.pooling!r}{emb}{drop}, head from the problem card")
        bn = f"batch_norm (momentum {self.bn_momentum})" if self.batch_norm else "no batch_norm"
        lines.append(f"  options   {bn}, padding {self.padding!r}, kernel {self.kernel_size}")
        return "\n".join(lines)


def _fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a JSON object, got {data!r}.")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; expected only {names}.")
    return data


def check(spec: ModelSpec) -> ModelSpec:
    """Check the spec's values on their own (no card needed); return it or raise SpecError."""
    if not isinstance(spec.name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", spec.name):
        raise SpecError(
            f"ModelSpec: name must be letters, digits, '_', '-' or '.', got {spec.name!r}."
        )
    s = spec.stem
    params.check_choice("kind", s.kind, STEM_KINDS, error=SpecError, owner="Stem")
    if not s.filters or not all(params.is_integer(f) and f >= 1 for f in s.filters):
        raise SpecError(f"Stem: filters must be one or more positive integers, got {s.filters!r}.")
    for field in ("kernel_size", "strides"):
        _positive(field, getattr(s, field), "Stem")
    if s.kind == "dense" and (s.pool or s.strides != 1):
        raise SpecError(
            "Stem: a 'dense' stem has no pooling or strides (they act on images); "
            f"got pool={s.pool!r}, strides={s.strides!r}."
        )
    if not all(isinstance(g, Group) for g in spec.groups):
        raise SpecError(f"ModelSpec: groups must be a tuple of Group, got {spec.groups!r}.")
    for i, g in enumerate(spec.groups, 1):
        where = f"Group {i} (filters={g.filters!r})"
        _positive("filters", g.filters, where)
        _positive("n_blocks", g.n_blocks, where)
        params.check_choice("block type", g.block, BLOCKS, error=SpecError, owner=where)
        params.check_choice("downsample", g.downsample, DOWNSAMPLES, error=SpecError, owner=where)
        if (g.block == "dense") != (s.kind == "dense"):
            expected = "'dense'" if s.kind == "dense" else f"one of {list(IMAGE_BLOCKS)}"
            raise SpecError(
                f"{where}: block type {g.block!r} does not fit a {s.kind!r} stem; "
                f"expected {expected}."
            )
        if g.block == "dense" and g.downsample:
            raise SpecError(f"{where}: dense blocks cannot downsample; set downsample=None.")
        if g.block == "residual" and spec.padding != "same":
            raise SpecError(
                f"{where}: residual blocks need padding='same' (the shortcut is added to the "
                f"block's output, so both must keep one size); got padding={spec.padding!r}."
            )
    t = spec.task
    params.check_choice("pooling", t.pooling, POOLINGS, error=SpecError, owner="Task")
    if (t.pooling == "none") != (s.kind == "dense"):
        expected = "'none'" if s.kind == "dense" else "'avg', 'flatten' or 'pool_flatten'"
        raise SpecError(
            f"Task: pooling {t.pooling!r} does not fit a {s.kind!r} stem; expected {expected}."
        )
    params.check_int("embedding_units", t.embedding_units, minimum=0, error=SpecError, owner="Task")
    params.check_bool("batch_norm", spec.batch_norm, error=SpecError, owner="ModelSpec")
    params.check_number(
        "bn_momentum",
        spec.bn_momentum,
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
        error=SpecError,
        owner="ModelSpec",
    )
    params.check_number(
        "dropout",
        spec.dropout,
        minimum=0,
        maximum=1,
        exclusive_maximum=True,
        error=SpecError,
        owner="ModelSpec",
    )
    params.check_choice("padding", spec.padding, PADDINGS, error=SpecError, owner="ModelSpec")
    _positive("kernel_size", spec.kernel_size, "ModelSpec")
    return spec


def _positive(name: str, value: Any, owner: str) -> int:
    return params.check_int(name, value, minimum=1, error=SpecError, owner=owner)


def save_spec(spec: ModelSpec, run_dir: str | Path) -> Path:
    """Write the spec to `<run_dir>/design/spec.json` and make it stage 2's current version."""
    check(spec)
    path = atomic_write_json(Path(run_dir) / SPEC_FILE, spec.to_dict())
    set_current(run_dir, "design", spec.version)
    return path


def load_spec(run_dir: str | Path) -> ModelSpec:
    """Read and check the spec of `run_dir` (a SpecError says what is wrong with it)."""
    path = Path(run_dir) / SPEC_FILE
    if not path.is_file():
        raise SpecError(f"No model spec at {path}; run notebook 02_design or save_spec() first.")
    try:
        data = read_json(path)
    except ValueError as e:
        raise SpecError(f"Model spec {path} is not valid JSON ({e}).") from e
    return ModelSpec.from_dict(data)
