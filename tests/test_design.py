"""Stage 2: specs validate from shapes, summaries match the built models, heads follow the card."""

from __future__ import annotations

import json
import re

import pytest

from workbench.config import current
from workbench.design import (
    NAMED_OUTPUTS,
    PRESETS,
    Group,
    ModelSpec,
    Stem,
    Task,
    build,
    default_preset,
    keras_code,
    layer_cost,
    list_presets,
    load_spec,
    preset,
    save_spec,
    summarize,
)
from workbench.errors import ParameterError, SpecError
from workbench.identify import ProblemCard

HEADS = [  # task, num_outputs, head units, activation, name of the output layer
    ("binary", 2, 1, "sigmoid", "probabilities"),
    ("multiclass", 10, 10, "softmax", "probabilities"),
    ("multilabel", 4, 4, "sigmoid", "probabilities"),
    ("regression", 1, 1, "linear", "outputs"),
]


def image(hw=(8, 8), task="multiclass", n=10) -> ProblemCard:
    return ProblemCard(modality="image", task=task, num_outputs=n, input_shape=(*hw, 1))


def tabular(task="multiclass", n=3) -> ProblemCard:
    return ProblemCard(modality="tabular", task=task, num_outputs=n, input_shape=(13,))


def card_for(name: str, **kw) -> ProblemCard:
    return tabular(**kw) if name == "tabular" else image(**kw)


@pytest.mark.parametrize("name", list_presets())
@pytest.mark.parametrize("task, n, units, activation, out", HEADS)
def test_build_gives_the_cards_head(name, task, n, units, activation, out):
    card = card_for(name, task=task, n=n)
    model = build(preset(name, card), card)
    logits, head = model.get_layer("logits"), model.get_layer(out)
    assert (logits.units, logits.activation.__name__) == (units, "linear")
    assert head.activation.__name__ == activation
    assert model.layers[-1] is head and tuple(model.output.shape) == (None, units)
    assert model.get_layer("encoding").output.shape[-1] > 0
    for layer in model.layers:  # every layer is named by its section or is a named output
        assert layer.name.split("_")[0] in {"input", "stem", "learner", "task", *NAMED_OUTPUTS}


@pytest.mark.parametrize("hw", [(8, 8), (28, 28)])
@pytest.mark.parametrize("name", list_presets(image()))
def test_summary_matches_the_built_model(name, hw):
    card = image(hw)
    summary = summarize(preset(name, card), card)
    model = build(preset(name, card), card)
    assert summary.params == model.count_params()
    for row in summary.rows:  # layer by layer: same weights, same output shape
        layer = model.get_layer(row.name)
        assert (row.name, row.params) == (row.name, layer.count_params())
        assert (row.name, row.output_shape) == (row.name, tuple(layer.output.shape[1:]))
    assert (
        summary.totals["stem"]["params"]
        + summary.totals["learner"]["params"]
        + summary.totals["task"]["params"]
        == summary.params
    )
    assert summary.flops == 2 * summary.macs


@pytest.mark.parametrize(
    "spec, card",
    [  # the other branches of the parameter formulas: biases without BN, BN on dense, dropout
        (PRESETS["resnet"].replace(batch_norm=False, dropout=0.3), image((9, 7))),
        (PRESETS["mobilenet"].replace(batch_norm=False), image((8, 8))),
        (PRESETS["tabular"].replace(batch_norm=True, dropout=0.2), tabular()),
        (PRESETS["compact_bn"].scaled(0.5).with_block_type("separable"), image((5, 5))),
    ],
)
def test_summary_matches_other_variants(spec, card):
    model = build(spec, card)
    summary = summarize(spec, card)
    assert [r.name for r in summary.rows] == [layer.name for layer in model.layers]
    assert summary.params == model.count_params()


def test_reference_figures_of_design_md():
    card = image((28, 28))
    compact = summarize(preset("compact", card), card)
    assert compact.macs == 9_837_952  # "9.84 M multiply-adds per image"
    assert summarize(preset("compact_bn", card), card).params == 141_098  # "141 k parameters"
    assert "9.84 M MACs = 19.7 M FLOPs" in repr(compact)


