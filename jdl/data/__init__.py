"""Data: named data sets, splits and standardization, label encodings, batching, augmentation."""

from jdl.data import augment, datasets, memory_tasks, packed, pipeline, sequences, sources, text
from jdl.data.augment import (
    adjust_brightness,
    compose,
    flip,
    random_brightness,
    random_flip,
    random_rotation,
    random_zoom,
    rotate,
    zoom,
)
from jdl.data.datasets import FASHION_MNIST_CLASSES, Dataset, load, names, read_idx, register
from jdl.data.memory_tasks import ADDING_BASELINE_MSE, adding_problem, copy_baseline, copy_memory
from jdl.data.pipeline import Split, Standardizer, batch_indices, label_encode, one_hot, split
from jdl.data.sequences import SequenceData, add_digits, reverse_digits

__all__ = [
    "augment",
    "datasets",
    "memory_tasks",
    "packed",
    "sources",
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "copy_baseline",
    "copy_memory",
    "pipeline",
    "sequences",
    "text",
    "SequenceData",
    "add_digits",
    "reverse_digits",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "load",
    "names",
    "read_idx",
    "register",
    "Split",
    "Standardizer",
    "batch_indices",
    "label_encode",
    "one_hot",
    "split",
    "adjust_brightness",
    "compose",
    "flip",
    "random_brightness",
    "random_flip",
    "random_rotation",
    "random_zoom",
    "rotate",
    "zoom",
]
