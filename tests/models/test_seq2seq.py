import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.data import sequences as seq
from jdl.models.seq2seq import Seq2Seq
from tests.numeric import jax_central_difference, random_variables

VOCAB = seq.VOCAB_SIZE


def tiny(cell="lstm", attention=True, **options):
    return Seq2Seq(VOCAB, embed_dim=5, units=6, cell=cell, attention=attention, max_output_length=6, **options)


@pytest.fixture(scope="module")
def data():
    return seq.reverse_digits(6, 2, 5, seed=0)


@pytest.fixture(scope="module", params=[("lstm", True), ("gru", False)], ids=lambda p: f"{p[0]}-att{int(p[1])}")
def setup(request, data):
    """(model, variables, jitted teacher-forced apply) for one cell/attention combination."""
    cell, attention = request.param
    model = tiny(cell, attention)
    variables = random_variables(model, data.inputs, seed=1)
    return model, variables, jax.jit(lambda v, enc, dec: model.apply(v, (enc, dec)))


def test_teacher_forced_logits_shape_and_causality(setup, data):
    model, variables, apply = setup
    enc, dec = data.inputs
    logits = np.asarray(apply(variables, enc, dec))
    assert logits.shape == (6, 6, VOCAB) and np.all(np.isfinite(logits))
    rng = np.random.default_rng(0)
    for t in range(dec.shape[1] - 1):
        changed = dec.copy()
        changed[:, t + 1:] = rng.integers(0, VOCAB, size=changed[:, t + 1:].shape)
        other = np.asarray(apply(variables, enc, changed))
        np.testing.assert_allclose(other[:, : t + 1], logits[:, : t + 1], rtol=1e-6, atol=1e-6)
        assert np.abs(other[:, t + 1:] - logits[:, t + 1:]).max() > 1e-4, "later steps do read their inputs"


def test_encoder_padding_is_ignored_and_source_matters(setup, data):
    model, variables, apply = setup
    enc, dec = data.inputs
    logits = np.asarray(apply(variables, enc, dec))
    padded = np.concatenate([enc, np.zeros((6, 3), enc.dtype)], axis=1)
    np.testing.assert_allclose(np.asarray(apply(variables, padded, dec)), logits, rtol=1e-5, atol=1e-6)
    flipped = enc.copy()
    flipped[:, 0] = np.where(enc[:, 0] == 4, 5, 4)
    assert np.abs(np.asarray(apply(variables, flipped, dec)) - logits).max() > 1e-4


def python_greedy(apply, variables, enc, steps):
    """Greedy decoding as a Python loop of teacher-forced calls on the prefix decoded so far."""
    batch = enc.shape[0]
    tokens = np.zeros((batch, steps), np.int32)
    logits_seen = np.zeros((batch, steps, VOCAB), np.float32)
    done = np.zeros(batch, bool)
    decoder = np.full((batch, steps), seq.PAD, np.int32)  # causal: the PAD after step t is never read at t
    decoder[:, 0] = seq.START
    for t in range(steps):
        logits = np.asarray(apply(variables, enc, decoder))[:, t]
        logits_seen[:, t] = logits
        token = np.where(done, seq.PAD, logits.argmax(axis=-1))
        done |= token == seq.END
        tokens[:, t] = token
        if t + 1 < steps:
            decoder[:, t + 1] = token
    return tokens, logits_seen


def test_greedy_decoding_equals_a_python_loop_and_pads_after_end(setup, data):
    model, variables, apply = setup
    enc = data.encoder_inputs
    params = jax.tree_util.tree_map(np.array, variables["params"])
    params["head"]["kernel"] *= 4  # logits that differ between rows and steps
    # an END bias at which some rows emit tokens, then END, then PAD: exercises the padding after END
    for shift in np.arange(-1.0, 4.0, 0.1):
        params["head"]["bias"][seq.END] = shift
        biased = {"params": params}
        expected, expected_logits = python_greedy(apply, biased, enc, 6)
        stopped = [int(np.argmax(row == seq.END)) if seq.END in row else -1 for row in expected]
        if any(0 < stop < 5 for stop in stopped):
            break
    assert any(0 < stop < 5 for stop in stopped), f"no row stops mid-sequence: {stopped}"
    decode = jax.jit(lambda v, x: model.apply(v, x, method=Seq2Seq.greedy_decode, return_logits=True))
    tokens, logits = decode(biased, enc)
    np.testing.assert_array_equal(np.asarray(tokens), expected)
    np.testing.assert_allclose(np.asarray(logits), expected_logits, rtol=1e-5, atol=1e-5)
    for row, stop in zip(expected, stopped):
        if stop >= 0:
            assert np.all(row[stop + 1:] == seq.PAD)
    if model.cell == "lstm":
        np.testing.assert_array_equal(np.asarray(model.generate(biased, enc, max_length=3)), expected[:, :3])