def test_macs_of_a_small_conv_by_hand():
    card = image((6, 6), task="binary", n=2)
    spec = ModelSpec(
        stem=Stem(filters=(4,), kernel_size=3), groups=(), batch_norm=False, padding="valid"
    )
    s = summarize(spec, card)
    conv = s.row("stem_conv1")
    # 6x6x1 -> 'valid' 3x3 -> 4x4x4: Hout*Wout*Cout*kh*kw*Cin = 4*4*4*3*3*1
    assert conv.output_shape == (4, 4, 4) and conv.macs == 576
    assert conv.params == 3 * 3 * 1 * 4 + 4
    assert s.row("logits").macs == 4 * 1  # GAP -> 4 features -> 1 unit: in*out
    assert s.macs == 576 + 4


def test_depthwise_separable_macs_by_hand():
    card = image((4, 4))
    spec = ModelSpec(stem=Stem(filters=(8,)), groups=(Group(16, 1, "separable"),))
    s = summarize(spec, card)
    assert s.row("learner_g1_b1_dw").macs == 4 * 4 * 8 * 3 * 3  # Hout*Wout*C*kh*kw
    assert s.row("learner_g1_b1_pw").macs == 4 * 4 * 16 * 1 * 1 * 8


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (3, 5), (5, 3)])
@pytest.mark.parametrize("name", list_presets(image()))
def test_presets_never_shrink_below_one(name, hw):
    card = image(hw)
    rows = summarize(preset(name, card), card).rows
    assert all(min(r.output_shape) >= 1 for r in rows)


def test_presets_adapt_without_mutating_the_shared_spec():
    before = repr(PRESETS["compact"])
    small = preset("compact", image((8, 8)))
    assert small.padding == "same" and PRESETS["compact"].padding == "valid"
    assert preset("compact", image((28, 28))) == PRESETS["compact"]
    wide = small.scaled(2)
    assert wide.stem.filters == (64, 64) and small.stem.filters == (32, 32)
    assert wide.with_blocks(3).groups[0].n_blocks == 3 and wide.groups[0].n_blocks == 2
    assert repr(PRESETS["compact"]) == before


def test_named_outputs_are_reusable():
    card = image()
    spec = preset("compact", card)
    model = build(spec, card)
    for name, size in [
        ("encoding", 256),
        ("embedding", 128),
        ("logits", 10),
        ("probabilities", 10),
    ]:
        assert model.get_layer(name).output.shape[-1] == size
    assert model.name == "compact"


