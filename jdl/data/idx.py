"""Reading MNIST-like files: IDX (optionally gzipped) and npz archives, checked for shape and label range."""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

_IDX_TYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is a truncated or corrupt gzip file ({err})") from err


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzipped): magic 0x0000TTDD (type TT, DD dims), big-endian sizes, data."""
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty file)'}")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        expected = (raw[2] << 8) | expected_ndim
        raise ValueError(
            f"{path} has magic number 0x{int.from_bytes(raw[:4], 'big'):08x} ({ndim} dimensions); "
            f"expected 0x{expected:08x} ({expected_ndim} dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected_bytes:
        problem = "truncated" if len(raw) < expected_bytes else "corrupt (trailing bytes)"
        raise ValueError(
            f"{path} is {problem}: its header says shape {shape}, i.e. {expected_bytes} bytes, "
            f"but it holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find(directory: str, base: str) -> str | None:
    for candidate in (base, base + ".gz"):
        full = os.path.join(directory, candidate)
        if os.path.isfile(full):
            return full
    return None


def checked_pair(images: np.ndarray, labels: np.ndarray, where: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{where}: images must have shape (n, rows, cols) and labels (n,), got {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.dtype != np.uint8 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: expected uint8 images and integer labels, got {images.dtype} and {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{where}: labels must be in [0, {num_classes - 1}], got {labels.min()}..{labels.max()}")
    return images, labels


def read_idx_split(directory: str, part: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = (find(directory, base) for base in IDX_FILES[part])
    images = read_idx(image_file, expected_ndim=3)
    labels = read_idx(label_file, expected_ndim=1)
    return checked_pair(images, labels, f"{image_file} / {label_file}", num_classes)


def read_npz(path: str, parts: tuple[str, ...], num_classes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npz file ({err})") from err
    with archive:
        out = {}
        for part in parts:
            keys = (f"x_{part}", f"y_{part}")
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise ValueError(f"{path} lacks key(s) {missing}; it holds {sorted(archive.files)}")
            out[part] = checked_pair(archive[keys[0]], archive[keys[1]], f"{path} [{part}]", num_classes)
    return out
