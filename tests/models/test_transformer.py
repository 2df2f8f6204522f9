"""TransformerClassifier and CausalLM: masking, causality, generation, attention maps, training, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.models.transformer import CausalLM, TransformerClassifier, attention_maps, generate
from tests.numeric import jax_central_difference

TINY = dict(vocab_size=6, max_length=5, embed_dim=4, num_heads=2, ff_dim=6, num_layers=1)


def fit(model, x, y):
    """Six full-batch Adam epochs under jdl.Trainer: (params, per-epoch losses)."""
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-2))
    state, history = trainer.fit(x, y, epochs=6, batch_size=None, verbose=0, seed=0)
    return {"params": state.params}, history.history["loss"]


@pytest.fixture(scope="module")
def classifier():
    """A classifier trained a few steps (the training test reads its losses; the others use its parameters)."""
    model = TransformerClassifier(**TINY, outputs=3, pad_id=0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, size=(32, 5))
    x[:16, 3:] = 0
    variables, losses = fit(model, x, x[:, 0] % 3)
    tokens = np.array([[3, 1, 4, 0, 0], [5, 2, 1, 1, 3]])
    return model, variables, tokens, jax.jit(model.apply), losses


@pytest.fixture(scope="module")
def language_model():
    """A causal LM trained a few steps on sequences whose next token is the previous one + 1 or + 2 (mod 6)."""
    model = CausalLM(**{**TINY, "max_length": 8})
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.integers(1, 3, size=(32, 9)), axis=1) % 6
    variables, losses = fit(model, x[:, :-1], x[:, 1:])
    tokens = np.array([[1, 2, 3, 4, 5, 0, 1, 2], [5, 4, 3, 2, 1, 0, 5, 4]])
    return model, variables, tokens, jax.jit(model.apply), losses


def test_classifier_ignores_padding(classifier):
    model, variables, tokens, apply, _ = classifier
    logits = np.asarray(apply(variables, tokens))
    assert logits.shape == (2, 3)
    short = np.asarray(apply(variables, tokens[:1, :3]))  # the same sequence without padding
    np.testing.assert_allclose(logits[0], short[0], atol=1e-5)
    shifted = tokens.copy()
    shifted[0, 1] = 2  # a real token changes the prediction
    assert not np.allclose(np.asarray(apply(variables, shifted))[0], logits[0], atol=1e-4)


def test_classifier_attention_maps_exclude_padding_and_sum_to_one(classifier):
    model, variables, tokens, _, _ = classifier
    maps = attention_maps(model, variables["params"], tokens)
    assert len(maps) == 1 and maps[0].shape == (2, 2, 6, 6)
    for weights in maps:
        weights = np.asarray(weights)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(weights[0, :, :, 4:], 0.0)  # keys 4, 5 are the two pads ([CLS] is key 0)
        assert np.all(weights[1] > 0)


def test_causal_lm_output_at_t_ignores_later_tokens(language_model):
    model, variables, tokens, apply, _ = language_model
    base = np.asarray(apply(variables, tokens))
    assert base.shape == (2, 8, 6)
    for t in (0, 3, 6):
        changed = tokens.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % 6
        out = np.asarray(apply(variables, changed))
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5)
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-4)
    maps = attention_maps(model, variables, tokens)
    assert len(maps) == 1
    np.testing.assert_array_equal(np.triu(np.asarray(maps[0])[0, 0], 1), 0.0)


def test_greedy_generation_matches_a_step_by_step_argmax_loop(language_model):
    model, variables, _, apply, _ = language_model
    prompt = np.array([[1, 2, 3], [4, 4, 1]])
    out = np.asarray(model.generate(variables["params"], prompt, 4))
    assert out.shape == (2, 7)
    np.testing.assert_array_equal(out[:, :3], prompt)
    sequence = prompt.copy()
    for _ in range(4):  # the reference: re-run the model on the growing sequence, no buffer
        padded = np.pad(sequence, ((0, 0), (0, 8 - sequence.shape[1])))
        next_token = np.asarray(apply(variables, padded))[:, sequence.shape[1] - 1].argmax(-1)
        sequence = np.concatenate([sequence, next_token[:, None]], axis=1)
    np.testing.assert_array_equal(out, sequence)
    sampled = [np.asarray(generate(model, variables, prompt, 5, temperature=1.0, seed=s)) for s in (3, 3)]
    np.testing.assert_array_equal(sampled[0], sampled[1])
    assert sampled[0].shape == (2, 8) and sampled[0].min() >= 0 and sampled[0].max() < 6
    with pytest.raises(ValueError, match=r"prompt length \(3\) \+ num_tokens \(6\) must be <= max_length=8"):
        generate(model, variables, prompt, 6)


@pytest.mark.parametrize("name", ["classifier", "language_model"])
def test_models_train_with_the_trainer(name, request):
    losses = request.getfixturevalue(name)[-1]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.05, losses


def gradient_check(model, variables, tokens, labels):
    """jax.grad of the float64 mean cross-entropy w.r.t. every parameter against central differences."""
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables["params"]))
    flat = flat + 0.1 * jnp.asarray(np.random.default_rng(0).normal(size=flat.shape))  # break symmetric inits

    @jax.jit
    def loss(vector):
        logits = model.apply({"params": unravel(jnp.asarray(vector))}, tokens)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    assert jax.eval_shape(loss, flat).dtype == jnp.float64
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(flat), jax_central_difference(loss, np.asarray(flat)),
                               rtol=1e-5, atol=1e-8)


def test_classifier_gradient_matches_finite_differences(classifier, x64):
    model, variables, tokens, _, _ = classifier
    gradient_check(model, variables, tokens, np.array([0, 2]))


def test_causal_lm_gradient_matches_finite_differences(language_model, x64):
    model, variables, tokens, _, _ = language_model
    gradient_check(model, variables, tokens[:, :-1], tokens[:, 1:])


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: TransformerClassifier(**{**TINY, "embed_dim": 5}), ValueError,
         r"embed_dim must be divisible by num_heads \(2\), got embed_dim=5"),
        (lambda: CausalLM(**{**TINY, "num_layers": 0}), ValueError, "num_layers must be > 0"),
        (lambda: TransformerClassifier(**TINY, outputs=0), ValueError, "outputs must be > 0"),
        (lambda: CausalLM(**{**TINY, "dropout": 1.5}), ValueError, r"dropout must be in \[0, 1\)"),
        (lambda: CausalLM(**{**TINY, "vocab_size": 2.0}), TypeError, "vocab_size must be an integer"),
    ],
)
def test_bad_configuration_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_token_errors(classifier):
    model, variables, _, _, _ = classifier
    with pytest.raises(ValueError, match=r"tokens must have between 1 and max_length=5 time steps, got shape \(1, 6\)"):
        model.apply(variables, np.ones((1, 6), np.int32))
    with pytest.raises(ValueError, match=r"tokens must be integer class labels in \[0, 5\]"):
        model.apply(variables, np.array([[1, 6]]))
    with pytest.raises(ValueError, match="tokens must hold integer class labels, got non-integer values"):
        model.apply(variables, np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match=r"tokens must have shape \(batch, T\), got shape \(3,\)"):
        model.apply(variables, np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="model must be a CausalLM"):
        generate(model, variables, np.array([[1]]), 1)
