import json
import pickle

import numpy as np
import pytest

from jdl.data import packed

rng = np.random.default_rng(0)
X = rng.normal(size=(37, 3, 2)).astype(np.float32)
Y = rng.integers(0, 5, 37).astype(np.int64)
W = rng.random(37).astype(np.float32)


def test_a_pack_round_trips_through_memory_maps_and_its_manifest(tmp_path):
    packed.write(tmp_path / "p", X, Y, W)
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest == {"format": "jdl.packed", "version": 1, "count": 37, "arrays": {
        "x": {"file": "x.npy", "shape": [37, 3, 2], "dtype": "<f4"},
        "y": {"file": "y.npy", "shape": [37], "dtype": "<i8"},
        "sample_weight": {"file": "sample_weight.npy", "shape": [37], "dtype": "<f4"}}}
    np.testing.assert_array_equal(np.load(tmp_path / "p" / "x.npy"), X)  # plain .npy files, readable by NumPy alone
    source = packed.open_packed(tmp_path / "p")
    assert len(source) == 37 and all(isinstance(a, np.memmap) for a in source.arrays.values())
    x5, y5, w5 = source[5]
    np.testing.assert_array_equal(x5, X[5]) and np.testing.assert_array_equal([y5, w5], [Y[5], W[5]])
    index = np.array([30, 2, 2, 17, 0, 36])  # unsorted, repeated
    for got, want in zip(source.read(index), (X, Y, W)):
        np.testing.assert_array_equal(got, want[index])
    again = pickle.loads(pickle.dumps(source))  # what a Grain worker process receives: the path, re-opened
    np.testing.assert_array_equal(again.read(index)[0], X[index])
    records = source._getitems([3, 1])
    np.testing.assert_array_equal(records[1][0], X[1])


def test_bad_packs_are_refused_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        packed.open_packed(tmp_path)
    with pytest.raises(ValueError, match=r"same number of examples, got \{'x': 37, 'y': 36\}"):
        packed.write(tmp_path / "a", X, Y[:36])
    packed.write(tmp_path / "b", X, Y)
    with pytest.raises(FileExistsError, match="already holds a packed data set"):
        packed.write(tmp_path / "b", X, Y)
    np.save(tmp_path / "b" / "x.npy", X[:, :2])
    with pytest.raises(ValueError, match=r"x.npy holds <f4 \[37, 2, 2\], but manifest.json says <f4 \[37, 3, 2\]"):
        packed.open_packed(tmp_path / "b")
    writer = packed.PackWriter(tmp_path / "c", 4, {"x": ((2,), np.float32), "y": ((), np.int32)})
    del writer  # never closed: no manifest, not a data set
    with pytest.raises(FileNotFoundError):
        packed.open_packed(tmp_path / "c")


def _rss_anon() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_reading_a_pack_keeps_anonymous_memory_bounded(tmp_path):
    """128 MiB on disk, written and read back in 1 MiB batches: RssAnon grows by far less than the file."""
    rows, features = 1 << 15, 1024
    writer = packed.PackWriter(tmp_path / "big", rows, {"x": ((features,), np.float32), "y": ((), np.int32)})
    block = 4096
    for start in range(0, rows, block):
        writer.arrays["x"][start:start + block] = np.float32(start)
        writer.arrays["y"][start:start + block] = np.arange(start, start + block)
    writer.close()
    before = _rss_anon()
    source = packed.open_packed(tmp_path / "big")
    order = np.random.default_rng(1).permutation(rows)
    total = 0.0
    for start in range(0, rows, 256):
        x, y = source.read(order[start:start + 256])
        assert np.array_equal(x[:, 0], (y // block * block).astype(np.float32))
        total += float(x[:, 0].sum())
    growth = _rss_anon() - before
    assert growth < 32 << 20, f"RssAnon grew by {growth / 2**20:.1f} MiB reading a 128 MiB pack"
    assert total == float(sum(np.arange(rows) // block * block))
