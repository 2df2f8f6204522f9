"""Compile once, keyed by value: equal Trainers share compiled code, evaluation compiles a few shapes, nothing a caller holds is donated."""

import dataclasses

import jax
import numpy as np
import pytest

from jdl import callbacks as cb
from jdl import optim
from jdl.models import MLP
from jdl.train import Trainer
from tests.compiles import counting


def blobs(n=96, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int32)


X, Y = blobs()


def make(optimizer=None, **kw):
    return Trainer(MLP(hidden=(16,), outputs=3), loss="sparse_categorical_crossentropy",
                   optimizer=optimizer or optim.sgd(0.1, momentum=0.9, weight_decay=1e-4, l2=0.01),
                   metrics=["accuracy"], **kw)


def leaves(state):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state.params)]


@pytest.fixture(scope="module")
def fitted():
    trainer = make()
    state, _ = trainer.fit(X, Y, epochs=2, batch_size=20, validation_split=0.2, verbose=0, seed=1)
    return trainer, state


def test_a_second_identically_configured_trainer_compiles_nothing_new(fitted):
    with counting() as again:
        state, _ = make().fit(X, Y, epochs=2, batch_size=20, validation_split=0.2, verbose=0, seed=1)
    assert again.count == 0
    assert all(np.array_equal(a, b) for a, b in zip(leaves(state), leaves(fitted[1])))


def test_trainers_differing_only_in_numbers_share_compiled_steps(fitted):
    other = make(optim.sgd(0.3, momentum=0.5, weight_decay=3e-4, l2=0.05), loss_weights=2.0)
    with counting() as again:
        state, history = other.fit(X, Y, epochs=2, batch_size=20, validation_split=0.2, verbose=0, seed=1)
    assert again.count == 0
    assert not any(np.array_equal(a, b) for a, b in zip(leaves(state), leaves(fitted[1])))
    assert history.history["lr"] == [pytest.approx(0.3)] * 2
    assert optim.hyperparameters(state.opt_state)["momentum"] == pytest.approx(0.5)


def test_a_different_structure_compiles_again(fitted):
    with counting() as again:
        make(optim.adam(0.01)).fit(X, Y, epochs=1, batch_size=20, validation_split=0.2, verbose=0, seed=1)
    assert again.count > 0


def test_a_first_fit_compiles_each_program_once_its_epoch_programs_ahead_of_the_first_step():
    """Compiled concurrently before the first step (jdl.train.compiled.concurrently), and not again when called."""
    trainer = Trainer(MLP(hidden=(13,), outputs=3), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.01))
    with counting() as first:
        trainer.fit(X[:90], Y[:90], epochs=2, batch_size=25, verbose=0)  # 3 full batches and a remainder of 15
    assert first.names.count("jit(init)") == 1, first.names
    assert first.names.count("jit(train_chunk)") == 2, first.names  # the full batches' chunk and the remainder's
    assert len(first.names) == len(set(first.names)) + 1, first.names


