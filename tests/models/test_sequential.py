"""Sequential: Keras' parameter counts and names, Trainer results equal to a hand-written Flax module, fast per-example norms."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.models import Sequential, count_params, summary
from jdl.models.summary import table
from jdl.nn import GRU, LSTM, Activation, BatchNormalization, Conv2D, Dense, Dropout, Embedding, Flatten, MaxPooling2D
from tests.numeric import random_variables

# keras 3.15.1, JAX backend: `KERAS_BACKEND=jax python -m tests.keras_reference.sequential_params`
# (each model in a fresh session); per layer (name, output shape, count_params), then trainable, non-trainable.
KERAS_3_15_1 = {
    "notes_ann": ([("dense", (None, 11), 132), ("dense_1", (None, 7), 84), ("dense_2", (None, 1), 8)], 224, 0),
    "lecture_cnn": ([("conv2d", (None, 30, 30, 32), 896), ("max_pooling2d", (None, 15, 15, 32), 0),
                     ("flatten", (None, 7200), 0), ("dense", (None, 64), 460864), ("dense_1", (None, 10), 650)],
                    462410, 0),
    "batch_norm_mlp": ([("dense", (None, 8), 56), ("batch_normalization", (None, 8), 32),
                        ("activation", (None, 8), 0), ("dropout", (None, 8), 0), ("dense_1", (None, 1), 9)], 81, 16),
    "token_rnn": ([("embedding", (None, 12, 8), 400), ("lstm", (None, 12, 16), 1600), ("gru", (None, 5), 345),
                   ("dense", (None, 3), 18)], 2363, 0),
}


def notes_ann():
    """The notes' classifier: classifier = Sequential(); .add(Dense(units=11, activation='relu')) ... sigmoid."""
    classifier = Sequential()
    classifier.add(Dense(units=11, activation="relu"))
    classifier.add(Dense(units=7, activation="relu"))
    classifier.add(Dense(units=1, activation="sigmoid"))
    return classifier, np.zeros((1, 11), np.float32)


MODELS = {
    "notes_ann": notes_ann,
    "lecture_cnn": lambda: (Sequential([Conv2D(32, (3, 3), activation="relu"), MaxPooling2D((2, 2)), Flatten(),
                                        Dense(64, activation="relu"), Dense(10)]), np.zeros((1, 32, 32, 3), np.float32)),
    "batch_norm_mlp": lambda: (Sequential([Dense(8), BatchNormalization(), Activation("relu"), Dropout(0.3), Dense(1)]),
                               np.zeros((1, 6), np.float32)),
    "token_rnn": lambda: (Sequential([Embedding(50, 8), LSTM(16, return_sequences=True), GRU(5), Dense(3)]),
                          np.zeros((1, 12), np.int32)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_counts_names_and_shapes_equal_keras(name):
    model, sample = MODELS[name]()
    layers, trainable, non_trainable = KERAS_3_15_1[name]
    result = table(model, sample)
    assert [(r.name, r.output_shape, r.params) for r in result.rows] == layers
    assert (result.trainable, result.non_trainable) == (trainable, non_trainable)
    assert count_params(model, sample) == trainable + non_trainable
    if name == "lecture_cnn":
        assert count_params(jdl.models.lecture_cnn(), sample) == trainable  # jdl's own preset counts the same
    text = summary(model, sample, print_fn=None)
    assert f"Total params: {trainable + non_trainable:,}" in text
    assert f"Non-trainable params: {non_trainable:,}" in text


def test_summary_prints_keras_table(capsys):
    model, sample = notes_ann()
    model.summary(sample)
    out = capsys.readouterr().out
    assert 'Model: "sequential"' in out and "dense_1 (Dense)" in out and "(None, 7)" in out
    assert "Total params: 224 (896.00 B)" in out  # Keras: 224 float32 scalars = 896 bytes
    assert model.count_params(sample) == 224


def test_parameters_are_named_as_keras_names_the_layers():
    model = Sequential([Dense(4, activation="relu", name="hidden"), Dropout(0.5), Dense(4), Dense(2)])
    assert model.names == ("hidden", "dropout", "dense", "dense_1")
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 3)))["params"]
    assert jax.tree_util.tree_map(lambda a: a.shape, params) == {
        "hidden": {"kernel": (3, 4), "bias": (4,)}, "dense": {"kernel": (4, 4), "bias": (4,)},
        "dense_1": {"kernel": (4, 2), "bias": (2,)}}
    popped = model.pop()
    assert popped.units == 2 and model.names == ("hidden", "dropout", "dense")


def test_final_sigmoid_is_left_to_predict_and_applied_with_logits_false():
    layers = [Dense(3, activation="relu"), Dense(1, activation="sigmoid")]
    folded, applied = Sequential(layers), Sequential(layers, logits=False)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    variables = random_variables(folded, x)
    logits, probabilities = jax.jit(lambda v, x: (folded.apply(v, x), applied.apply(v, x)))(variables, x)
    np.testing.assert_allclose(np.asarray(probabilities), 1 / (1 + np.exp(-np.asarray(logits))), rtol=1e-6)
    assert folded.output_activation == "sigmoid" and applied.output_activation == "linear"
    softmax = Sequential([Dense(3), Activation("softmax")])
    assert softmax.output_activation == "softmax" and Sequential([Dense(2)]).output_activation is None


