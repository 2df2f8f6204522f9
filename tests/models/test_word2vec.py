import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses
from jdl.data import text
from jdl.models.word2vec import Word2Vec, WordVectors, negative_sampling_targets, train_word2vec
from tests.numeric import jax_central_difference

V, D, K = 6, 3, 2


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def tiny_batch(mode):
    rng = np.random.default_rng(0)
    center = np.array([0, 3, 5, 1])
    context = np.array([1, 2, 0, 4]) if mode == "skipgram" else np.array([[1, 2, -1], [-1, 4, 0], [2, 2, 3], [5, -1, -1]])
    negatives = rng.integers(0, V, (4, K))
    return {"center": center, "context": context, "negatives": negatives}


def reference_logits(v, u, x, mode):
    """A Python loop over examples: h (input vector), then u·h for the true word and each noise word."""
    rows = []
    for i in range(len(x["center"])):
        if mode == "skipgram":
            h, true = v[x["center"][i]], x["context"][i]
        else:
            words = [w for w in x["context"][i] if w >= 0]
            h, true = np.mean([v[w] for w in words], axis=0), x["center"][i]
        rows.append([u[true] @ h] + [u[w] @ h for w in x["negatives"][i]])
    return np.array(rows)


def random_tables(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(V, D)), rng.normal(size=(V, D))


def params_of(v, u):
    return {"input": {"embeddings": jnp.asarray(v)}, "output": {"embeddings": jnp.asarray(u)}}


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_logits_match_a_python_loop_and_the_loss_is_the_negative_sampling_objective(mode):
    model = Word2Vec(V, D, mode, negatives=K)
    x = tiny_batch(mode)
    variables = model.init(jax.random.PRNGKey(0), x)
    assert np.all(np.asarray(variables["params"]["output"]["embeddings"]) == 0), "u starts at zero (word2vec.c)"
    assert np.all(np.abs(np.asarray(variables["params"]["input"]["embeddings"])) <= 0.5 / D)
    v, u = random_tables(1)
    logits = np.asarray(model.apply({"params": params_of(v, u)}, x))
    expected = reference_logits(v, u, x, mode)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    y = negative_sampling_targets(4, K)
    per_example = np.asarray(losses.binary_crossentropy(y, logits, reduction="none"))
    mikolov = -np.log(sigmoid(expected[:, 0])) - np.log(sigmoid(-expected[:, 1:])).sum(axis=1)
    np.testing.assert_allclose(per_example, mikolov / (1 + K), rtol=1e-5)


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_gradient_matches_float64_central_differences(mode, x64):
    model = Word2Vec(V, D, mode, negatives=K)
    x = tiny_batch(mode)
    y = jnp.asarray(negative_sampling_targets(4, K), jnp.float64)
    v, u = random_tables(2)

    def cost(flat):
        flat = jnp.asarray(flat)
        logits = model.apply({"params": params_of(flat[: V * D].reshape(V, D), flat[V * D:].reshape(V, D))}, x)
        return losses.binary_crossentropy(y, logits)

    cost = jax.jit(cost)
    flat = np.concatenate([v.ravel(), u.ravel()])
    grad = np.asarray(jax.grad(cost)(jnp.asarray(flat)))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, jax_central_difference(cost, flat), rtol=1e-6, atol=1e-9)


def test_noise_words_are_drawn_from_the_noise_distribution_on_the_device():
    noise = [0, 0, 0, 1, 0, 0]
    model = Word2Vec(V, D, "skipgram", negatives=K, noise=noise)
    x = {"center": np.array([0, 1]), "context": np.array([2, 4])}
    v, u = random_tables(3)
    logits = np.asarray(model.apply({"params": params_of(v, u)}, x, rngs={"sample": jax.random.PRNGKey(0)}))
    np.testing.assert_allclose(logits[:, 1:], np.repeat((v[[0, 1]] @ u[3])[:, None], K, axis=1), rtol=1e-5)
    uniform = Word2Vec(V, D, "skipgram", negatives=400)
    out = uniform.apply({"params": params_of(np.eye(V, D), np.eye(V)[:, :D] * np.arange(1, V + 1)[:, None])},
                        {"center": np.zeros(1, np.int32), "context": np.zeros(1, np.int32)},
                        rngs={"sample": jax.random.PRNGKey(1)})
    drawn = set(np.round(np.asarray(out)[0, 1:]).astype(int).tolist())
    assert drawn == {0, 1}, "u·h with h = e_0 is 1 for word 0 and 0 for every other word: both must be drawn"
    with pytest.raises(ValueError, match="Word2Vec needs noise words"):
        model.apply({"params": params_of(v, u)}, x)


