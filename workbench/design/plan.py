"""From spec and card to a layer plan, in pure Python: shapes, parameters and multiply-adds.

`summarize` walks the spec the way `build` will, layer by layer, propagating shapes without Keras.
That one walk validates the spec (a size shrinking below 1 raises a SpecError naming the group),
counts parameters and multiply-adds (MACs) from layer shapes, and lists the exact Keras layers
`build` then instantiates, so the summary and the model cannot disagree.

MACs per example: Conv2D Hout*Wout*Cout*kh*kw*Cin; DepthwiseConv2D Hout*Wout*C*kh*kw;
Dense in*out; BatchNormalization, pooling, activations and additions are counted as 0.
FLOPs = 2 x MACs (one multiply and one add). `layer_cost` spells out both formulas for one layer,
the parameters recomputed from the layer's shapes (see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.design.spec import ModelSpec, check
from workbench.errors import SpecError

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

SECTIONS = ("input", "stem", "learner", "task")
NAMED_OUTPUTS = ("encoding", "embedding", "logits", "probabilities", "outputs")  # reusable tensors


@dataclass(frozen=True)
class LayerRow:
    """One Keras layer of the plan: where it sits, what it outputs and what it costs."""

    section: str  # "input", "stem", "learner" or "task"
    block: str  # the unit it belongs to, e.g. "g1 b2 residual 64" (one box in the diagram)
    name: str  # the Keras layer name, e.g. "learner_g1_b2_conv1"
    kind: str  # the keras.layers class, e.g. "Conv2D"
    output_shape: tuple[int, ...]  # per example (no batch axis)
    params: int  # weights, trainable or not (as model.count_params() counts them)
    macs: int  # multiply-adds per example
    inputs: tuple[str, ...] = ()  # names of the layers feeding it
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # Keras kwargs


@dataclass(frozen=True)
class Summary:
    """Every layer of a spec on a card, with totals per section and overall."""

    name: str  # the spec's name
    rows: tuple[LayerRow, ...]

    @property
    def params(self) -> int:
        """Total parameters."""
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        """Total multiply-adds per example."""
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        """FLOPs per example, counted as 2 x MACs."""
        return 2 * self.macs

    @property
    def totals(self) -> dict[str, dict[str, int]]:
        """`{section: {"params": ..., "macs": ...}}` for stem, learner and task."""
        return {
            s: {
                "params": sum(r.params for r in self.rows if r.section == s),
                "macs": sum(r.macs for r in self.rows if r.section == s),
            }
            for s in SECTIONS[1:]
        }

    def row(self, name: str) -> LayerRow:
        """The row of the layer called `name` (e.g. "logits")."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"No layer {name!r} in {self.name!r}.")

    def __repr__(self) -> str:
        return format_summary(self)


def human(n: float) -> str:
    """9837952 -> '9.84 M', 141098 -> '141.1 k': numbers a student can compare at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}" if n < 100 * size else f"{n / size:.4g} {unit}"
    return str(int(n))


@dataclass(frozen=True)
class LayerCost:
    """One layer's parameters and multiply-adds, each as formula = numbers = value."""

    name: str
    kind: str
    shapes: str  # "8x8x32 -> 8x8x64"
    params: int  # all weights, as layer.count_params() counts them
    trainable: int  # the weights training changes (BatchNormalization: gamma and beta)
    macs: int
    params_formula: str  # "kh·kw·Cin·Cout + Cout = 3·3·32·64 + 64 = 18,496"
    macs_formula: str  # "Hout·Wout·Cout·kh·kw·Cin = 8·8·64·3·3·32 = 1,179,648"

    def __str__(self) -> str:
        return (
            f"{self.name} ({self.kind}, {self.shapes})\n"
            f"  parameters  {self.params_formula}\n"
            f"  MACs        {self.macs_formula}"
        )