def test_evaluate_on_eleven_sizes_compiles_at_most_twice_and_matches_an_unpadded_reference(fitted):
    trainer, state = fitted
    x, y = blobs(120, seed=3)
    with counting() as evaluations:
        scores = [trainer.evaluate(state, x[:n], y[:n]) for n in range(100, 111)]
    assert evaluations.count <= 2
    kernels = sum(float(np.sum(np.square(p["kernel"]))) for p in jax.device_get(state.params).values())
    every = np.asarray(jax.jit(trainer.model.apply)({"params": state.params}, x[:110]), np.float64)  # rows independent
    for n, score in zip(range(100, 111), scores):
        logits = every[:n]
        log_p = logits - logits.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        loss = -log_p[np.arange(n), y[:n]].mean() + 0.01 / (2 * 76) * kernels
        assert score["loss"] == pytest.approx(loss, rel=1e-5)
        assert score["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y[:n]), abs=1e-6)


def test_predict_returns_exactly_n_rows_of_probabilities(fitted):
    trainer, state = fitted
    with counting() as predictions:
        outputs = [trainer.predict(state, X[:n]) for n in (5, 6, 7)]
    assert predictions.count <= 1
    for n, p in zip((5, 6, 7), outputs):
        logits = np.asarray(trainer.model.apply({"params": state.params}, X[:n]), np.float64)
        want = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(p, want / want.sum(1, keepdims=True), rtol=1e-5)


def test_fit_never_donates_or_changes_a_state_the_caller_holds():
    trainer = make()
    start = trainer.init(X, seed=4)
    before = leaves(start)
    a, _ = trainer.fit(X, Y, epochs=2, batch_size=16, verbose=0, state=start)
    b, _ = trainer.fit(X, Y, epochs=2, batch_size=16, verbose=0, state=start)
    assert all(np.array_equal(u, v) for u, v in zip(before, leaves(start)))
    assert all(np.array_equal(u, v) for u, v in zip(leaves(a), leaves(b)))
    stepped, logs = trainer.train_step(start, (X[:8], Y[:8]))
    assert bool(logs["finite"]) and trainer.evaluate(start, X, Y)["loss"] > 0
    assert not all(np.array_equal(u, v) for u, v in zip(before, leaves(stepped)))


class _Snapshots(cb.Callback):
    """Host copies of the parameters at the end of every epoch."""

    holds_state = False

    def __init__(self):
        self.params = []

    def on_epoch_end(self, epoch, state, logs):
        self.params.append(leaves(state))


def test_early_stopping_restores_the_best_epochs_weights():
    snapshots = _Snapshots()
    stopper = cb.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    state, history = make(optim.sgd(2.0)).fit(X, Y, epochs=30, batch_size=8, validation_split=0.25, verbose=0,
                                              callbacks=[stopper, snapshots])
    best = int(np.argmin(history.history["val_loss"]))
    assert len(history.epoch) < 30 and best == stopper.best_epoch
    assert all(np.array_equal(u, v) for u, v in zip(leaves(state), snapshots.params[best]))


@dataclasses.dataclass(frozen=True)
class _IndexHook:
    """A step hook that records which training examples each step saw."""

    def value_and_grad(self, context):
        return None

    def record(self, context, extra):
        return context.index


class _Batches(cb.Callback):
    holds_state = False

    def __init__(self):
        self.seen = []

    def step_hook(self, model):
        return _IndexHook()

    def on_step_records(self, records):
        self.seen.append(np.asarray(records))


@pytest.mark.parametrize("batch_size", [16, 20])
def test_fit_trains_on_the_batches_of_data_batch_indices(batch_size):
    import jdl

    batches = _Batches()
    make().fit(X, Y, epochs=2, batch_size=batch_size, verbose=0, seed=9, callbacks=[batches])
    per_epoch = len(batches.seen) // 2
    for epoch in range(2):
        index, mask = (np.asarray(a) for a in jdl.data.batch_indices(96, batch_size, seed=9, epoch=epoch))
        seen = batches.seen[epoch * per_epoch:(epoch + 1) * per_epoch]
        full = np.concatenate([s for s in seen if s.shape[1] == batch_size]).reshape(-1)
        rest = np.concatenate([s.reshape(-1) for s in seen if s.shape[1] != batch_size] or [np.zeros(0, int)])
        np.testing.assert_array_equal(np.concatenate([full, rest[:96 - full.size]]), index[mask])


def test_a_repeated_fit_of_the_same_shapes_traces_no_program_again():
    """Its checks and its ahead-of-time compiles reuse the first fit's traces: no per-call tracing on the host."""
    traced = []

    def listen(event, duration, **_):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        trainer = make()
        state = trainer.init(X, 0)
        trainer.fit(X, Y, epochs=2, batch_size=20, verbose=0, seed=1, state=state)
        assert traced, "the first fit traces its programs"
        traced.clear()
        trainer.fit(X, Y, epochs=2, batch_size=20, verbose=0, seed=1, state=state)
        assert traced == []
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
