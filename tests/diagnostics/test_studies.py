"""The vanishing/exploding studies reproduce the textbook numbers and their own gradients independently."""

import jax
import numpy as np
import optax
import pytest

from jdl.diagnostics import studies


def test_init_study_xavier_halves_the_variance_per_relu_layer_and_he_keeps_it():
    result = studies.init_study(depth=12, width=256, examples=500)
    assert result["ratio_per_layer"]["xavier_normal"] == pytest.approx(1 / np.sqrt(2), abs=0.04)
    assert result["ratio_per_layer"]["he_normal"] == pytest.approx(1.0, abs=0.04)
    assert len(result["stds"]["he_normal"]) == 12


def test_depth_study_shows_vanishing_for_sigmoid_with_uniform_init_and_not_for_relu_with_he():
    result = studies.depth_study(activations=("sigmoid", "relu"), inits=("uniform", "he_normal"), depths=(6,),
                                 batch_norm=(False,), width=32, examples=128)
    ratio = {(r["activation"], r["init"]): r["first_to_last"] for r in result["records"]}
    assert ratio[("sigmoid", "uniform")] < 1e-4
    assert ratio[("relu", "he_normal")] > 1e-2
    assert all(len(r["init_norms"]) == 8 for r in result["records"]), "input layer + 6 hidden + head"


def test_depth_study_norms_and_training_equal_an_independent_computation():
    result = studies.depth_study(activations=("tanh",), inits=("xavier_normal",), depths=(3,), batch_norm=(True,),
                                 residual=(True,), width=16, steps=5, learning_rate=0.05, clipnorm=1.0, examples=64)
    record = result["records"][0]
    x, y = studies._digits(64, 0)
    model = studies.DeepMLP(width=16, depth=3, activation="tanh", kernel_init="xavier_normal", batch_norm=True, residual=True)
    variables = model.init(jax.random.PRNGKey(0), x[:2])
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05))
    opt = tx.init(params)

    def loss_fn(p, s):
        logits, updates = model.apply({"params": p, **s}, x, train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    losses = []
    for step in range(6):
        (loss, updates), grads = value_and_grad(params, state)
        norms = [float(np.linalg.norm(grads[f"Dense_{i}"]["kernel"])) for i in range(5)]
        if step == 0:
            np.testing.assert_allclose(record["init_norms"], norms, rtol=1e-4)
        if step == 5:
            np.testing.assert_allclose(record["trained_norms"], norms, rtol=1e-3)
            break
        losses.append(float(loss))
        change, opt = tx.update(grads, opt, params)
        params, state = optax.apply_updates(params, change), {**state, **updates}
    np.testing.assert_allclose(record["losses"], losses, rtol=1e-4)
    assert record["finite"]


def test_study_arguments_are_checked():
    with pytest.raises(ValueError, match="activation"):
        studies.depth_study(activations=("sigmoidal",), depths=(2,))
    with pytest.raises(ValueError, match="depths"):
        studies.depth_study(activations=("relu",), inits=("he_normal",), depths=(0,))
    with pytest.raises(ValueError, match="depth"):
        studies.init_study(depth=-1)
