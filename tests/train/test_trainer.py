import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl import callbacks as cb
from jdl import optim
from jdl.models import MLP
from jdl.train import Trainer, inputs
from tests.compiles import counting


def blobs(n=96, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(size=(n, d))
    return x.astype(np.float32), y.astype(np.int32)


X, Y = blobs()


def trainer(**kw):
    model = kw.pop("model", MLP(hidden=(16,), outputs=3))
    return Trainer(model, loss=kw.pop("loss", "sparse_categorical_crossentropy"),
                   optimizer=kw.pop("optimizer", optim.adam(0.01)), metrics=kw.pop("metrics", ["accuracy"]), **kw)


def params_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_fit_learns_and_reports_keras_history_keys():
    state, history = trainer().fit(X, Y, epochs=15, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert history.epoch == list(range(15))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    assert history.history["lr"] == [pytest.approx(0.01)] * 15


def test_same_seed_gives_bit_identical_parameters():
    model = MLP(hidden=(16,), outputs=3, dropout=0.2, batch_norm=True)
    a, _ = trainer(model=model).fit(X, Y, epochs=3, batch_size=10, verbose=0, seed=7)
    b, _ = trainer(model=model).fit(X, Y, epochs=3, batch_size=10, verbose=0, seed=7)
    c, _ = trainer(model=model).fit(X, Y, epochs=3, batch_size=10, verbose=0, seed=8)
    assert params_equal(a.params, b.params) and params_equal(a.model_state, b.model_state)
    assert not params_equal(a.params, c.params)


def test_validation_split_takes_the_last_fraction_before_shuffling():
    t = trainer()
    state, history = t.fit(X, Y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    last = t.evaluate(state, X[72:], Y[72:])
    assert history.history["val_loss"][-1] == pytest.approx(last["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(last["accuracy"], rel=1e-6)
    assert history.params["samples"] == 72


def reference_epochs(model, x, y, tx, batches, epochs, seed=0):
    """A hand-written Flax + Optax loop over the given batch boundaries, no shuffling."""
    state = jdl.train.create_state(model, x[:1], tx, seed=seed)
    params, opt_state = state.params, tx.init(state.params)

    def cost(p, xb, yb):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, xb), yb))

    @jax.jit
    def step(params, opt_state, xb, yb):
        updates, opt_state = tx.update(jax.grad(cost)(params, xb, yb), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(epochs):
        for start, stop in batches:
            params, opt_state = step(params, opt_state, x[start:stop], y[start:stop])
    return params


@pytest.mark.parametrize("batch_size, batches", [
    (None, [(0, 10)]),
    (1, [(i, i + 1) for i in range(10)]),
    (4, [(0, 4), (4, 8), (8, 10)]),
])
def test_batching_matches_a_hand_written_loop(batch_size, batches):
    x, y = X[:10], Y[:10]
    model = MLP(hidden=(8,), outputs=3)
    state, history = trainer(model=model, optimizer=optim.sgd(0.1), metrics=[]).fit(
        x, y, epochs=3, batch_size=batch_size, shuffle=False, verbose=0)
    expected = reference_epochs(model, x, y, optax.sgd(0.1), batches, 3)
    assert int(state.step) == 3 * len(batches)
    for got, want in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert history.params["steps"] == len(batches)


def test_class_weight_is_exactly_the_equivalent_sample_weight():
    weights = {0: 2.0, 1: 0.5, 2: 1.0}
    a, ha = trainer().fit(X, Y, epochs=2, batch_size=16, class_weight=weights, verbose=0)
    b, hb = trainer().fit(X, Y, epochs=2, batch_size=16, sample_weight=np.array([weights[c] for c in Y]), verbose=0)
    assert params_equal(a.params, b.params)
    assert ha.history["loss"] == hb.history["loss"]


def test_early_stopping_restores_the_best_weights():
    t = trainer(optimizer=optim.adam(0.3))
    stopper = cb.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    state, history = t.fit(X, Y, epochs=40, batch_size=8, validation_split=0.25, callbacks=[stopper], verbose=0)
    best = min(history.history["val_loss"])
    assert t.evaluate(state, X[72:], Y[72:])["loss"] == pytest.approx(best, rel=1e-6)
    assert len(history.epoch) < 40


def test_non_finite_loss_stops_training_and_names_where():
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    y = (1e3 * x).astype(np.float32)
    t = Trainer(MLP(hidden=(8,), outputs=1), loss="mse", optimizer=optim.sgd(10.0))
    with pytest.warns(RuntimeWarning, match=r"Non-finite loss or gradient at epoch \d+ .*global step \d+.*first non-finite: "):
        state, history = t.fit(x, y, epochs=50, batch_size=8, verbose=0, callbacks=[cb.TerminateOnNaN()])
    assert history.stop_reason is not None and len(history.epoch) < 50
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(state.params))


class TwoHeads(nn.Module):
    @nn.compact
    def __call__(self, inputs):
        a, b = inputs["a"], inputs["b"]
        h = nn.relu(nn.Dense(16)(jnp.concatenate([a, b], axis=-1)))
        return {"label": nn.Dense(4)(h), "value": nn.Dense(1)(h)}


def test_multi_input_multi_output_reports_each_head():
    rng = np.random.default_rng(1)
    inputs = {"a": rng.normal(size=(64, 11)).astype(np.float32), "b": rng.normal(size=(64, 5)).astype(np.float32)}
    targets = {"label": rng.integers(0, 4, size=64), "value": rng.normal(size=(64,)).astype(np.float32)}
    t = Trainer(TwoHeads(), loss={"label": "sparse_categorical_crossentropy", "value": "mse"},
                optimizer=optim.adam(0.01), metrics={"label": ["accuracy"]}, loss_weights={"label": 1.0, "value": 0.5})
    state, history = t.fit(inputs, targets, epochs=3, batch_size=16, verbose=0)
    assert {"loss", "label_loss", "value_loss", "label_accuracy"} <= set(history.history)
    scores = t.evaluate(state, inputs, targets)
    assert scores["loss"] == pytest.approx(scores["label_loss"] + 0.5 * scores["value_loss"], rel=1e-5)
    predictions = t.predict(state, inputs)
    np.testing.assert_allclose(predictions["label"].sum(axis=1), 1.0, rtol=1e-5)


def test_predict_applies_the_output_activation():
    t = trainer()
    state, _ = t.fit(X, Y, epochs=1, verbose=0)
    probabilities = t.predict(state, X)
    logits = MLP(hidden=(16,), outputs=3).apply({"params": state.params}, X)
    np.testing.assert_allclose(probabilities, jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)


def test_bad_inputs_fail_before_compiling():
    t = trainer()
    with pytest.raises(ValueError, match="x and y must have the same number of examples, got 96 and 95"):
        t.fit(X, Y[:-1], verbose=0)
    with pytest.raises(ValueError, match=r"x must be finite, got NaN or Inf \(first at index \(3, 1\)\)"):
        t.fit(np.where(np.arange(X.size).reshape(X.shape) == 13, np.nan, X), Y, verbose=0)
    state = t.init(X)
    with pytest.raises(ValueError, match=r"x does not match the inputs the model was built for: expected x \(n, 4\), got x \(n, 5\)"):
        t.fit(np.ones((96, 5), np.float32), Y, state=state, verbose=0)
    with pytest.raises(ValueError, match=r"y must be integer class labels in \[0, 2\] \(3 classes\), got values from 0 to 3"):
        t.fit(X, np.where(Y == 2, 3, Y), verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.0"):
        t.fit(X, Y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        t.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"batch_size must be <= the number of training examples \(96\), got 200"):
        t.fit(X, Y, batch_size=200, verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        trainer(optimizer="adamm")
    with pytest.raises(ValueError, match="unknown loss 'sparse_crossentropy'"):
        trainer(loss="sparse_crossentropy")
    with pytest.raises(TypeError, match="callbacks must be jdl.callbacks.Callback instances"):
        t.fit(X, Y, callbacks=["early_stopping"], verbose=0)
    with pytest.raises(ValueError, match=r"y has shape \(96, 2\), but the model outputs \(batch, 1\)"):
        Trainer(MLP(outputs=1), loss="mse").fit(X, np.ones((96, 2)), verbose=0)


def test_binary_crossentropy_with_threshold_metrics():
    x, labels = X, (Y > 0).astype(np.int32)
    t = Trainer(MLP(hidden=(8,), outputs=1), loss="binary_crossentropy", optimizer=optim.adam(0.02),
                metrics=["accuracy", "precision", "recall"])
    state, history = t.fit(x, labels, epochs=10, batch_size=16, verbose=0)
    scores = t.evaluate(state, x, labels)
    probabilities = np.asarray(t.predict(state, x))[:, 0]
    predicted = (probabilities > 0.5).astype(int)
    assert scores["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    assert scores["precision"] == pytest.approx(np.sum(predicted & labels) / np.sum(predicted), abs=1e-6)
    assert history.history["accuracy"][-1] > 0.8


def test_l2_penalty_uses_the_training_set_size_everywhere():
    t = trainer(optimizer=optim.sgd(0.05, l2=3.0), metrics=[])
    state, history = t.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    kernels = sum(float(np.sum(np.square(p["kernel"]))) for p in state.params.values())
    data_only = Trainer(MLP(hidden=(16,), outputs=3), loss="sparse_categorical_crossentropy").evaluate(state, X, Y)["loss"]
    assert t.evaluate(state, X, Y)["loss"] == pytest.approx(data_only + 3.0 / (2 * 96) * kernels, rel=1e-5)
    subset_data_only = Trainer(MLP(hidden=(16,), outputs=3), loss="sparse_categorical_crossentropy").evaluate(
        state, X[:10], Y[:10])["loss"]
    assert t.evaluate(state, X[:10], Y[:10])["loss"] == pytest.approx(subset_data_only + 3.0 / (2 * 96) * kernels, rel=1e-5)


def test_fitting_again_with_the_same_shapes_does_not_recompile():
    t = trainer()
    t.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    with counting() as again:
        t.fit(X, Y, epochs=2, batch_size=16, verbose=0, seed=3)
    assert again.count == 0


def test_state_from_another_optimizer_is_flagged():
    state = trainer(optimizer=optim.sgd(0.1)).init(X)
    with pytest.warns(RuntimeWarning, match="another optimizer transformation"):
        trainer().fit(X, Y, epochs=1, verbose=0, state=state)


class _SowsActivityPenalty(nn.Module):
    """Dense 3 -> Dense 1 that adds ½‖h‖² per example to its cost through the "losses" collection."""

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Dense(3)(x)
        self.sow("losses", "activity", 0.5 * jnp.sum(h**2, axis=-1))
        return nn.Dense(1)(h)


def test_losses_a_model_sows_are_added_to_the_cost_with_sample_weights():
    rng = np.random.RandomState(0)
    x, y = rng.randn(20, 4).astype(np.float32), rng.randn(20, 1).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 20).astype(np.float32)
    trainer = jdl.Trainer(_SowsActivityPenalty(), loss="mse", optimizer=jdl.optim.sgd(0.01))
    state = trainer.init(x)

    def reference(params):
        out = _SowsActivityPenalty().apply({"params": params}, x)
        hidden = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
        per_example = jnp.mean((out - y) ** 2, axis=-1) + 0.5 * jnp.sum(hidden**2, axis=-1)
        return jnp.sum(w * per_example) / jnp.sum(w)

    cost, grads = jax.jit(jax.value_and_grad(reference))(state.params)
    assert trainer.evaluate(state, x, y, sample_weight=w)["loss"] == pytest.approx(float(cost), rel=1e-6)
    stepped, _ = trainer.train_step(state, (x, y, w))
    expected = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, state.params, jax.device_get(grads))
    for got, want in zip(jax.tree_util.tree_leaves(stepped.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert "losses" not in state.model_state


class _TokenTagger(nn.Module):
    """Embed 7 -> Dense 5 per time step: (batch, T) tokens -> (batch, T, 5) logits."""

    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(5)(nn.Embed(7, 4)(x))


def test_sequence_targets_average_over_time_steps_and_weight_every_step_of_an_example():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 7, (30, 6))
    y = (x + 1) % 5
    w = rng.uniform(0.5, 2.0, 30).astype(np.float32)
    trainer = jdl.Trainer(_TokenTagger(), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          weighted_metrics=["accuracy"])
    state = trainer.init(x)
    scores = trainer.evaluate(state, x, y, sample_weight=w)

    logits = np.asarray(_TokenTagger().apply({"params": state.params}, x), np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    token_loss = -np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    correct = logits.argmax(-1) == y
    assert scores["loss"] == pytest.approx(np.sum(w[:, None] * token_loss) / (6 * w.sum()), rel=1e-5)
    assert scores["weighted_accuracy"] == pytest.approx(np.sum(w[:, None] * correct) / (6 * w.sum()), rel=1e-6)
    assert scores["accuracy"] == pytest.approx(correct.mean(), rel=1e-6)


def test_lists_of_numbers_are_converted_as_numpy_does():
    x, y = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [1, 1, 0, 0]
    t = Trainer(MLP(hidden=(4,), outputs=2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    state = t.init(np.asarray(x, np.float32))
    assert t.evaluate(state, x, y) == t.evaluate(state, np.asarray(x, np.float32), np.asarray(y))
    rows = tuple(np.asarray(r, np.float32) for r in x)  # a tuple of arrays, for a model taking one input: stacked
    np.testing.assert_array_equal(t.predict(state, rows), t.predict(state, np.asarray(x, np.float32)))
    with pytest.raises(ValueError, match="rows have different lengths"):
        t.evaluate(state, [[0.0, 1.0], [1.0]], [1, 0])


def test_a_list_of_arrays_is_several_inputs_for_a_model_that_takes_several():
    from jdl.models.multitask import TwoInputTwoHead

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    t = Trainer(TwoInputTwoHead(input_dims=(4, 4)), loss={"class": "sparse_categorical_crossentropy", "value": "mse"})
    state = t.init([a, b])
    assert [path for path, _, _ in state.input_spec] == ["[0]", "[1]"], "two inputs, not one stacked (2, 6, 4) array"
    assert inputs.model_inputs(MLP(hidden=(2,)), [a, b]).shape == (2, 6, 4), "one input: stacked"


def diverging():
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    return x, (1e3 * x).astype(np.float32), Trainer(MLP(hidden=(8,), outputs=1), loss="mse", optimizer=optim.sgd(10.0))


def test_a_non_finite_step_leaves_the_state_of_a_step_by_step_guarded_loop():
    """fit's unguarded chunks + guarded re-run on failure == Trainer.train_step (guarded) batch by batch."""
    x, y, t = diverging()
    with pytest.warns(RuntimeWarning, match="Non-finite"):
        state, history = t.fit(x, y, epochs=20, batch_size=8, shuffle=False, verbose=0)
    ref = t.init(x)
    failed = None
    for step in range(20 * 4):
        start = 8 * (step % 4)
        ref, logs = t.train_step(ref.replace(examples=np.float32(32)), (x[start:start + 8], y[start:start + 8]))
        if not bool(logs["finite"]):
            failed = step
            break
    assert failed is not None and f"global step {failed}," in history.stop_reason
    assert int(state.step) == failed
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(ref.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert len(history.epoch) == failed // 4 + 1


MARKER = 7.0


@jax.custom_vjp
def poison(h, x):
    """h, unchanged; its gradient is NaN in the rows whose first feature is MARKER (a finite loss, a NaN gradient)."""
    return h


poison.defvjp(lambda h, x: (h, x),
              lambda x, g: (jnp.where(x[:, :1] == MARKER, jnp.nan, 1.0) * g, jnp.zeros_like(x)))


class Poisoned(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Dense(4, name="hidden")(x)
        return nn.Dense(1, name="head")(poison(h, x))


@pytest.mark.parametrize("row", [24, 40, 56], ids=["last-step-of-a-chunk", "mid-chunk", "last-step-of-the-epoch"])
def test_a_non_finite_gradient_under_a_finite_loss_is_found_at_its_step(row):
    """Unguarded chunks check only the loss per step, and the parameters once per chunk: a NaN gradient with a finite
    loss is still stopped at its own step, with the state a step-by-step guarded loop reaches (batches of 8, chunks
    of 4 steps; row 24 is in step 3, the last step of the first chunk; row 40 in step 5; row 56 in step 7, the
    epoch's last, which only the check of the parameters after the chunk catches before the next epoch)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    x[row, 0] = MARKER
    y = rng.normal(size=(64, 1)).astype(np.float32)
    t = Trainer(Poisoned(), loss="mse", optimizer=optim.adam(1e-2), steps_per_execution=4)
    with pytest.warns(RuntimeWarning, match="Non-finite"):
        state, history = t.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    ref = t.init(x)
    failed = None
    for step in range(8):
        batch = (x[8 * step:8 * step + 8], y[8 * step:8 * step + 8])
        ref, logs = t.train_step(ref.replace(examples=np.float32(64)), batch)
        if not bool(logs["finite"]):
            failed = step
            break
    assert failed == row // 8 and f"global step {failed}," in history.stop_reason, history.stop_reason
    assert "hidden/" in history.stop_reason.split("first non-finite:")[1]
    assert int(state.step) == failed and len(history.epoch) == 1
    assert params_equal(state.params, ref.params)


def test_a_callback_that_replaces_states_per_dispatch_gets_the_guarded_chunks():
    """With an on_train_batch_end that may return a state, every chunk is guarded: same stop, same state."""
    x, y, t = diverging()
    seen = []
    with pytest.warns(RuntimeWarning, match="Non-finite"):
        fast, fast_history = t.fit(x, y, epochs=20, batch_size=8, shuffle=False, verbose=0)
        slow, slow_history = t.fit(x, y, epochs=20, batch_size=8, shuffle=False, verbose=0, callbacks=[
            cb.LambdaCallback(on_train_batch_end=lambda steps, state, logs: seen.append(steps))])
    assert fast_history.stop_reason == slow_history.stop_reason and int(fast.step) == int(slow.step)
    assert params_equal(fast.params, slow.params) and seen