class HandWritten(nn.Module):
    """The same network written in plain Flax (independent of jdl.nn's Keras layers), parameters named alike."""

    output_activation = "sigmoid"

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(8, kernel_init=nn.initializers.glorot_uniform(), name="dense")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3, name="batch_normalization")(x)
        x = nn.relu(x)
        x = nn.Dropout(0.3, deterministic=not train, name="dropout")(x)
        return nn.Dense(1, kernel_init=nn.initializers.glorot_uniform(), name="dense_1")(x)


def blobs(n=160, seed=0):
    """Two Gaussian blobs in 4-D, 2 units apart along every axis: a linearly separable binary task."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)).astype(np.float32) + 1.0 * (2 * y[:, None] - 1)
    return x, y.astype(np.float32)


def test_sequential_trains_under_trainer_and_equals_the_hand_written_module():
    x, y = blobs()
    model = Sequential([Dense(8), BatchNormalization(), Activation("relu"), Dropout(0.3), Dense(1, activation="sigmoid")])
    results = []
    for candidate in (model, HandWritten()):
        trainer = jdl.Trainer(candidate, loss="binary_crossentropy", optimizer=jdl.optim.adam(0.02),
                              metrics=["accuracy"])
        results.append((trainer, *trainer.fit(x[:128], y[:128], epochs=8, batch_size=32, verbose=0, seed=3)))
    (trainer, state, history), (_, ref_state, ref_history) = results
    assert trainer.evaluate(state, x[128:], y[128:])["accuracy"] >= 0.9  # 32 held-out points (Bayes accuracy ≈ 0.98)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(state.model_state["batch_stats"]) == {"batch_normalization"}
    assert jax.tree_util.tree_structure(state.params) == jax.tree_util.tree_structure(ref_state.params)
    for a, b in zip(jax.tree_util.tree_leaves((state.params, state.model_state)),
                    jax.tree_util.tree_leaves((ref_state.params, ref_state.model_state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert history.history == ref_history.history


def loop_norms(loss_fn, params, x, y):
    """‖∇_θ ℓ(θ; x_i, y_i)‖ by a Python loop of jax.grad, one example at a time."""
    grad = jax.jit(jax.grad(loss_fn))
    norms = []
    for i in range(x.shape[0]):
        leaves = jax.tree_util.tree_leaves(grad(params, x[i], y[i]))
        norms.append(np.sqrt(sum(float(jnp.sum(jnp.square(g))) for g in leaves)))
    return np.array(norms)


def test_per_example_norms_take_the_fast_path_and_equal_a_loop_of_grad():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 11, (4, 5)).astype(np.int32), rng.integers(0, 3, 4).astype(np.int32)

    def loss_of(model):
        def loss_fn(p, xi, yi):
            return jdl.losses.sparse_categorical_crossentropy(yi[None], model.apply({"params": p}, xi[None]))
        return loss_fn

    recurrent = Sequential([Embedding(11, 4), LSTM(5, return_sequences=True), GRU(4), Dropout(0.2), Dense(3)])
    coverage = jdl.diagnostics.per_example.fast_path_coverage(loss_of(recurrent), random_variables(recurrent, x)["params"],
                                                              (x, y))
    assert sorted(coverage["fast"]) == ["dense", "embedding", "gru/cell", "gru/cell/input", "lstm/cell", "lstm/cell/input"]
    assert coverage["vmap"] == []
    model = Sequential([Embedding(11, 4), Flatten(), Dense(6, activation="relu"), Dropout(0.2), Dense(3)])
    params = random_variables(model, x)["params"]
    assert jdl.diagnostics.per_example.fast_path_coverage(loss_of(model), params, (x, y))["vmap"] == []
    fast = jdl.diagnostics.per_example_grad_norms(loss_of(model), params, (x, y), method="fast")
    np.testing.assert_allclose(np.asarray(fast), loop_norms(loss_of(model), params, x, y), rtol=2e-5)


def test_bad_layers_and_missing_sample_input_are_refused():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a layer .*got str 'relu'"):
        Sequential([Dense(2), "relu"])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a layer instance, got the class Dense"):
        Sequential([Dense])
    with pytest.raises(TypeError, match="layer must be a layer"):
        Sequential().add(jax.nn.relu)
    with pytest.raises(TypeError, match="layers must be a list or tuple"):
        Sequential(Dense(2))
    with pytest.raises(ValueError, match="unique"):
        Sequential([Dense(2, name="a"), Dense(2, name="a")])
    with pytest.raises(ValueError, match="mask_zero"):
        Sequential([Embedding(5, 2, mask_zero=True), LSTM(2)])
    model, sample = notes_ann()
    with pytest.raises(TypeError, match="summary needs sample_input"):
        summary(model)
    with pytest.raises(TypeError, match="summary needs sample_input"):
        model.summary()
    with pytest.raises(TypeError, match="count_params needs sample_input"):
        count_params(model)
    with pytest.raises(ValueError, match="leading batch axis"):
        summary(model, np.float32(1.0))
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential().init(jax.random.PRNGKey(0), sample)
