"""Training from a Grain data source (a packed set, a MapDataset) and from an iterable of batches."""

import os
import signal

import grain
import jax
import numpy as np
import pytest

import jdl
from jdl import callbacks as cb
from jdl import optim, runs
from jdl.data import packed, sources
from jdl.data.batching import BatchPlan
from jdl.models import MLP
from jdl.train import Trainer
from jdl.train.streaming import SourceMismatch

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
NOISY_Y = np.where(np.random.default_rng(1).random(64) < 0.3, 1 - Y, Y).astype(np.int32)  # val loss rises after epoch 3


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return packed.write(tmp_path_factory.mktemp("packed") / "noisy", X, NOISY_Y)


def test_every_row_is_read_once_per_epoch_in_the_in_memory_order(pack):
    """The sampler's batches are jdl.data.batch_indices' (the in-memory plan); 2 processes split each batch."""
    source = packed.open_packed(pack)
    plan = BatchPlan(64, 10, True, 3, 2)  # 6 full batches in dispatches of 3, then 4 rows (a multiple of 2)
    for epoch in range(3):
        want, want_mask = map(np.asarray, jdl.data.batch_indices(64, 10, seed=7, epoch=epoch))
        order = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.fold_in(
            jax.random.PRNGKey(7), 0x5EED), epoch), 64))
        halves = [sources.EpochSampler(source, order, plan, p, 2) for p in range(2)]
        chunks = [list(sources.epoch_chunks(h, 0, plan.full, 3, sources.ReadOptions(threads=2))) for h in halves]
        assert [c[0].shape[:2] for c in chunks[0]] == [(3, 5)] * 2  # 3 steps of this process's 5 rows
        got = np.concatenate([np.concatenate([a[3], b[3]], axis=1) for a, b in zip(*chunks)])
        np.testing.assert_array_equal(got, want[:6])
        x_rows = np.concatenate([np.concatenate([a[0], b[0]], axis=1) for a, b in zip(*chunks)])
        np.testing.assert_array_equal(x_rows, X[want[:6]])
        last = [h(6) for h in halves]
        index, mask = np.concatenate([l[3] for l in last]), np.concatenate([l[4] for l in last])
        np.testing.assert_array_equal(index[mask], want[6][want_mask[6]])
        assert mask.sum() == 4 and np.all(np.concatenate([l[2] for l in last])[~mask] == 0)
        seen = np.concatenate([got.reshape(-1), index[mask]])
        np.testing.assert_array_equal(np.sort(seen), np.arange(64))


def _watched_fit(x, y, backup, *extra, **fit):
    """A fit with EarlyStopping (restoring the best weights) and ReduceLROnPlateau, 3 dispatches per epoch."""
    t = Trainer(MLP(hidden=(32,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.1),
                steps_per_execution=2)
    watchers = [cb.EarlyStopping(patience=2, restore_best_weights=True), cb.ReduceLROnPlateau(patience=1, factor=0.5)]
    return t.fit(x, y, epochs=8, batch_size=8, validation_split=0.25, verbose=0, seed=3,
                 callbacks=[*watchers, *extra, cb.BackupAndRestore(backup, **fit)])


@pytest.fixture(scope="module")
def whole(pack, tmp_path_factory):
    """The uninterrupted fit from the packed set, and the same fit from arrays."""
    root = tmp_path_factory.mktemp("fits")
    return _watched_fit(packed.open_packed(pack), None, root / "grain"), _watched_fit(X, NOISY_Y, root / "arrays")


def _same_arrays(a, b, message=""):
    for u, v in zip(jax.tree_util.tree_leaves(a.arrays()), jax.tree_util.tree_leaves(b.arrays())):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v), err_msg=message)


def test_a_packed_fit_equals_the_in_memory_fit_bit_for_bit(whole):
    (grain_state, grain_history), (array_state, array_history) = whole
    assert len(set(array_history.history["lr"])) == 2 and len(array_history.epoch) < 8, "both callbacks must act"
    assert grain_history.history == array_history.history
    _same_arrays(grain_state, array_state)


