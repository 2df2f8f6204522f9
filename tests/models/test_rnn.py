"""Recurrent models: training under jdl.Trainer, float64 finite-difference gradients, argument errors."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.models.rnn import RNNClassifier, SequenceClassifier, SequenceGenerator, SequenceTagger
from tests.numeric import jax_directional_differences, random_variables


@pytest.fixture(scope="module")
def sequences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6, 2)).astype(np.float32)
    return {"x": x, "lengths": rng.integers(1, 7, size=48), "v": rng.normal(size=(48, 3)).astype(np.float32)}


def fit(model, x, y, loss, epochs=6):
    trainer = jdl.Trainer(model, loss=loss, optimizer=jdl.optim.adam(2e-2))
    _, history = trainer.fit(x, y, epochs=epochs, batch_size=16, verbose=0, seed=0)
    return history.history["loss"]


def test_classifier_trains_on_padded_sequences(sequences):
    x, lengths = sequences["x"], sequences["lengths"]
    valid = np.arange(6)[None, :] < lengths[:, None]
    y = ((x[..., 0] * valid).sum(1) > 0).astype(np.int32)  # the sign of the valid prefix's sum
    losses = fit(SequenceClassifier(cell="gru", units=6, outputs=2), (x, lengths), y,
                 "sparse_categorical_crossentropy")
    assert losses[-1] < 0.8 * losses[0]


def test_tagger_trains_with_time_labels(sequences):
    x = sequences["x"]
    y = (np.cumsum(x[..., 0], axis=1) > 0).astype(np.int32)  # (batch, time) labels: sign of the running sum
    losses = fit(SequenceTagger(cell="lstm", units=6, outputs=2), x, y, "sparse_categorical_crossentropy")
    assert losses[-1] < 0.8 * losses[0]


def test_generator_trains(sequences):
    v = sequences["v"]
    y = np.sin(np.arange(5)[None, :, None] * 0.5 + v[:, :1, None]).astype(np.float32)
    losses = fit(SequenceGenerator(cell="simple_rnn", units=6, steps=5, outputs=1), v, y, "mse")
    assert losses[-1] < 0.8 * losses[0]


CASES = {
    "classifier": (SequenceClassifier(cell="lstm", units=2, bidirectional=True, outputs=2), "sequence"),
    "tagger": (SequenceTagger(cell="gru", units=2, outputs=3), "sequence"),
    "generator": (SequenceGenerator(cell="lstm", units=2, steps=3, outputs=1), "vector"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_finite_differences(name, x64):
    model, kind = CASES[name]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 2)) if kind == "sequence" else rng.normal(size=(2, 2))
    inputs = (x, np.array([3, 2])) if kind == "sequence" else x
    params = random_variables(model, jax.tree_util.tree_map(jnp.asarray, inputs), dtype=np.float64)["params"]
    flat, unflatten = jax.flatten_util.ravel_pytree(params)
    out_shape = jax.eval_shape(lambda p: model.apply({"params": p}, inputs), params).shape
    weights = rng.normal(size=out_shape)

    def loss(v):
        return jnp.sum(jnp.tanh(model.apply({"params": unflatten(v)}, inputs)) * weights)

    grad = np.asarray(jax.jit(jax.grad(loss))(flat))
    directions = rng.normal(size=(8, flat.size))  # directional derivatives g·d, each by a central difference
    want = jax_directional_differences(loss, np.asarray(flat), directions)
    assert np.abs(want).max() > 1e-2
    np.testing.assert_allclose(directions @ grad, want, rtol=1e-6, atol=1e-8)


def test_outputs_and_alias(sequences):
    x = jnp.asarray(sequences["x"][:4])
    assert RNNClassifier is SequenceClassifier
    shapes = {
        "classifier": jax.eval_shape(lambda: SequenceClassifier(units=3, outputs=5).init_with_output(jax.random.key(0), x))[0],
        "tagger": jax.eval_shape(lambda: SequenceTagger(units=3, outputs=5, bidirectional=True).init_with_output(
            jax.random.key(0), x))[0],
        "generator": jax.eval_shape(lambda: SequenceGenerator(units=3, steps=7, outputs=2).init_with_output(
            jax.random.key(0), x[:, 0]))[0],
    }
    assert shapes["classifier"].shape == (4, 5)
    assert shapes["tagger"].shape == (4, 6, 5)
    assert shapes["generator"].shape == (4, 7, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown cell 'lstn'"):
        SequenceClassifier(cell="lstn")
    with pytest.raises(ValueError, match="units must be > 0"):
        SequenceTagger(units=0)
    with pytest.raises(TypeError, match="layers must be an integer"):
        SequenceClassifier(layers=1.5)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        SequenceClassifier(dropout=1.0)
    with pytest.raises(ValueError, match="bidirectional must be False"):
        SequenceGenerator(bidirectional=True)
    with pytest.raises(ValueError, match="steps must be > 0"):
        SequenceGenerator(steps=0)
    model = SequenceClassifier(units=2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\)"):
        model.init(jax.random.key(0), jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="seq_lengths must be <= the sequence length 4"):
        model.init(jax.random.key(0), (jnp.ones((2, 4, 1)), np.array([5, 1])))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, features\)"):
        SequenceGenerator(units=2).init(jax.random.key(0), jnp.ones((2, 3, 1)))


def test_token_models_skip_zero_padding_as_keras_mask_zero(x64):
    """mask_zero on post-padded tokens equals the same model given the lengths instead (seq_lengths: each direction
    of a Bidirectional stack reads only the first L_b steps, checked against a Python loop in tests/nn), for the
    classifier's last outputs and the tagger's outputs at real steps."""
    rng = np.random.default_rng(3)
    lengths = np.array([5, 2, 4])
    tokens = rng.integers(1, 7, (3, 5)) * (np.arange(5)[None, :] < lengths[:, None])
    options = dict(units=3, bidirectional=True, outputs=2, vocab_size=7, embed_dim=2)
    for kind, cell in ((SequenceClassifier, "lstm"), (SequenceTagger, "gru")):
        masked, plain = kind(cell=cell, mask_zero=True, **options), kind(cell=cell, **options)
        params = random_variables(masked, jnp.asarray(tokens), dtype=np.float64)
        got, want = jax.jit(lambda p, t, n: (masked.apply(p, t), plain.apply(p, (t, n))))(params, tokens, lengths)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        if kind is SequenceTagger:
            assert not np.allclose(got[0], got[1])  # not all rows alike


def test_token_inputs_bad_values_are_named():
    model = SequenceClassifier(units=2, vocab_size=5, embed_dim=2, mask_zero=True)
    variables = random_variables(model, jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"x must hold token ids in \[0, 4\] \(vocab_size=5\), got values from 0 to 5"):
        model.apply(variables, np.array([[1, 2, 5], [0, 0, 0]]))
    with pytest.raises(TypeError, match="x must be an integer array of token ids"):
        model.apply(variables, "some words")
    with pytest.raises(TypeError, match="dtype float"):
        model.apply(variables, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time\) of token ids"):
        model.apply(variables, np.ones((2, 3, 1), np.int32))
    with pytest.raises(ValueError, match="mask_zero=True needs token inputs: set vocab_size"):
        SequenceTagger(mask_zero=True)
    with pytest.raises(ValueError, match="vocab_size must be > 0"):
        SequenceClassifier(vocab_size=0)
