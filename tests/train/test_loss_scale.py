"""float16 dynamic loss scaling: overflowing steps are skipped and logged, small gradients survive, resume is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from jdl.diagnostics import report
from jdl.models import MLP
from jdl.train import Trainer, checkpoint, loss_scale

rng = np.random.default_rng(0)
X = rng.normal(size=(96, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
POISONED = X.copy()
POISONED[37] = (0.0, 0.0, 3.0e4, 0.0)  # finite in float16 (max 65504); predicted class 1 with certainty
LABELS = Y.copy()
LABELS[37] = 0  # so its float16 gradient overflows at S = 2¹⁵ while its float32 cost stays finite


def trainer(compute="float16", learning_rate=0.1, **kwargs):
    return Trainer(MLP(hidden=(8,), outputs=2), loss="sparse_categorical_crossentropy",
                   optimizer=optim.sgd(learning_rate), precision=compute, **kwargs)


def test_the_scale_halves_after_an_overflow_doubles_after_a_period_of_finite_steps_and_stays_at_least_one():
    scale = loss_scale.initial(scale=4.0, period=3)
    seen = []
    for finite in (True, True, True, True, False, False, False, False, True):
        scale = scale.after(jnp.asarray(finite))
        seen.append((float(scale.scale), int(scale.good_steps)))
    assert seen == [(4.0, 1), (4.0, 2), (8.0, 0), (8.0, 1), (4.0, 0), (2.0, 0), (1.0, 0), (1.0, 0), (1.0, 1)]


def test_only_float16_gets_a_loss_scale_and_it_starts_at_keras_defaults():
    assert trainer("float32").init(X).loss_scale is None and trainer("bfloat16").init(X).loss_scale is None
    scale = trainer().init(X).loss_scale
    assert float(scale.scale) == 2.0 ** 15 and int(scale.good_steps) == 0 and scale.period == 2000


def test_an_overflowing_float16_step_is_skipped_leaving_the_state_bit_for_bit_unchanged():
    t = trainer()
    state = t.init(X)
    after, logs = t.train_step(state, (POISONED[32:48], LABELS[32:48]))
    assert bool(logs["finite"]) and float(logs["skipped"]) == 1.0 and np.isfinite(float(logs["loss"]))
    assert int(after.step) == 1 and float(after.loss_scale.scale) == 2.0 ** 14
    for old, new in zip(jax.tree_util.tree_leaves((state.params, state.opt_state)),
                        jax.tree_util.tree_leaves((after.params, after.opt_state))):
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old))
    clean, logs = t.train_step(after, (X[32:48], Y[32:48]))
    assert float(logs["skipped"]) == 0.0 and int(clean.loss_scale.good_steps) == 1
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(clean.params),
                                                      jax.tree_util.tree_leaves(after.params)))


def test_scaling_keeps_gradients_that_float16_alone_flushes_to_zero():
    """With a cost weighted 1e-7 the float16 backward pass underflows; scaled by 2¹⁵ it matches float32.

    The learning rate 1e6 makes each step 0.1·∇(unweighted cost), far above float32's resolution of the parameters.
    """
    tiny = {"loss_weights": 1e-7, "learning_rate": 1e6}
    state = trainer("float32", **tiny).init(X)
    batch = (X[:32], Y[:32])
    full = trainer("float32", **tiny).train_step(state, batch)[0]
    half = trainer("float16", **tiny).train_step(state.replace(loss_scale=loss_scale.initial()), batch)[0]
    model = MLP(hidden=(8,), outputs=2)

    def unscaled_float16_cost(params):  # float16 forward and backward, no scaling, written out by hand
        half_params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float16), params)
        logits = model.apply({"params": half_params}, batch[0].astype(jnp.float16)).astype(jnp.float32)
        return 1e-7 * optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    plain = jax.grad(unscaled_float16_cost)(state.params)
    kernel = ("Dense_0", "kernel")
    full_step = np.asarray(state.params[kernel[0]][kernel[1]] - full.params[kernel[0]][kernel[1]])
    half_step = np.asarray(state.params[kernel[0]][kernel[1]] - half.params[kernel[0]][kernel[1]])
    assert np.count_nonzero(np.asarray(plain[kernel[0]][kernel[1]])) < 0.5 * full_step.size, "float16 alone underflows"
    assert np.count_nonzero(full_step) == full_step.size
    np.testing.assert_allclose(half_step, full_step, rtol=0, atol=1e-2 * np.abs(full_step).max())  # float16's sums


def test_a_float16_fit_with_an_injected_overflow_skips_that_step_each_epoch_logs_and_reports_it(capsys, tmp_path):
    state, history = trainer().fit(POISONED, LABELS, epochs=3, batch_size=16, shuffle=False, verbose=2, seed=0)
    assert history.stop_reason is None and len(history.epoch) == 3
    assert history.history["skipped_steps"] == [1.0, 1.0, 1.0]
    assert history.history["loss_scale"] == [2.0 ** 14, 2.0 ** 13, 2.0 ** 12]
    assert int(state.step) == 18 and int(state.loss_scale.good_steps) == 3  # batches 3..6 of the last epoch
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree_util.tree_leaves(state.params))
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "skipped_steps: 1" in line and "loss_scale: 1.638e+04" in line], lines
    page, _ = report.training_report(history=history, trainer=trainer(), state=state).save(tmp_path)
    text = page.read_text()
    assert ("float16 dynamic loss scaling: 3 steps skipped for a gradient that overflowed float16, in epochs "
            "1 (1), 2 (1), 3 (1); the loss scale ended at 4096.") in text
    assert "<img alt='training curves'" in text and "skipped_steps</" not in text
    assert "<td>precision</td><td>float16</td>" in text


def test_a_float16_fit_resumed_from_a_checkpoint_ends_bit_identical_with_its_loss_scale(tmp_path):
    t = trainer()
    whole, _ = t.fit(POISONED, LABELS, epochs=4, batch_size=16, verbose=0, seed=1)
    half, _ = t.fit(POISONED, LABELS, epochs=2, batch_size=16, verbose=0, seed=1)
    checkpoint.save(tmp_path / "ckpt", half, int(half.step))
    restored, _ = checkpoint.restore(tmp_path / "ckpt", t.init(POISONED))
    assert float(restored.loss_scale.scale) == float(half.loss_scale.scale) < 2.0 ** 15
    resumed, _ = t.fit(POISONED, LABELS, epochs=4, batch_size=16, verbose=0, seed=1, state=restored, initial_epoch=2)
    for a, b in zip(jax.tree_util.tree_leaves(whole.arrays()), jax.tree_util.tree_leaves(resumed.arrays())):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_bad_scale_settings_name_the_argument():
    with pytest.raises(ValueError, match="scale"):
        loss_scale.initial(scale=0.0)
    with pytest.raises(ValueError, match="period"):
        loss_scale.initial(period=0)
    with pytest.raises(TypeError, match="period"):
        loss_scale.initial(period=2.5)


def test_float16_population_members_keep_their_own_loss_scale_and_equal_separate_fits():
    from jdl.train.population import Population

    t = trainer()
    states, histories = t.fit(POISONED, LABELS, population=Population(seed=[0, 1]), epochs=2, batch_size=16,
                              verbose=0)
    for seed, member, history in zip((0, 1), states, histories):
        alone, alone_history = t.fit(POISONED, LABELS, epochs=2, batch_size=16, verbose=0, seed=seed)
        assert history.history == alone_history.history and sum(history.history["skipped_steps"]) >= 1, seed
        for a, b in zip(jax.tree_util.tree_leaves(alone.arrays()), jax.tree_util.tree_leaves(member.arrays())):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=f"seed {seed}")


def test_a_grain_source_trains_float16_like_the_arrays_skips_included():
    import grain

    records = grain.MapDataset.range(len(POISONED)).map(lambda i: {"x": POISONED[i], "y": LABELS[i]})
    arrays, arrays_history = trainer().fit(POISONED, LABELS, epochs=2, batch_size=16, verbose=0, seed=1)
    source, source_history = trainer().fit(records, None, epochs=2, batch_size=16, verbose=0, seed=1)
    assert source_history.history == arrays_history.history and sum(arrays_history.history["skipped_steps"]) >= 1
    for a, b in zip(jax.tree_util.tree_leaves(arrays.arrays()), jax.tree_util.tree_leaves(source.arrays())):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