def test_target_vocabulary_and_special_tokens():
    model = Seq2Seq(20, embed_dim=3, units=4, cell="simple_rnn", target_vocab_size=7, start_token=5, end_token=6,
                    max_output_length=4)
    enc = np.array([[3, 19, 12, 0], [7, 1, 0, 0]], np.int32)
    dec = np.array([[5, 2], [5, 4]], np.int32)
    variables = random_variables(model, (enc, dec))
    assert jax.eval_shape(model.apply, variables, (enc, dec)).shape == (2, 2, 7)
    assert variables["params"]["encoder_embed"]["embedding"].shape == (20, 3)
    assert variables["params"]["decoder_embed"]["embedding"].shape == (7, 3)
    tokens = np.asarray(model.generate(variables, enc))
    assert tokens.shape == (2, 4) and tokens.min() >= 0 and tokens.max() < 7


@pytest.mark.slow
def test_trains_under_trainer_fit_with_sequence_targets():
    data = seq.reverse_digits(256, 2, 4, seed=0)
    model = Seq2Seq(VOCAB, embed_dim=8, units=16, attention=True, max_output_length=5)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-2),
                          metrics=["accuracy"])
    state, history = trainer.fit(data.inputs, data.targets, epochs=6, batch_size=32, verbose=0, seed=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]


def test_gradient_matches_float64_finite_differences(x64):
    cell, attention = "lstm", True
    data = seq.reverse_digits(3, 2, 3, seed=2)
    model = Seq2Seq(VOCAB, embed_dim=2, units=2, cell=cell, attention=attention, max_output_length=4)
    variables = random_variables(model, data.inputs, seed=3)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables["params"])
    picked = {"encoder": params["encoder"], "decoder": params["decoder"], "head": params["head"]}
    if attention:
        picked["combine"] = params["combine"]
    flat, unravel = ravel_pytree(picked)
    targets = jnp.asarray(data.targets)

    def loss(vector):
        full = {**params, **unravel(vector)}
        logits = model.apply({"params": full}, data.inputs)
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, targets[..., None], axis=-1))

    grad = np.asarray(jax.jit(jax.grad(loss))(flat))
    assert grad.dtype == np.float64
    reference = jax_central_difference(loss, np.asarray(flat), eps=1e-6)
    np.testing.assert_allclose(grad, reference, rtol=1e-5, atol=1e-8)
    assert np.abs(reference).max() > 1e-3


@pytest.mark.parametrize(
    "options,error,match",
    [
        (dict(vocab_size=0), ValueError, "vocab_size must be > 0"),
        (dict(vocab_size=2.5), TypeError, "vocab_size must be an integer"),
        (dict(cell="lstmm"), ValueError, "cell must be one of"),
        (dict(cell=3), TypeError, "cell must be a name"),
        (dict(units=0), ValueError, "units must be > 0"),
        (dict(target_vocab_size=2), ValueError, r"end_token must be a token id in \[0, 1\]"),
        (dict(end_token=14), ValueError, r"end_token must be a token id in \[0, 13\]"),
        (dict(max_output_length=0), ValueError, "max_output_length must be > 0"),
        (dict(attention=1), TypeError, "attention must be a bool"),
        (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_constructor_arguments(options, error, match):
    kwargs = dict(vocab_size=VOCAB, embed_dim=4, units=4)
    kwargs.update(options)
    with pytest.raises(error, match=match):
        Seq2Seq(**kwargs)


def test_bad_inputs(data):
    model = tiny()
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), data.inputs)  # validation runs before any use
    enc, dec = data.inputs
    cases = [
        (enc, TypeError, r"inputs must be a pair \(encoder_tokens, decoder_tokens\)"),
        ((enc, dec, dec), TypeError, "inputs must be a pair"),
        ((enc.astype(np.float32), dec), TypeError, "encoder_tokens must hold integer token ids"),
        ((enc[0], dec), ValueError, r"encoder_tokens must have shape \(batch, time\), got shape \(5,\)"),
        ((enc, dec[:3]), ValueError, "same batch size, got 6 and 3"),
        ((enc + 10, dec), ValueError, r"encoder_tokens must hold token ids in \[0, 13\].*got values from 1\d to 23"),
        ((enc, dec - 1), ValueError, r"decoder_tokens must hold token ids in \[0, 13\]"),
        ((enc[:, :0], dec), ValueError, "at least one time step"),
    ]
    for inputs, error, match in cases:
        with pytest.raises(error, match=match):
            model.apply(variables, inputs)
    with pytest.raises(ValueError, match="max_length must be > 0"):
        model.generate(variables, enc, max_length=0)
    with pytest.raises(TypeError, match="variables must be a dict with 'params'"):
        model.generate(variables["params"], enc)
    with pytest.raises(ValueError, match=r"encoder_tokens must hold token ids"):
        model.generate(variables, enc + 20)
    with pytest.raises(ValueError, match=r"encoder_tokens must have shape \(batch, time\)"):
        model.apply(variables, enc[0], method=Seq2Seq.greedy_decode)
