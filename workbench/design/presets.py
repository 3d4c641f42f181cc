"""Named starting points, adapted to the card's input (8x8 digits in smoke, 28x28 in full)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from workbench.design.plan import validate
from workbench.design.spec import Group, ModelSpec, Stem, Task
from workbench.errors import SpecError

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

PRESETS: dict[str, ModelSpec] = {
    # The reference CNN: 2xConv32, pool, 2xConv64, pool, Dense128; 9.84 M MACs on 28x28.
    "compact": ModelSpec(
        name="compact",
        stem=Stem(filters=(32, 32)),
        groups=(Group(64, 2, "conv", "pool"),),
        task=Task(pooling="pool_flatten", embedding_units=128),
        batch_norm=False,
        padding="valid",
    ),
    # The 98.2 % recipe: compact + BatchNorm (momentum 0.9), 'same' padding, a third conv block
    # of 128 and global average pooling (141 k parameters).
    "compact_bn": ModelSpec(
        name="compact_bn",
        stem=Stem(filters=(32, 32)),
        groups=(Group(64, 2, "conv", "pool"), Group(128, 1, "conv", "pool")),
        task=Task(pooling="avg"),
    ),
    # A small ResNet: residual blocks in three groups, stride-2 downsampling, BN, GAP.
    "resnet": ModelSpec(
        name="resnet",
        stem=Stem(filters=(16,)),
        groups=(
            Group(16, 2, "residual"),
            Group(32, 2, "residual", "stride"),
            Group(64, 2, "residual", "stride"),
        ),
    ),
    # A small MobileNet: depthwise-separable blocks (fewer MACs per filter), BN, GAP.
    "mobilenet": ModelSpec(
        name="mobilenet",
        stem=Stem(filters=(32,), strides=2),
        groups=(
            Group(64, 1, "separable"),
            Group(128, 2, "separable", "stride"),
            Group(256, 2, "separable", "stride"),
        ),
    ),
    # Tabular rows: dense layers over standardized features.
    "tabular": ModelSpec(
        name="tabular",
        stem=Stem(filters=(64,), kind="dense"),
        groups=(Group(32, 1, "dense"),),
        task=Task(pooling="none"),
        batch_norm=False,
    ),
}


def list_presets(card: ProblemCard | None = None) -> tuple[str, ...]:
    """Preset names; with a card, only those for its modality."""
    if card is None:
        return tuple(PRESETS)
    kind = "conv" if card.modality == "image" else "dense"
    return tuple(n for n, s in PRESETS.items() if s.stem.kind == kind)


def default_preset(card: ProblemCard, preferred: str) -> str:
    """`preferred` (a profile's preset) if it suits the card's modality, else the first preset
    that does: a tabular card in an image profile gets `tabular`."""
    fitting = list_presets(card)
    return preferred if preferred in fitting else fitting[0]


def preset(name: str, card: ProblemCard) -> ModelSpec:
    """The preset `name` adapted to `card`'s input shape (it never downsamples below 1x1).

    On a small input a 'valid' preset switches to 'same' padding, then drops downsampling steps,
    the last first, until every size stays at least 1x1.
    """
    if name not in PRESETS:
        raise SpecError(f"Unknown preset {name!r}; expected one of {list(PRESETS)}.")
    if name not in list_presets(card):
        raise SpecError(
            f"Preset {name!r} does not fit a {card.modality} card (input shape "
            f"{card.input_shape}); expected one of {list(list_presets(card))}."
        )
    error = None
    for candidate in _relaxations(PRESETS[name]):
        try:
            return validate(candidate, card)
        except SpecError as e:
            error = error or e
    raise error


def _relaxations(spec: ModelSpec) -> Iterator[ModelSpec]:
    """The spec, then ever smaller-shrinking variants of it."""
    yield spec
    if spec.padding == "valid":
        spec = spec.replace(padding="same")
        yield spec
    if spec.task.pooling == "pool_flatten":
        spec = spec.replace(task=spec.task.replace(pooling="flatten"))
        yield spec
    groups = list(spec.groups)
    for i in reversed(range(len(groups))):
        if groups[i].downsample:
            groups[i] = groups[i].replace(downsample=None)
            spec = spec.replace(groups=tuple(groups))
            yield spec
    if spec.stem.pool:
        spec = spec.replace(stem=spec.stem.replace(pool=False))
        yield spec
    if spec.stem.strides != 1:
        yield spec.replace(stem=spec.stem.replace(strides=1))