@pytest.mark.parametrize(
    "spec, card, message",
    [
        (
            ModelSpec(groups=(Group(32, 1, "conv", "pool"),) * 3 + (Group(64, 1, "conv", "pool"),)),
            image(),
            "Group 4 (filters=64): spatial size would shrink to 0x0 after downsampling from 1x1; "
            "remove a downsampling step or use a larger input.",
        ),
        (
            ModelSpec(groups=(Group(32, 1, "conv", "stride"),) * 4),
            image(),
            "Group 4 (filters=32): cannot downsample from 1x1",
        ),
        (
            ModelSpec(stem=Stem(filters=(32, 32)), groups=(Group(64, 2),), padding="valid"),
            image((8, 8)),  # 8 -> 6 -> 4 (stem) -> 2 (block 1) -> 0
            "Group 1 (filters=64), block 2: a 3x3 'valid' convolution would shrink 2x2 to 0x0; "
            "use padding='same'",
        ),
        (
            ModelSpec(groups=(Group(0, 1),)),
            image(),
            "Group 1 (filters=0): filters must be a positive integer, got 0.",
        ),
        (
            ModelSpec(groups=(Group(-8, 1),)),
            image(),
            "Group 1 (filters=-8): filters must be a positive integer, got -8.",
        ),
        (ModelSpec(stem=Stem(filters=(0,))), image(), "Stem: filters must be one or more positive"),
        (
            ModelSpec(groups=(Group(64, 2, "resnet"),)),
            image(),
            "Group 1 (filters=64): unknown block type 'resnet'; expected one of "
            "['conv', 'residual', 'separable', 'dense'].",
        ),
        (
            ModelSpec(groups=(Group(64, 0),)),
            image(),
            "Group 1 (filters=64): n_blocks must be a positive integer, got 0.",
        ),
        (
            ModelSpec(groups=(Group(64, 1, "conv", "half"),)),
            image(),
            "unknown downsample 'half'; expected one of [None, 'pool', 'stride']",
        ),
        (
            ModelSpec(groups=(Group(64, 1, "residual"),), padding="valid"),
            image(),
            "Group 1 (filters=64): residual blocks need padding='same'",
        ),
        (
            ModelSpec(),
            tabular(),
            "Stem: a 'conv' spec does not fit a tabular card with input shape (13,); expected a "
            "'dense' stem. Use preset('tabular', card).",
        ),
        (
            PRESETS["tabular"],
            image(),
            "Stem: a 'dense' spec does not fit a image card with input shape (8, 8, 1)",
        ),
        (
            ModelSpec(stem=Stem(kind="dense"), groups=(Group(32, 1, "conv"),), task=Task("none")),
            tabular(),
            "Group 1 (filters=32): block type 'conv' does not fit a 'dense' stem",
        ),
        (ModelSpec(task=Task(pooling="none")), image(), "Task: pooling 'none' does not fit"),
        (ModelSpec(task=Task(embedding_units=-1)), image(), "Task: embedding_units must be 0"),
        (ModelSpec(bn_momentum=1.5), image(), "bn_momentum must be in (0, 1), got 1.5"),
        (ModelSpec(dropout=1.0), image(), "dropout must be in [0, 1), got 1.0"),
        (ModelSpec(padding="full"), image(), "unknown padding 'full'; expected one of"),
        (ModelSpec(name="my model"), image(), "name must be letters, digits"),
    ],
)
def test_bad_specs_say_why(spec, card, message):
    with pytest.raises(SpecError) as err:
        summarize(spec, card)
    assert message in str(err.value)
    with pytest.raises(SpecError):  # build checks before it touches Keras
        build(spec, card)


def test_preset_errors_name_the_alternatives():
    with pytest.raises(SpecError, match=r"Unknown preset 'vgg'; expected one of \['compact'"):
        preset("vgg", image())
    with pytest.raises(
        SpecError, match=r"Preset 'resnet' does not fit a tabular card .* \['tabular'\]"
    ):
        preset("resnet", tabular())
    assert list_presets(tabular()) == ("tabular",)
    assert "tabular" not in list_presets(image())


def test_spec_json_round_trip(tmp_path):
    card = image()
    spec = preset("resnet", card).scaled(0.5).replace(dropout=0.2)
    path = save_spec(spec, tmp_path)
    assert path == tmp_path / "design" / "spec.json"
    assert json.loads(path.read_text())["groups"][1]["downsample"] == "stride"
    loaded = load_spec(tmp_path)
    assert loaded == spec and isinstance(loaded.groups, tuple)
    assert current(tmp_path, "design") == spec.version and spec.version.startswith("resnet-")


def test_load_spec_refuses_bad_files(tmp_path):
    with pytest.raises(SpecError, match="No model spec at"):
        load_spec(tmp_path)
    data = preset("compact", image()).to_dict()
    data["groups"][0]["filterz"] = 3
    (tmp_path / "design").mkdir()
    (tmp_path / "design" / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError, match=r"Group 1: unknown field\(s\) \['filterz'\]"):
        load_spec(tmp_path)
    data["groups"][0] = {"filters": 0}
    (tmp_path / "design" / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError, match="filters must be a positive integer, got 0"):
        load_spec(tmp_path)