def layer_cost(summary: Summary, name: str) -> LayerCost:
    """The parameter and multiply-add formulas of layer `name`, filled in with its shapes.

    Parameters per kind (Cin, Cout channels in and out, kh x kw the kernel):
    Conv2D kh·kw·Cin·Cout + Cout; DepthwiseConv2D kh·kw·C + C; Dense in·out + out (no bias term
    when a BatchNormalization follows: its beta shifts instead); BatchNormalization 4·C, of which
    2·C (gamma, beta) trainable and 2·C (moving mean and variance) not. A Keras SeparableConv2D
    would be kh·kw·Cin + Cin·Cout + Cout; the workbench's separable block keeps its depthwise and
    1x1 pointwise convolutions as two layers, each followed by BatchNormalization (or a bias).
    The parameters are recomputed here from the shapes, independently of the walk.
    """
    row = summary.row(name)
    shape_in = summary.row(row.inputs[0]).output_shape if row.inputs else row.output_shape
    shape_out, c = row.output_shape, row.config
    bias = c.get("use_bias", False)
    if row.kind == "Conv2D":
        k, cin, cout = c["kernel_size"], shape_in[-1], c["filters"]
        params, p_text = _terms("kh·kw·Cin·Cout", (k, k, cin, cout), bias=("Cout", cout, bias))
        macs, m_text = _terms("Hout·Wout·Cout·kh·kw·Cin", (*shape_out[:2], cout, k, k, cin))
    elif row.kind == "DepthwiseConv2D":
        k, ch = c["kernel_size"], shape_in[-1]
        params, p_text = _terms("kh·kw·C", (k, k, ch), bias=("C", ch, bias))
        macs, m_text = _terms("Hout·Wout·C·kh·kw", (*shape_out[:2], ch, k, k))
    elif row.kind == "Dense":
        n, units = shape_in[-1], c["units"]
        params, p_text = _terms("in·out", (n, units), bias=("out", units, bias))
        macs, m_text = _terms("in·out", (n, units))
    elif row.kind == "BatchNormalization":
        ch = shape_out[-1]
        params, p_text = _terms("4·C", (4, ch))
        p_text += f", of which 2·C = {2 * ch:,} trainable (gamma, beta; not the moving statistics)"
        macs, m_text = 0, "0 (not counted: a scale and a shift per value)"
    else:
        params, p_text = 0, "0 (no weights)"
        macs, m_text = 0, "0" if row.kind == "InputLayer" else "0 (no weights to multiply by)"
    trainable = 2 * shape_out[-1] if row.kind == "BatchNormalization" else params
    shapes = " -> ".join("x".join(map(str, s)) for s in (shape_in, shape_out))
    return LayerCost(row.name, row.kind, shapes, params, trainable, macs, p_text, m_text)


def _terms(
    symbols: str, product: tuple[int, ...], *, bias: tuple[str, int, bool] | None = None
) -> tuple[int, str]:
    """A product, plus a bias term if it has one, and how it reads:
    ("in·out", (4, 2), bias=("out", 2, True)) -> (10, "in·out + out = 4·2 + 2 = 10")."""
    value, numbers = math.prod(product), "·".join(map(str, product))
    note = ""
    if bias is not None:
        symbol, size, used = bias
        if used:
            symbols, numbers, value = f"{symbols} + {symbol}", f"{numbers} + {size}", value + size
        else:
            note = " (no bias: the BatchNormalization after it shifts instead)"
    return value, f"{symbols} = {numbers} = {value:,}{note}"


def format_summary(summary: Summary, *, layers: bool = True) -> str:
    """The per-layer table (if `layers`) followed by the totals per section and overall."""
    out = [f"Model {summary.name!r}: parameters and multiply-adds (MACs) per example"]
    if layers:
        out.append(
            f"{'section':8} {'layer':28} {'kind':22} {'output':>14} {'params':>9} {'MACs':>12}"
        )
        for r in summary.rows:
            shape = "x".join(map(str, r.output_shape))
            out.append(
                f"{r.section:8} {r.name:28} {r.kind:22} {shape:>14} {r.params:>9,} {r.macs:>12,}"
            )
    out.append(f"{'section':8} {'params':>12} {'MACs':>14}")
    for section, t in summary.totals.items():
        out.append(f"{section:8} {t['params']:>12,} {t['macs']:>14,}")
    out.append(
        f"{'total':8} {summary.params:>12,} {summary.macs:>14,}   = {human(summary.macs)} MACs "
        f"= {human(summary.flops)} FLOPs per example (FLOPs = 2 x MACs)"
    )
    return "\n".join(out)


# ---- the walk ----------------------------------------------------------------------------------


