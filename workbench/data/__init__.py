"""Stage 3, prepare the data: extraction -> analysis -> transformation -> management -> serving.

    raw = load_source("digits")                     # extraction (sources.py)
    report = analyze(raw.x, raw.y)                  # analysis (analysis.py)
    version = prepare("digits", run_dir=run.dir)    # split, fit transform, save a version

    from workbench.data.serving import feed         # serving (serving.py): loads Keras
    train = feed(version, "train", batch_size=64)   # batches for model.fit

Keras loads only when a function needs it (augmentation, downloads) or when `serving` is
imported, which this package does not do.
"""

from workbench.data import examples
from workbench.data.analysis import DataReport, analyze
from workbench.data.prepare import (
    TASKS,
    fit_transform,
    input_shape,
    prepare,
    split_indices,
    split_targets,
    targets,
)
from workbench.data.sources import DOWNLOADS, RawData, list_sources, load_source
from workbench.data.transform import (
    ATTRIBUTE_NAMES,
    Transform,
    augment_preview,
    augmentation,
    digit_attributes,
    stratified_split,
    to_channels_last,
)
from workbench.data.versioning import DatasetVersion, list_versions, load_version

__all__ = [
    "ATTRIBUTE_NAMES",
    "DOWNLOADS",
    "TASKS",
    "DataReport",
    "DatasetVersion",
    "RawData",
    "Transform",
    "analyze",
    "augment_preview",
    "augmentation",
    "digit_attributes",
    "examples",
    "fit_transform",
    "input_shape",
    "list_sources",
    "list_versions",
    "load_source",
    "load_version",
    "prepare",
    "split_indices",
    "split_targets",
    "stratified_split",
    "targets",
    "to_channels_last",
]