def test_repr_reads_like_the_architecture():
    text = repr(preset("compact", image((28, 28))))
    assert text.splitlines() == [
        "ModelSpec 'compact'",
        "  stem      2 x conv [32, 32] filters 3x3",
        "  learner   group 1: 2 x conv block, 64, downsample by pool",
        "  task      pooling 'pool_flatten', embedding 128, head from the problem card",
        "  options   no batch_norm, padding 'valid', kernel 3",
    ]
    table = repr(summarize(preset("compact", image()), image()))
    assert "stem_conv1" in table and "learner_g1_b1_conv" in table and "total" in table


def test_diagram_is_a_titled_figure():
    from matplotlib.figure import Figure

    from workbench.plots.design import plot_architecture

    card = ProblemCard("image", "multiclass", 10, (8, 8, 1), dataset="digits")
    fig = plot_architecture(preset("resnet", card), card)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[0] == "Model 'resnet' for digits (8x8x1 input)"
    gids = {p.get_gid() for p in fig.axes[0].patches}
    assert {"output:encoding", "output:logits", "output:probabilities"} <= gids
    assert {"section:stem", "section:learner", "section:task"} <= gids


def test_widget_refreshes_headless_and_shows_errors():
    from workbench.widgets.design import DesignView

    card = image((28, 28))
    view = DesignView(card)
    assert view.summary.params == summarize(preset("compact", card), card).params
    assert view.png.startswith(b"\x89PNG")
    view.set(width=0.5)
    assert view.spec.stem.filters == (16, 16) and "MACs" in view.text
    view.set(block="residual")  # compact keeps 'valid' padding on 28x28
    assert view.spec is None and "residual blocks need padding=" in view.text
    assert view.png == b""
    view.set(preset="resnet", blocks=1, embedding=64)
    assert view.error is None and view.spec.groups[0].n_blocks == 1
    assert view.spec.task.embedding_units == 64
    with pytest.raises(ParameterError, match="Parameter 'control': expected one of"):
        view.set(depth=3)
    view.close()


def test_default_preset_is_the_profiles_when_it_fits_the_card():
    assert default_preset(image(), "resnet") == "resnet"
    assert default_preset(tabular(), "compact") == "tabular"  # a tabular card, image profile


# ---- the plain-Keras listing and the per-layer formulas ------------------------------------


@pytest.mark.parametrize(
    "name, card",
    [("resnet", image()), ("compact", image((28, 28))), ("tabular", tabular())],
)
def test_keras_code_builds_the_same_model(name, card):
    spec = preset(name, card)
    code = keras_code(spec, card)
    namespace: dict = {}
    exec(compile(code, f"<keras_code {name}>", "exec"), namespace)
    listed, built = namespace["model"], build(spec, card)
    assert [layer.name for layer in listed.layers] == [layer.name for layer in built.layers]
    for a, b in zip(listed.layers, built.layers, strict=True):
        assert tuple(a.output.shape) == tuple(b.output.shape), a.name
        assert a.count_params() == b.count_params(), a.name
    assert listed.count_params() == built.count_params() == summarize(spec, card).params
    assert listed.get_config() == built.get_config()  # same layers, arguments and wiring


def test_keras_code_reads_one_layer_per_line():
    card = image()
    code = keras_code(preset("compact", card), card)
    lines = code.splitlines()
    assert lines[:2] == ["import keras", "from keras import layers"]
    assert 'inputs = keras.Input(shape=(8, 8, 1), name="input")' in lines
    conv = 'layers.Conv2D(32, 3, padding="same", activation="relu", name="stem_conv1")(inputs)'
    assert f"x = {conv}" in lines
    assert 'embedding = layers.Dense(128, activation="relu", name="embedding")(encoding)' in lines
    assert 'outputs = layers.Activation("softmax", name="probabilities")(logits)' in lines
    assert lines[-1] == 'model = keras.Model(inputs, outputs, name="compact")'
    sections = [line.split(":")[0] for line in lines if line.startswith("# ") and ":" in line]
    assert [s for s in sections if s in ("# stem", "# learner", "# task")] == [
        "# stem",
        "# learner",
        "# task",
    ]
    calls = [line for line in lines if " = layers." in line or " = keras.Input(" in line]
    assert len(calls) == len(summarize(preset("compact", card), card).rows)