def test_most_similar_and_similarity_match_a_numpy_cosine_reference():
    vocab = text.Vocabulary.build("a a a b b c d e".split())
    vectors = np.random.default_rng(0).normal(size=(5, 4))
    wv = WordVectors(vocab, vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    for i, word in enumerate(vocab.words):
        others = [j for j in np.argsort(-cos[i]) if j != i]
        result = wv.most_similar(word, k=3)
        assert [w for w, _ in result] == [vocab.words[j] for j in others[:3]]
        np.testing.assert_allclose([s for _, s in result], cos[i, others[:3]], rtol=1e-5)
    assert len(wv.most_similar("a", k=100)) == 4
    np.testing.assert_allclose(wv.similarity("b", "e"), cos[1, 4], rtol=1e-5)
    np.testing.assert_array_equal(wv.vector("c"), vectors[2].astype(np.float32))
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        wv.most_similar("zebra")
    with pytest.raises(KeyError, match="'q'"):
        wv.similarity("a", "q")
    with pytest.raises(ValueError, match="k must be > 0"):
        wv.most_similar("a", k=0)


def two_topic_tokens(n=4000, seed=0):
    """Words a0..a4 and b0..b4 in alternating runs of 40: a word's contexts are (almost) all of its own topic."""
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(n // 40):
        topic = "ab"[r % 2]
        runs += [f"{topic}{i}" for i in rng.integers(0, 5, 40)]
    return runs


@pytest.fixture(scope="module", params=["skipgram", "cbow"])
def trained(request):
    return request.param, train_word2vec(two_topic_tokens(), mode=request.param, embed_dim=8, window=2, negatives=3,
                                         epochs=4, batch_size=256, seed=0, min_count=1, subsample=None,
                                         learning_rate=2e-2)


def test_train_word2vec_fits_under_the_trainer_and_separates_the_topics(trained):
    mode, wv = trained
    loss = wv.history.history["loss"]
    assert len(loss) == 4 and loss[-1] < loss[0] - 0.02, f"{mode}: loss should decrease, got {loss}"
    assert sorted(wv.words) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
    for word in wv.words:
        neighbours = [w for w, _ in wv.most_similar(word, k=4)]
        assert all(w[0] == word[0] for w in neighbours), f"{mode}: {word} -> {neighbours}"
    assert wv.similarity("a0", "a1") > wv.similarity("a0", "b1") + 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"mode must be one of \['skipgram', 'cbow'\]"):
        Word2Vec(V, D, "glove")
    with pytest.raises(ValueError, match=r"noise must have one entry per word, shape \(6,\)"):
        Word2Vec(V, D, noise=[1, 2])
    with pytest.raises(ValueError, match="negatives must be > 0"):
        Word2Vec(V, D, negatives=0)
    model = Word2Vec(V, D, negatives=K)
    key = jax.random.PRNGKey(0)
    with pytest.raises(TypeError, match="x must be a dict"):
        model.init(key, np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match=r"missing \['context'\]"):
        model.init(key, {"center": np.zeros(2, np.int32)})
    with pytest.raises(TypeError, match=r"x\['center'\] must hold integer token ids"):
        model.init(key, {"center": np.zeros(2), "context": np.zeros(2, np.int32)})
    with pytest.raises(ValueError, match=r"x\['context'\] must hold ids in \[0, 5\].*from 0 to 6"):
        model.init(key, {"center": np.zeros(2, np.int32), "context": np.array([0, 6])})
    with pytest.raises(ValueError, match=r"x\['context'\] must have shape \(2,\) in skipgram mode"):
        model.init(key, {"center": np.zeros(2, np.int32), "context": np.zeros((2, 3), np.int32)})
    with pytest.raises(ValueError, match=r"x\['negatives'\] must have shape \(2, 2\)"):
        model.init(key, {"center": np.zeros(2, np.int32), "context": np.zeros(2, np.int32),
                         "negatives": np.zeros((2, 3), np.int32)})
    with pytest.raises(TypeError, match="corpus_or_tokens must be"):
        train_word2vec(123)
    with pytest.raises(ValueError, match="min_count=50 leaves no word"):
        train_word2vec("a b c", min_count=50)
