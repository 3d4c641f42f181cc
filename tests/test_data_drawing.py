"""A digit drawn on the pad becomes an image framed, stroked and lit like the data's digits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.data.drawing import (
    drawn_image,
    drawn_like,
    rasterize,
    typical_fill,
    typical_stroke,
)
from workbench.errors import ParameterError

SEVEN = [[(45, 35), (155, 35), (85, 175)]]


def _centre_of_mass(image: np.ndarray) -> np.ndarray:
    return (np.indices(image.shape) * image).reshape(2, -1).sum(1) / image.sum()


@pytest.fixture(scope="module")
def digits():
    return load_digits().images[:, :, :, None].astype(np.float32)  # raw 0..16, (N, 8, 8, 1)


def test_rasterize_draws_round_strokes_and_dots():
    ink = rasterize([[(100, 20), (100, 180)], [(30, 30)]], size=200, pen=10)
    assert ink.shape == (200, 200) and ink.max() == 1.0
    assert ink[100, 100] == 1.0 and ink[100, 90] == 0.0  # the line is 10 wide
    assert ink[30, 30] == 1.0 and ink[30, 40] == 0.0  # a single point is a dot of the pen
    assert rasterize([]).sum() == 0


def test_the_data_sets_frame_and_stroke_are_measured():
    frame = np.zeros((3, 28, 28))
    frame[:, 4:24, 10:14] = 255  # a "1" 20 high in 28, 4 wide
    assert typical_fill(frame) == pytest.approx(20 / 28)
    assert typical_stroke(frame) == pytest.approx(80 / (2.5 * 20**2))
    with pytest.raises(ParameterError, match=r"expected images \(N, H, W\)"):
        typical_fill(np.zeros((28, 28)))


def test_a_drawing_is_framed_centred_and_lit_like_the_digits(digits):
    x = drawn_like(SEVEN, digits)
    assert x.shape == (8, 8, 1) and x.dtype == np.float64
    assert x.max() == pytest.approx(16.0) and x.min() == 0.0  # the digits' range
    ink = x[..., 0] > 1.6
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert rows.max() - rows.min() + 1 == round(typical_fill(digits) * 8)  # spans like them
    assert cols.max() - cols.min() + 1 < 8  # narrower than the frame: centred across
    assert abs(_centre_of_mass(x[..., 0])[1] - 3.5) <= 0.5
    mnist_like = np.zeros((3, 28, 28))
    mnist_like[:, 4:24, 10:14] = 255  # digits 20 high in a 28 frame: room to centre them
    y = drawn_like(SEVEN, mnist_like)
    assert y.shape == (28, 28) and y.max() == pytest.approx(255.0)
    assert np.abs(_centre_of_mass(y) - 13.5).max() <= 0.5  # by its centre of mass, as MNIST
    thin = drawn_image(rasterize(SEVEN, pen=4), (8, 8, 1), high=16, fill=typical_fill(digits))
    assert ink.sum() > (thin[..., 0] > 1.6).sum()  # the pen follows the data's strokes


def test_nothing_drawn_and_bad_shapes_are_refused(digits):
    with pytest.raises(ParameterError, match="Nothing is drawn yet"):
        drawn_like([], digits)
    with pytest.raises(ParameterError, match="Nothing is drawn yet"):
        drawn_image(np.zeros((200, 200)), (8, 8), high=16)
    with pytest.raises(ParameterError, match=r"expected ink as \(h, w\)"):
        drawn_image(np.ones((2, 2, 2)), (8, 8), high=16)
    with pytest.raises(ParameterError, match="expected fill in"):
        drawn_image(np.ones((4, 4)), (8, 8), high=16, fill=1.5)