def test_keras_code_keeps_the_residual_shortcut():
    card = image()
    code = keras_code(preset("resnet", card), card)
    assert 'x = layers.Add(name="learner_g1_b1_add")([x, shortcut])' in code
    assert 'x = layers.Add(name="learner_g2_b1_add")([main, x])' in code  # projected shortcut
    with pytest.raises(SpecError, match="residual blocks need padding='same'"):
        keras_code(PRESETS["resnet"].replace(padding="valid"), card)


@pytest.mark.parametrize(
    "spec, card",
    [
        (preset("compact_bn", image((28, 28))), image((28, 28))),  # Conv2D without bias, BN
        (preset("compact", image()), image()),  # biases, Dense embedding
        (PRESETS["mobilenet"].replace(batch_norm=False), image()),  # depthwise with its bias
        (preset("mobilenet", image()), image()),
        (PRESETS["tabular"].replace(batch_norm=True), tabular()),  # Dense without bias, BN
    ],
)
def test_layer_cost_formulas_match_keras_per_layer(spec, card):
    import numpy as np

    summary, model = summarize(spec, card), build(spec, card)
    for row in summary.rows:
        cost, layer = layer_cost(summary, row.name), model.get_layer(row.name)
        assert cost.params == layer.count_params() == row.params, row.name
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert cost.trainable == trainable, row.name
        assert cost.macs == row.macs, row.name
        for text, value in ((cost.params_formula, cost.params), (cost.macs_formula, cost.macs)):
            worked = re.search(r" = ([0-9· +]+) = ([0-9,]+)", text)  # symbols = numbers = value
            if worked is None:
                assert value == 0 and text.startswith("0"), row.name
                continue
            numbers, result = worked[1].replace("·", "*"), int(worked[2].replace(",", ""))
            assert eval(numbers) == result == value, (row.name, text)


def test_layer_cost_reads_like_the_formulas():
    card = image()
    summary = summarize(preset("compact_bn", card), card)
    conv = layer_cost(summary, "learner_g1_b1_conv")
    assert str(conv).splitlines() == [
        "learner_g1_b1_conv (Conv2D, 4x4x32 -> 4x4x64)",
        "  parameters  kh·kw·Cin·Cout = 3·3·32·64 = 18,432 (no bias: the BatchNormalization "
        "after it shifts instead)",
        "  MACs        Hout·Wout·Cout·kh·kw·Cin = 4·4·64·3·3·32 = 294,912",
    ]
    bn = layer_cost(summary, "learner_g1_b1_conv_bn")
    assert bn.params_formula.startswith("4·C = 4·64 = 256, of which 2·C = 128 trainable")
    assert (bn.params, bn.trainable, bn.macs) == (256, 128, 0)
    logits = layer_cost(summary, "logits")
    assert logits.params_formula == "in·out + out = 128·10 + 10 = 1,290"
    assert logits.macs_formula == "in·out = 128·10 = 1,280"
    plain = summarize(preset("compact", card), card)
    assert layer_cost(plain, "stem_conv1").params_formula == (
        "kh·kw·Cin·Cout + Cout = 3·3·1·32 + 32 = 320"
    )


def test_fewer_macs_can_mean_more_parameters():
    """On 28x28, compact's Dense embedding holds most of its weights but each is used once per
    image; compact_bn's 'same' convolutions reuse their few weights at every position."""
    card = image((28, 28))
    compact = summarize(preset("compact", card), card)
    compact_bn = summarize(preset("compact_bn", card), card)
    assert (compact.params, compact.macs) == (197_482, 9_837_952)
    assert (compact_bn.params, compact_bn.macs) == (141_098, 21_903_104)
    embedding = compact.row("embedding")
    assert (embedding.params, embedding.macs) == (131_200, 131_072)  # 1024*128 + 128, once each
    conv = compact_bn.row("stem_conv2")
    assert conv.macs == conv.params * 28 * 28  # 9,216 weights, each used at 784 positions
