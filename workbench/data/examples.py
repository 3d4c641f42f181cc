"""Messy files to practise on: real data written the way real files arrive.

`messy_wine_csv` writes scikit-learn's wine measurements (178 real wines, 3 cultivars) as a CSV
with the class first, missing cells (empty and `NA`), a few `?` markers, a text column, an
identifier and quoted text; `mixed_image_folder` writes scikit-learn's digits as an image
folder in two sizes and two modes, with a corrupt file and the clutter an operating system
leaves behind. Notebook 03 reads both; seeded, so a run reproduces them byte for byte.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from workbench.files import atomic_write_text

WINE_COLUMNS = ("alcohol", "malic_acid", "magnesium", "flavanoids", "color_intensity", "proline")
MISSING_SHARE = 0.08  # of the numeric cells, written empty or as NA
HUE_COLOURS = ((0.78, "amber"), (1.0, "garnet"), (np.inf, "ruby"))  # hue below -> its name


def messy_wine_csv(path: str | Path, *, seed: int = 0) -> Path:
    """Write the messy wine table to `path` (atomically) and return the path.

    Columns: `cultivar` (the target, text, first; two rows left empty), `sample` (an
    identifier, W-001...), six real measurements with ~8 % of cells missing and three `?`
    in `magnesium`, `colour` (the wine's hue named amber, garnet or ruby; a few missing) and
    `note` (quoted text holding a comma, the same in every row).
    """
    from sklearn.datasets import load_wine

    wine = load_wine()
    rng = np.random.default_rng(seed)
    names = list(wine.feature_names)
    hue = wine.data[:, names.index("hue")]
    rows = [["cultivar", "sample", *WINE_COLUMNS, "colour", "note"]]
    unlabelled = set(rng.choice(len(wine.target), 2, replace=False).tolist())
    unknown = set(rng.choice(len(wine.target), 3, replace=False).tolist())
    for i, (values, label) in enumerate(zip(wine.data, wine.target, strict=True)):
        cells = []
        for name in WINE_COLUMNS:
            v = values[names.index(name)]
            if name == "magnesium" and i in unknown:
                cells.append("?")
            elif rng.random() < MISSING_SHARE:
                cells.append(rng.choice(["", "NA"]))
            else:
                cells.append(f"{v:g}")
        colour = next(name for bound, name in HUE_COLOURS if hue[i] < bound)
        rows.append(
            [
                "" if i in unlabelled else f"cultivar {label + 1}",
                f"W-{i + 1:03d}",
                *cells,
                "" if rng.random() < 0.05 else colour,
                "tasted, not blended",
            ]
        )
    return _write_csv(Path(path), rows)


def mixed_image_folder(path: str | Path, *, per_class: int = 12, seed: int = 0) -> Path:
    """Write digits 0, 1 and 2 as a class-per-subfolder image folder at `path`; return it.

    Two thirds are 8x8 grayscale PNGs, one third 16x16 RGB PNGs (ink in colour); one file is a
    truncated PNG; `.DS_Store` and `notes.txt` sit beside the images, as they do in real folders.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    root = Path(path)
    for label in (0, 1, 2):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        picks = rng.choice(np.flatnonzero(digits.target == label), per_class, replace=False)
        for k, i in enumerate(picks):
            grey = (digits.images[i] * (255 / 16)).astype(np.uint8)  # (8, 8) 0..255
            image = Image.fromarray(grey, mode="L")
            if k % 3 == 2:  # every third: 16x16 colour
                tint = np.stack([grey, grey // 2, grey // 4], axis=-1)  # (8, 8, 3)
                image = Image.fromarray(tint, mode="RGB").resize((16, 16))
            image.save(folder / f"{label}_{k:02d}.png")
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    good = (root / "2" / "2_00.png").read_bytes()
    (root / "2" / "2_99.png").write_bytes(good[: len(good) // 2])  # cut off half-way
    (root / "notes.txt").write_text("digits 0-2 from a scanner, two resolutions\n")
    return root


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    """Rows as CSV text (quoting what needs quotes), written atomically."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return atomic_write_text(path, text.getvalue())