class _Plan:
    """Accumulates rows while tracking the current tensor's name and shape."""

    def __init__(self, spec: ModelSpec, input_shape: tuple[int, ...]) -> None:
        self.spec = spec
        self.rows: list[LayerRow] = []
        self.section, self.block, self.where = "input", "input", "Input"
        self.top, self.shape = "input", input_shape
        self.add("input", "InputLayer", input_shape, inputs=())

    def add(self, name, kind, shape, *, params=0, macs=0, inputs=None, **config) -> str:
        inputs = (self.top,) if inputs is None else inputs
        self.rows.append(
            LayerRow(self.section, self.block, name, kind, shape, params, macs, inputs, config)
        )
        self.top, self.shape = name, shape
        return name

    def at(self, section: str, block: str, where: str) -> None:
        """Start a new unit: rows go to `section`/`block`, errors name `where`."""
        self.section, self.block, self.where = section, block, where

    # -- layers (each computes its output shape, params and MACs) --

    def _spatial(self, kernel: int, strides: int) -> tuple[int, int]:
        h, w, _ = self.shape
        pad = self.spec.padding
        ho, wo = _out(h, kernel, strides, pad), _out(w, kernel, strides, pad)
        if ho < 1 or wo < 1:
            raise SpecError(
                f"{self.where}: a {kernel}x{kernel} {pad!r} convolution would shrink {h}x{w} to "
                f"{max(ho, 0)}x{max(wo, 0)}; use padding='same' or a larger input."
            )
        return ho, wo

    def conv(self, name: str, filters: int, *, kernel: int, strides: int = 1, relu=True) -> str:
        """Conv2D, then BN (+ ReLU) with batch_norm; without it the ReLU sits in the Conv2D."""
        (ho, wo), c, bn = self._spatial(kernel, strides), self.shape[-1], self.spec.batch_norm
        self.add(
            name,
            "Conv2D",
            (ho, wo, filters),
            params=kernel * kernel * c * filters + (0 if bn else filters),
            macs=ho * wo * filters * kernel * kernel * c,
            filters=filters,
            kernel_size=kernel,
            strides=strides,
            padding=self.spec.padding,
            use_bias=not bn,  # BN's beta does a bias's job
            activation="relu" if relu and not bn else None,
        )
        return self.bn_relu(name, relu=relu)

    def depthwise(self, name: str, *, kernel: int, strides: int = 1) -> str:
        """DepthwiseConv2D: one kh x kw filter per channel (no mixing), then BN + ReLU."""
        (ho, wo), c, bn = self._spatial(kernel, strides), self.shape[-1], self.spec.batch_norm
        self.add(
            name,
            "DepthwiseConv2D",
            (ho, wo, c),
            params=kernel * kernel * c + (0 if bn else c),
            macs=ho * wo * c * kernel * kernel,
            kernel_size=kernel,
            strides=strides,
            padding=self.spec.padding,
            use_bias=not bn,
            activation=None if bn else "relu",
        )
        return self.bn_relu(name)

    def dense(self, name: str, units: int, *, activation: str | None = None, bias=True) -> str:
        """Dense: every input connected to every unit."""
        (n,) = self.shape
        return self.add(
            name,
            "Dense",
            (units,),
            params=n * units + (units if bias else 0),
            macs=n * units,
            units=units,
            activation=activation,
            use_bias=bias,
        )

    def dense_bn_relu(self, name: str, units: int) -> str:
        """A dense block: Dense, then BN + ReLU with batch_norm, else Dense with ReLU inside."""
        bn = self.spec.batch_norm
        self.dense(name, units, activation=None if bn else "relu", bias=not bn)
        return self.bn_relu(name)

    def bn_relu(self, name: str, *, relu: bool = True) -> str:
        """BatchNormalization (+ ReLU) after layer `name` when the spec uses batch_norm."""
        if self.spec.batch_norm:
            c = self.shape[-1]  # 4 weights per channel: gamma, beta, moving mean and variance
            self.add(
                f"{name}_bn",
                "BatchNormalization",
                self.shape,
                params=4 * c,
                momentum=self.spec.bn_momentum,
            )
            if relu:
                self.add(f"{name}_relu", "Activation", self.shape, activation="relu")
        return self.top

    def pool(self, name: str) -> str:
        """2x2 max pooling: halves height and width (rounding down)."""
        h, w, c = self.shape
        if h < 2 or w < 2:
            raise SpecError(
                f"{self.where}: spatial size would shrink to {h // 2}x{w // 2} after downsampling "
                f"from {h}x{w}; remove a downsampling step or use a larger input."
            )
        return self.add(name, "MaxPooling2D", (h // 2, w // 2, c), pool_size=2)


def _out(size: int, kernel: int, strides: int, padding: str) -> int:
    """Output size of a convolution along one axis (Keras' rule for 'same' and 'valid')."""
    if padding == "same":
        return -(-size // strides)  # ceil(size / strides)
    return (size - kernel) // strides + 1 if size >= kernel else 0


def _check_card(spec: ModelSpec, card: ProblemCard) -> None:
    kind = "conv" if card.modality == "image" else "dense"
    if spec.stem.kind != kind:
        fix = "preset('tabular', card)" if kind == "dense" else "an image preset such as 'compact'"
        raise SpecError(
            f"Stem: a {spec.stem.kind!r} spec does not fit a {card.modality} card with input "
            f"shape {card.input_shape}; expected a {kind!r} stem. Use {fix}."
        )


def _stride_check(plan: _Plan) -> None:
    h, w, _ = plan.shape
    if h < 2 or w < 2:
        raise SpecError(
            f"{plan.where}: cannot downsample from {h}x{w} (a stride-2 step needs at least 2x2); "
            "remove a downsampling step or use a larger input."
        )


def _block(plan: _Plan, prefix: str, block: str, filters: int, strides: int) -> None:
    k = plan.spec.kernel_size
    if block == "conv":
        plan.conv(f"{prefix}_conv", filters, kernel=k, strides=strides)
    elif block == "separable":  # MobileNet: a spatial filter per channel, then a 1x1 mix
        plan.depthwise(f"{prefix}_dw", kernel=k, strides=strides)
        plan.conv(f"{prefix}_pw", filters, kernel=1)
    elif block == "residual":  # two convolutions plus a shortcut, added before the last ReLU
        entry, entry_shape = plan.top, plan.shape
        plan.conv(f"{prefix}_conv1", filters, kernel=k, strides=strides)
        main, main_shape = plan.conv(f"{prefix}_conv2", filters, kernel=k, relu=False), plan.shape
        shortcut = entry
        if strides != 1 or entry_shape[-1] != filters:  # a 1x1 conv projects it to the new shape
            plan.top, plan.shape = entry, entry_shape  # branch off the block's input
            shortcut = plan.conv(f"{prefix}_proj", filters, kernel=1, strides=strides, relu=False)
        plan.add(f"{prefix}_add", "Add", main_shape, inputs=(main, shortcut))
        plan.add(f"{prefix}_relu", "Activation", main_shape, activation="relu")
    else:  # dense
        plan.dense_bn_relu(f"{prefix}_dense", filters)


def summarize(spec: ModelSpec, card: ProblemCard) -> Summary:
    """Plan every layer of `spec` on `card` without Keras; raise SpecError if it cannot be built."""
    check(spec)
    _check_card(spec, card)
    plan = _Plan(spec, tuple(card.input_shape))
    s = spec.stem
    for i, f in enumerate(s.filters, 1):
        stride = s.strides if i == 1 else 1
        if s.kind == "dense":
            plan.at("stem", f"stem dense {i}: {f}", f"Stem (layer {i}, units={f})")
            plan.dense_bn_relu(f"stem_dense{i}", f)
            continue
        label = f"stem conv {i}: {f}, {s.kernel_size}x{s.kernel_size}" + (
            " /2" if stride > 1 else ""
        )
        plan.at("stem", label, f"Stem (conv {i}, filters={f})")
        if stride > 1:
            _stride_check(plan)
        plan.conv(f"stem_conv{i}", f, kernel=s.kernel_size, strides=stride)
    if s.pool:
        plan.at("stem", "stem max pool 2x2", "Stem (pool)")
        plan.pool("stem_pool")

    for gi, g in enumerate(spec.groups, 1):
        where = f"Group {gi} (filters={g.filters})"
        if g.downsample == "pool":
            plan.at("learner", f"g{gi} max pool 2x2", where)
            plan.pool(f"learner_g{gi}_pool")
        for bi in range(1, g.n_blocks + 1):
            strides = 2 if g.downsample == "stride" and bi == 1 else 1
            label = f"g{gi} b{bi}: {g.block} {g.filters}" + (" /2" if strides > 1 else "")
            plan.at("learner", label, where if bi == 1 else f"{where}, block {bi}")
            if strides > 1:
                _stride_check(plan)
            _block(plan, f"learner_g{gi}_b{bi}", g.block, g.filters, strides)

    _task(plan, spec, card)
    return Summary(spec.name, tuple(plan.rows))


def _task(plan: _Plan, spec: ModelSpec, card: ProblemCard) -> None:
    t, head = spec.task, card.head
    if t.pooling == "pool_flatten":
        plan.at("task", "task max pool 2x2", "Task (pooling)")
        plan.pool("task_pool")
    kind = {"avg": "GlobalAveragePooling2D", "none": "Identity"}.get(t.pooling, "Flatten")
    # (h, w, c) -> (c,) by averaging each channel, or -> (h*w*c,) by flattening; (n,) stays
    n = plan.shape[-1] if t.pooling in ("avg", "none") else math.prod(plan.shape)
    plan.at("task", f"encoding: {kind}", "Task (encoding)")
    plan.add("encoding", kind, (n,))
    if t.embedding_units:
        plan.at("task", f"embedding: dense {t.embedding_units} + relu", "Task (embedding)")
        plan.dense("embedding", t.embedding_units, activation="relu")
    if spec.dropout:
        plan.at("task", f"dropout {spec.dropout}", "Task (dropout)")
        plan.add("task_dropout", "Dropout", plan.shape, rate=spec.dropout)
    plan.at("task", f"logits: dense {head.units}", "Task (logits)")
    plan.dense("logits", head.units)
    out = "outputs" if card.task == "regression" else "probabilities"
    plan.at("task", f"{out}: {head.activation}", "Task (head)")
    plan.add(out, "Activation", (head.units,), activation=head.activation)


def validate(spec: ModelSpec, card: ProblemCard) -> ModelSpec:
    """Return `spec` if it can be built for `card`, else raise the SpecError that says why."""
    summarize(spec, card)
    return spec
