"""Packed data sets on disk: one NumPy `.npy` file per array, read by index through memory maps.

A packed data set is a directory

    manifest.json   {"format": "jdl.packed", "version": 1, "count": n,
                     "arrays": {"x": {"file": "x.npy", "shape": [n, ...], "dtype": "float32"},
                                "y": {...}, "sample_weight": {...} (optional)}}
    x.npy, y.npy[, sample_weight.npy]

Every array holds n rows along its first axis. The manifest is written last, so a directory
without one is an unfinished pack. `open_packed` maps the files read-only (`np.load(mmap_mode="r")`):
reading rows touches only their pages, which are file-backed and reclaimable, so a data set
larger than memory trains with bounded anonymous memory. `PackedSource` is a Grain
random-access data source (`__len__`, `__getitem__`, batched `_getitems`) and picklable (a
worker process re-opens the files), so `grain.MapDataset.source(open_packed(d))` works too.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jdl._checks import describe

FORMAT = "jdl.packed"
VERSION = 1
MANIFEST = "manifest.json"
NAMES = ("x", "y", "sample_weight")
BLOCK_BYTES = 64 << 20


def _check_directory(directory: Any) -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path, got {describe(directory)}")
    return Path(directory)


class PackWriter:
    """A packed data set being written: `arrays[name]` are writable (count, ...) memory maps; `close()` commits it.

    Fill the maps in blocks (anonymous memory stays at one block); the manifest is written by
    close(), so a crash leaves a directory that `open_packed` refuses.
    """

    def __init__(self, directory: str | os.PathLike, count: int, specs: Mapping[str, tuple[Sequence[int], Any]]):
        self.directory = _check_directory(directory)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count must be a positive integer (the number of examples), got {count!r}")
        unknown = [k for k in specs if k not in NAMES]
        if unknown or "x" not in specs or "y" not in specs:
            raise ValueError(f"specs must name x and y (and optionally sample_weight), got {list(specs)}")
        if (self.directory / MANIFEST).exists():
            raise FileExistsError(f"{self.directory} already holds a packed data set ({MANIFEST}); choose another")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = int(count)
        self.arrays: dict[str, np.memmap] = {}
        for name, (shape, dtype) in specs.items():
            dtype = np.dtype(dtype)
            if dtype.kind not in "biuf":
                raise TypeError(f"{name} must be numeric, got dtype {dtype}")
            self.arrays[name] = np.lib.format.open_memmap(self.directory / f"{name}.npy", mode="w+", dtype=dtype,
                                                          shape=(self.count, *map(int, shape)))

    def close(self) -> Path:
        """Flush the arrays and write the manifest; returns the directory."""
        arrays = {}
        for name, array in self.arrays.items():
            array.flush()
            arrays[name] = {"file": f"{name}.npy", "shape": list(array.shape), "dtype": array.dtype.str}
        manifest = {"format": FORMAT, "version": VERSION, "count": self.count, "arrays": arrays}
        (self.directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        self.arrays.clear()
        return self.directory


def write(directory: str | os.PathLike, x: Any, y: Any, sample_weight: Any = None) -> Path:
    """Pack arrays x (n, ...), y (n, ...) and optional sample_weight (n,) into `directory`, in blocks of ≤ 64 MiB.

    x may itself be a memory map: it is read a block of rows at a time.
    """
    given = {"x": x, "y": y, **({} if sample_weight is None else {"sample_weight": sample_weight})}
    for name, array in given.items():
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            given[name] = np.asarray(array)
        if np.ndim(given[name]) == 0:
            raise ValueError(f"{name} must have a leading example axis (n, ...), got a scalar")
    sizes = {name: int(a.shape[0]) for name, a in given.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"x, y and sample_weight must have the same number of examples, got {sizes}")
    if "sample_weight" in given and given["sample_weight"].ndim != 1:
        raise ValueError(f"sample_weight must have shape (n,), got {given['sample_weight'].shape}")
    n = sizes["x"]
    writer = PackWriter(directory, n, {k: (a.shape[1:], a.dtype) for k, a in given.items()})
    for name, array in given.items():
        row_bytes = max(1, math.prod(array.shape[1:]) * array.dtype.itemsize)
        block = max(1, BLOCK_BYTES // row_bytes)
        for start in range(0, n, block):
            writer.arrays[name][start:start + block] = np.asarray(array[start:start + block])
    return writer.close()


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of a packed data set; ValueError naming the directory when it is not one."""
    directory = _check_directory(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a packed data set: it has no {MANIFEST} (write one with "
                                "jdl data pack)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ValueError(f"{path} is not a {FORMAT} version {VERSION} manifest")
    arrays = manifest.get("arrays", {})
    if "x" not in arrays or "y" not in arrays or any(k not in NAMES for k in arrays):
        raise ValueError(f"{path} must describe arrays x and y (and optionally sample_weight), got {list(arrays)}")
    count = manifest.get("count")
    for name, entry in arrays.items():
        if entry["shape"][0] != count:
            raise ValueError(f"{path}: {name} has {entry['shape'][0]} rows, but count is {count}")
    return manifest


class PackedSource:
    """A packed data set opened by memory maps: a Grain random-access source of (x_i, y_i[, w_i]) records.

    len(source) = n; source[i] = (x[i], y[i]) or (x[i], y[i], sample_weight[i]); source.read(index)
    gives the stacked rows of an index array at once (one sorted gather per array).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = _check_directory(directory)
        self.manifest = read_manifest(self.directory)
        self._open()

    def _open(self) -> None:
        self.arrays = {}
        for name, entry in self.manifest["arrays"].items():
            array = np.load(self.directory / entry["file"], mmap_mode="r")
            if list(array.shape) != list(entry["shape"]) or array.dtype.str != entry["dtype"]:
                raise ValueError(
                    f"{self.directory / entry['file']} holds {array.dtype.str} {list(array.shape)}, but "
                    f"{MANIFEST} says {entry['dtype']} {entry['shape']}; the pack is damaged, write it again")
            self.arrays[name] = array

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "manifest": self.manifest}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory, self.manifest = state["directory"], state["manifest"]
        self._open()

    def __len__(self) -> int:
        return int(self.manifest["count"])

    def __repr__(self) -> str:
        return f"PackedSource({str(self.directory)!r})"

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """{name: (n, ...)} of the packed arrays."""
        return {k: tuple(a.shape) for k, a in self.arrays.items()}

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(self.arrays[k][index]) for k in NAMES if k in self.arrays)

    def read(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """(x[index], y[index][, sample_weight[index]]) as new in-memory arrays, the rows in the order given."""
        index = np.asarray(index, np.int64)
        order = np.argsort(index, kind="stable")
        unsort = np.empty_like(order)
        unsort[order] = np.arange(order.size)
        ascending = index[order]
        return tuple(self.arrays[k][ascending][unsort] for k in NAMES if k in self.arrays)

    def _getitems(self, indices: Sequence[int]) -> list[tuple[np.ndarray, ...]]:
        columns = self.read(np.asarray(indices))
        return [tuple(c[i] for c in columns) for i in range(len(indices))]


def open_packed(directory: str | os.PathLike) -> PackedSource:
    """Open the packed data set in `directory` for reading by index (nothing is read into memory)."""
    return PackedSource(directory)


def prepared(x: np.ndarray, *, flatten: bool = False, scale: float | None = None, dtype: Any = None) -> np.ndarray:
    """x (n, ...) as packed: flattened to (n, features) if asked, times `scale`, cast to `dtype` (float32 with scale)."""
    if flatten:
        x = x.reshape(x.shape[0], -1)
    if scale is not None:
        x = x.astype(np.float32 if dtype is None else dtype) * np.asarray(scale, np.float32 if dtype is None else dtype)
    elif dtype is not None:
        x = x.astype(dtype)
    return x


def read_arrays(*, idx: Sequence[str] | None = None, npz: str | None = None, x_key: str = "x_train",
                y_key: str = "y_train") -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from an IDX pair (images, labels; plain or gzipped) or from two keys of an .npz archive."""
    from jdl.data import idx as idx_lib

    if (idx is None) == (npz is None):
        raise ValueError("give exactly one of idx (an images and a labels file) and npz")
    if idx is not None:
        if len(idx) != 2:
            raise ValueError(f"idx must be two files (images, labels), got {len(idx)}")
        return idx_lib.read_idx(idx[0]), idx_lib.read_idx(idx[1], expected_ndim=1)
    try:
        archive = np.load(npz, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{npz} is not a readable .npz file ({err})") from None
    with archive:
        missing = [k for k in (x_key, y_key) if k not in archive.files]
        if missing:
            raise ValueError(f"{npz} lacks key(s) {missing}; it holds {sorted(archive.files)}")
        return archive[x_key], archive[y_key]
