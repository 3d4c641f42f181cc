"""A digit drawn by hand, framed the way the data set frames its digits.

    x = drawn_like([[(100, 30), (100, 170)]], x_train)  # strokes of (x, y) points on a pad
    # = drawn_image(rasterize(strokes, pen=...), x_train.shape[1:], high=x_train.max(),
    #               fill=typical_fill(x_train)), with the pen as thick as the data's strokes

A drawing on a 200-pixel canvas cannot go to the model as it is: the model learned digits of a
given size, position and brightness. MNIST's digits were scaled to fit a 20x20 box and centred
by their centre of mass in a 28x28 frame; scikit-learn's 8x8 digits fill most of their frame.
So the ink's bounding box is scaled (keeping its aspect) until its longer side spans the share
of the frame the data's digits typically span, and placed with its centre of mass at the
centre; brightness is the data's own range [0, high]. The pen is as thick, for the digit's
size, as the data's strokes (`typical_stroke`): scikit-learn's 8x8 digits have strokes of about
a fifth of the digit's height, MNIST's about a tenth.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import ParameterError

INK = 0.1  # a pixel is ink above this share of the full brightness
PAD = 200  # side of the drawing pad, in pixels
PEN = 16  # width of the pen shown on the pad
STROKE_RUN = 2.5  # a digit's strokes, end to end, are about 2.5 times its height


def rasterize(
    strokes: list[list[tuple[float, float]]], *, size: int = PAD, pen: float = PEN
) -> np.ndarray:
    """Strokes (each a list of (x, y) points on a `size` x `size` pad) as ink (size, size) in
    [0, 1], drawn with a round pen `pen` pixels wide."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    r = pen / 2
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=round(pen), joint="curve")
        for x, y in (points[0], points[-1]) if points else ():
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)  # round ends, and dots
    return np.asarray(image, np.float64) / 255


def typical_fill(images: np.ndarray) -> float:
    """The median share of the frame's side that an image's ink spans (its bounding box's
    longer side over the frame's longer side), over `images` (N, H, W[, C])."""
    return _fill(_ink(images))


def typical_stroke(images: np.ndarray) -> float:
    """The data's stroke width as a share of a digit's size, from its median ink share: a
    digit of side F drawn with width t over strokes about STROKE_RUN x F long covers
    t x STROKE_RUN x F pixels, so t / F = ink pixels / (STROKE_RUN x F^2)."""
    ink = _ink(images)
    return _stroke(ink, _fill(ink))


def drawn_like(
    strokes: list[list[tuple[float, float]]], images: np.ndarray, *, size: int = PAD
) -> np.ndarray:
    """Strokes drawn on a `size` pad as one raw image like `images` (N, H, W[, C]): the pen
    as thick as their strokes, the digit framed and as bright as theirs."""
    points = np.array([p for stroke in strokes for p in stroke], np.float64).reshape(-1, 2)
    if not len(points):
        raise ParameterError("Nothing is drawn yet: draw a digit on the canvas first.")
    mask = _ink(images)
    fill = _fill(mask)
    share = _stroke(mask, fill)
    side = float(np.ptp(points, axis=0).max())
    pen = max(PEN / 4, share * side / (1 - share))  # pen / (side + pen) = the data's share
    like = np.asarray(images)
    ink = rasterize(strokes, size=size, pen=pen)
    return drawn_image(ink, like.shape[1:], high=float(like.max()), fill=fill)


def _ink(images: np.ndarray) -> np.ndarray:
    """Where `images` (N, H, W[, C]) have ink: (N, H, W) bool, per image above INK of its
    brightest pixel."""
    x = np.asarray(images, np.float64)
    x = x.mean(axis=-1) if x.ndim == 4 else x
    if x.ndim != 3 or len(x) == 0:
        raise ParameterError(
            "Drawing: expected images (N, H, W) or (N, H, W, C) to frame a drawing like, got "
            f"shape {x.shape}."
        )
    high = x.max(axis=(1, 2), keepdims=True)
    return x > INK * np.where(high > 0, high, 1.0)


def _fill(ink: np.ndarray) -> float:
    span = np.maximum(_extent(ink.any(axis=2)), _extent(ink.any(axis=1))) / max(ink.shape[1:])
    drawn = ink.any(axis=(1, 2))
    return float(np.median(span[drawn])) if drawn.any() else 1.0


def _stroke(ink: np.ndarray, fill: float) -> float:
    side = fill * max(ink.shape[1:])
    return float(np.clip(np.median(ink.sum(axis=(1, 2))) / (STROKE_RUN * side**2), 0.02, 0.5))


def _extent(mask: np.ndarray) -> np.ndarray:
    """Per row of `mask` (N, L): last True index - first True index + 1 (0 without any)."""
    first = mask.argmax(axis=1)
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return np.where(mask.any(axis=1), last - first + 1, 0)


def drawn_image(
    ink: np.ndarray, shape: tuple[int, ...], *, high: float, fill: float = 0.7
) -> np.ndarray:
    """`ink` (h, w) in [0, 1], 1 where the pen went, as a raw image of `shape` (H, W) or
    (H, W, C) in [0, high]: scaled so its longer side spans `fill` of the frame, centred by
    its centre of mass. Raises ParameterError when nothing was drawn."""
    from PIL import Image

    ink = np.clip(np.asarray(ink, np.float64), 0.0, 1.0)
    if ink.ndim != 2:
        raise ParameterError(f"drawn_image: expected ink as (h, w), got shape {ink.shape}.")
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ParameterError(f"drawn_image: expected shape (H, W) or (H, W, C), got {shape}.")
    if not 0 < fill <= 1:
        raise ParameterError(f"drawn_image: expected fill in (0, 1], got {fill}.")
    rows, cols = np.flatnonzero((ink > INK).any(axis=1)), np.flatnonzero((ink > INK).any(axis=0))
    if not len(rows):
        raise ParameterError("Nothing is drawn yet: draw a digit on the canvas first.")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = shape[0], shape[1]
    scale = fill * max(height, width) / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.BOX)
    digit = np.asarray(small, np.float64) / 255
    # centre of mass to the frame's centre, the digit kept inside the frame
    cy, cx = (np.indices(digit.shape) * digit).reshape(2, -1).sum(axis=1) / digit.sum()
    top = int(np.clip(round((height - 1) / 2 - cy), 0, max(0, height - digit.shape[0])))
    left = int(np.clip(round((width - 1) / 2 - cx), 0, max(0, width - digit.shape[1])))
    frame = np.zeros((height, width))
    part = digit[: height - top, : width - left]
    frame[top : top + part.shape[0], left : left + part.shape[1]] = part
    frame = frame / frame.max() * high
    channels = shape[2] if len(shape) == 3 else 0
    return np.repeat(frame[..., None], channels, axis=-1) if channels else frame