class SigtermAt(cb.Callback):
    """Sends this process SIGTERM after dispatch number `at` (0-based) — what a scheduler's preemption does."""

    holds_state = False

    def __init__(self, at):
        self.at, self.seen = at, 0

    def on_train_batch_end(self, steps, state, logs):
        if self.seen == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        self.seen += 1


def test_sigterm_mid_epoch_on_the_grain_path_resumes_to_bit_identical_parameters(pack, whole, tmp_path):
    (state, history), _ = whole
    at = int(np.random.default_rng().integers(0, 3 * len(history.epoch) - 1))
    if at % 3 == 2:
        at -= 1  # inside an epoch: after its first or second dispatch of three
    with runs.stop_on_signals(runs.StopRequest()) as request:
        with pytest.raises(cb.TrainingInterrupted) as stop:
            _watched_fit(packed.open_packed(pack), None, tmp_path, SigtermAt(at), interrupt=request)
    assert stop.value.reason == "SIGTERM" and stop.value.steps_done == 2 * (at % 3 + 1), at
    resumed, again = _watched_fit(packed.open_packed(pack), None, tmp_path)
    assert again.history == history.history, f"SIGTERM after dispatch {at}"
    _same_arrays(resumed, state, f"SIGTERM after dispatch {at}")


def _small(**kw):
    return Trainer(MLP(hidden=(8,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.05), **kw)


def test_a_mapdataset_and_an_iterable_train_like_arrays():
    """A grain.MapDataset of records equals arrays; an iterable of batches equals unshuffled arrays, bit for bit."""
    t = _small()
    state, history = t.fit(X, Y, epochs=2, batch_size=16, verbose=0, seed=5)
    records = grain.MapDataset.range(64).map(lambda i: {"x": X[i], "y": Y[i]})
    mapped, mapped_history = t.fit(records, None, epochs=2, batch_size=16, verbose=0, seed=5)
    assert mapped_history.history == history.history
    _same_arrays(mapped, state)

    plain, plain_history = t.fit(X[:48], Y[:48], epochs=3, batch_size=16, shuffle=False, verbose=0, seed=5)
    batches = ((X[i:i + 16], Y[i:i + 16]) for _ in range(3) for i in range(0, 48, 16))
    streamed, streamed_history = t.fit(batches, None, epochs=3, steps_per_epoch=3, verbose=0, seed=5)
    assert streamed_history.history == plain_history.history
    _same_arrays(streamed, plain)

    short = ((X[i:i + 12], Y[i:i + 12]) for i in range(0, 60, 12))  # 5 batches of 12
    with pytest.warns(RuntimeWarning, match=r"ran out of batches after 5 \(steps_per_epoch=3\)"):
        _, ran_out = t.fit(short, None, epochs=4, steps_per_epoch=3, verbose=0)
    assert ran_out.epoch == [0, 1] and "ran out of batches" in ran_out.stop_reason


def test_data_that_disagrees_with_the_model_is_refused_before_training(pack, tmp_path):
    t = _small()
    state, _ = t.fit(X, Y, epochs=1, batch_size=64, verbose=0)
    wide = packed.write(tmp_path / "wide", np.concatenate([X, X[:, :1]], axis=1), Y)
    with pytest.raises(SourceMismatch, match=r"x \(the packed data set at .*wide\): x does not match the inputs the model "
                       r"was built for: expected x \(n, 4\), got x \(n, 5\)"):
        t.fit(packed.open_packed(wide), None, state=state, verbose=0)
    labels = packed.write(tmp_path / "labels", X, np.where(np.arange(64) == 50, 2, Y))  # row 50 is past the sample
    with pytest.raises(ValueError, match=r"packed data set .*labels.*class labels in \[0, 1\].* from 0 to 2"):
        t.fit(packed.open_packed(labels), None, verbose=0)
    with pytest.raises(ValueError, match="y must be None when x is a data source"):
        t.fit(packed.open_packed(pack), Y, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be given when x is an iterable"):
        t.fit(iter([(X, Y)]), None, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch applies to an iterable"):
        t.fit(X, Y, steps_per_epoch=3, verbose=0)
