import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.models.multitask import TwoInputTwoHead
from tests.numeric import jax_central_difference, random_variables

rng = np.random.default_rng(0)
N = 64
A = rng.normal(size=(N, 11)).astype(np.float32)
B = rng.normal(size=(N, 5)).astype(np.float32)
CLASSES = (np.argmax(A[:, :4] + B[:, :1], axis=1)).astype(np.int32)
VALUES = (A[:, 4:5] - 2 * B[:, 1:2]).astype(np.float32)
WEIGHTS = {"class": 1.0, "value": 0.5}


def head_costs(params, apply):
    """(J_class, J_value): mean cross-entropy by log-sum-exp written here, and the mean squared error."""
    out = apply({"params": params}, {"a": A, "b": B})
    logits = np.asarray(out["class"], np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    j1 = -np.mean([log_p[i, CLASSES[i]] for i in range(N)])
    j2 = np.mean((np.asarray(out["value"], np.float64) - VALUES) ** 2)
    return j1, j2


@pytest.fixture(scope="module")
def fitted():
    model = TwoInputTwoHead()
    trainer = jdl.Trainer(model, loss={"class": "sparse_categorical_crossentropy", "value": "mse"},
                          loss_weights=WEIGHTS, optimizer=jdl.optim.adam(0.02), metrics={"class": ["accuracy"]})
    seen = []
    record = jdl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, state, logs: seen.append(state.params))
    state, history = trainer.fit({"a": A, "b": B}, {"class": CLASSES, "value": VALUES}, epochs=12,
                                 batch_size=None, verbose=0, callbacks=[record])
    return jax.jit(model.apply), trainer, state, history.history, seen


def test_two_heads_train_and_the_history_reports_weighted_total_of_per_head_costs(fitted):
    apply, _, _, history, seen = fitted
    assert {"loss", "class_loss", "value_loss", "class_accuracy"} <= set(history)
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    for epoch in (0, 5, 11):
        j1, j2 = head_costs(seen[epoch], apply)
        assert history["class_loss"][epoch] == pytest.approx(j1, rel=1e-5)
        assert history["value_loss"][epoch] == pytest.approx(j2, rel=1e-5)
        assert history["loss"][epoch] == pytest.approx(j1 + 0.5 * j2, rel=1e-5)


def test_evaluate_and_predict_return_both_heads(fitted):
    apply, trainer, state, _, _ = fitted
    scores = trainer.evaluate(state, {"a": A, "b": B}, {"class": CLASSES, "value": VALUES})
    j1, j2 = head_costs(state.params, apply)
    assert scores["loss"] == pytest.approx(j1 + 0.5 * j2, rel=1e-5)
    out = apply({"params": state.params}, (A, B))
    np.testing.assert_allclose(np.asarray(out["class"]), np.asarray(apply({"params": state.params}, {"a": A, "b": B})["class"]))
    assert out["class"].shape == (N, 4) and out["value"].shape == (N, 1)


def test_two_input_model_gradient_matches_finite_differences(x64):
    model = TwoInputTwoHead(hidden=3, value_hidden=2, activation="tanh")
    x = {"a": jnp.asarray(A[:4], jnp.float64), "b": jnp.asarray(B[:4], jnp.float64)}
    params = random_variables(model, x, dtype=np.float64)["params"]  # any weights: no init compile
    flat, unravel = ravel_pytree(params)
    labels, values = jnp.asarray(CLASSES[:4]), jnp.asarray(VALUES[:4], jnp.float64)

    def cost(vector):
        out = model.apply({"params": unravel(vector)}, x)
        j1 = jnp.mean(jax.nn.logsumexp(out["class"], axis=1) - jnp.take_along_axis(out["class"], labels[:, None], 1)[:, 0])
        return j1 + 0.5 * jnp.mean((out["value"] - values) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(cost))
    analytic = np.asarray(value_and_grad(flat)[1])
    numeric = jax_central_difference(cost, np.asarray(flat))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_two_input_model_rejects_bad_inputs():
    model = TwoInputTwoHead()
    init = lambda x: jax.eval_shape(model.init, jax.random.PRNGKey(0), x)  # noqa: E731
    with pytest.raises(ValueError, match=r"x is missing input\(s\) \['b'\]"):
        init({"a": jnp.ones((2, 11))})
    with pytest.raises(ValueError, match=r"input 'b' must have shape \(batch, 5\), got shape \(2, 6\)"):
        init({"a": jnp.ones((2, 11)), "b": jnp.ones((2, 6))})
    with pytest.raises(ValueError, match=r"x must hold 2 inputs"):
        init((jnp.ones((2, 11)),))
    with pytest.raises(TypeError, match="x must be a dict"):
        init(jnp.ones((2, 16)))
    with pytest.raises(ValueError, match="classes must be > 0"):
        TwoInputTwoHead(classes=0)
    with pytest.raises(ValueError, match="input_dims must hold two entries"):
        TwoInputTwoHead(input_dims=(11,))
    trainer = jdl.Trainer(model, loss={"class": "sparse_categorical_crossentropy", "value": "mse"})
    with pytest.raises(ValueError, match=r"missing input\(s\) \['b'\]|does not match the inputs"):
        trainer.fit({"a": A}, {"class": CLASSES, "value": VALUES}, epochs=1, verbose=0)


def test_the_notes_branches_class_from_a_and_value_from_b():
    model = TwoInputTwoHead()
    params = random_variables(model, {"a": A[:3], "b": B[:3]})["params"]
    apply = jax.jit(model.apply)
    out = apply({"params": params}, {"a": A[:3], "b": B[:3]})
    other_b = apply({"params": params}, {"a": A[:3], "b": B[3:6]})
    other_a = apply({"params": params}, {"a": A[3:6], "b": B[:3]})
    np.testing.assert_array_equal(out["class"], other_b["class"])
    np.testing.assert_array_equal(out["value"], other_a["value"])
    assert not np.allclose(out["class"], other_a["class"]) and not np.allclose(out["value"], other_b["value"])
    assert params["trunk"]["kernel"].shape == (11, 16) and params["value_hidden"]["kernel"].shape == (5, 4)
