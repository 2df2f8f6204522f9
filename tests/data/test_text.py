import gzip
import hashlib

import numpy as np
import pytest

from jdl.data import text

IDS = np.array([0, 1, 2, 0, 3, 1, 0, 4, 2])


def test_shipped_corpus_loads_and_matches_its_readme():
    assert "kjv" in text.corpora()
    corpus = text.load_corpus()
    assert corpus == text.load_corpus("kjv")
    assert corpus.startswith("In the beginning God created the heaven and the earth.\n")
    assert hashlib.sha256(corpus.encode()).hexdigest() == "fc17929732d70d4a3e6b0873da51457277e41ee996dfaf92f49ffe1c883d0236"
    assert corpus.count("\n") == 5786, "one verse per line"
    assert len(text.tokenize(corpus)) > 150_000


def test_load_corpus_from_a_path(tmp_path):
    plain, packed = tmp_path / "a.txt", tmp_path / "b.txt.gz"
    plain.write_text("One two", encoding="utf-8")
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write("three")
    assert text.load_corpus(plain) == "One two"
    assert text.load_corpus(str(packed)) == "three"
    with pytest.raises(ValueError, match="name must be a shipped corpus.*'missing'"):
        text.load_corpus("missing")
    with pytest.raises(TypeError, match="name must be a corpus name"):
        text.load_corpus(3)


def test_tokenize_lowercases_and_keeps_inner_apostrophes():
    assert text.tokenize("And GOD said, Let Israel's sons go: 12 men!") == [
        "and", "god", "said", "let", "israel's", "sons", "go", "12", "men"]
    assert text.tokenize("'quoted' -- x") == ["quoted", "x"]
    with pytest.raises(TypeError, match="text must be a str"):
        text.tokenize(["a"])


def test_vocabulary_orders_by_count_then_alphabet_and_round_trips():
    tokens = "b a c a b a d".split()
    vocab = text.Vocabulary.build(tokens)
    assert vocab.words == ("a", "b", "c", "d")
    np.testing.assert_array_equal(vocab.counts, [3, 2, 1, 1])
    np.testing.assert_allclose(vocab.frequencies, np.array([3, 2, 1, 1]) / 7)
    assert vocab.decode(vocab.encode(tokens)) == tokens
    assert vocab.id("c") == 2 and "d" in vocab and "z" not in vocab
    small = text.Vocabulary.build(tokens, min_count=2)
    assert small.words == ("a", "b")
    np.testing.assert_array_equal(small.encode(tokens), [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(small.encode(["a", "zz"], unknown=1), [0, 1])
    assert text.Vocabulary.build(tokens, max_size=3).words == ("a", "b", "c")
    padded = text.Vocabulary.build(tokens, specials=("<pad>",))
    assert padded.words[0] == "<pad>" and padded.id("a") == 1 and padded.counts[0] == 0


def test_vocabulary_errors_name_the_problem():
    vocab = text.Vocabulary.build("king kings queen".split())
    with pytest.raises(KeyError, match="'kingz' is not in the vocabulary.*close: king"):
        vocab.id("kingz")
    with pytest.raises(KeyError, match="'x'"):
        vocab.encode(["king", "x"], unknown="error")
    with pytest.raises(ValueError, match="min_count=5 leaves no word"):
        text.Vocabulary.build(["a", "b"], min_count=5)
    with pytest.raises(TypeError, match="tokens must be a sequence of words"):
        text.Vocabulary.build("a b c")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\]"):
        vocab.decode([3])


def reference_pairs(ids, spans):
    pairs = []
    for i in range(len(ids)):
        for j in range(len(ids)):
            if i != j and abs(i - j) <= spans[i]:
                pairs.append((ids[i], ids[j]))
    return pairs


def test_skipgram_pairs_match_a_python_loop_with_full_and_dynamic_windows():
    center, context = text.skipgram_pairs(IDS, window=2)
    assert center.dtype == np.int32
    assert list(zip(center.tolist(), context.tolist())) == reference_pairs(IDS.tolist(), [2] * len(IDS))
    spans = np.random.default_rng(7).integers(1, 4, len(IDS))
    center, context = text.skipgram_pairs(IDS, window=3, seed=7)
    assert list(zip(center.tolist(), context.tolist())) == reference_pairs(IDS.tolist(), spans)
    assert len(text.skipgram_pairs(IDS, window=3, seed=7)[0]) == len(center), "same seed, same pairs"


def test_cbow_examples_match_a_python_loop():
    window = 2
    spans = np.random.default_rng(3).integers(1, window + 1, len(IDS))
    contexts, centers = text.cbow_examples(IDS, window=window, seed=3)
    offsets = [-2, -1, 1, 2]
    expected_contexts, expected_centers = [], []
    for i in range(len(IDS)):
        row = [int(IDS[i + o]) if 0 <= i + o < len(IDS) and abs(o) <= spans[i] else -1 for o in offsets]
        if any(v >= 0 for v in row):
            expected_contexts.append(row)
            expected_centers.append(int(IDS[i]))
    assert contexts.tolist() == expected_contexts
    assert centers.tolist() == expected_centers
    single_contexts, single_centers = text.cbow_examples([5], window=2)
    assert single_contexts.shape == (0, 4) and single_centers.shape == (0,)


def test_subsampling_keeps_sqrt_t_over_f():
    counts = np.array([900, 90, 10])
    t = 0.01
    f = counts / 1000
    np.testing.assert_allclose(text.keep_probabilities(counts, t), np.minimum(1, np.sqrt(t / f)))
    ids = np.repeat([0, 1, 2], [90_000, 9_000, 1_000])
    kept = text.subsample(ids, counts, t, seed=0)
    rates = np.bincount(kept, minlength=3) / np.bincount(ids)
    np.testing.assert_allclose(rates, np.minimum(1, np.sqrt(t / f)), atol=0.01)
    assert rates[2] == 1.0
    np.testing.assert_array_equal(kept, text.subsample(ids, counts, t, seed=0))
    assert not np.array_equal(kept, text.subsample(ids, counts, t, seed=1))


def test_noise_distribution_and_table_are_proportional_to_count_to_the_three_quarters():
    counts = [1, 16, 81, 0]  # count^0.75 = 1, 8, 27, 0
    np.testing.assert_allclose(text.noise_distribution(counts), [1 / 36, 8 / 36, 27 / 36, 0])
    table = text.negative_sampling_table(counts, size=36)
    np.testing.assert_array_equal(np.bincount(table, minlength=4), [1, 8, 27, 0])
    big = text.negative_sampling_table(counts, size=1000)
    assert big.size == 1000
    assert np.all(np.abs(np.bincount(big, minlength=4) - 1000 * np.array([1, 8, 27, 0]) / 36) <= 1)
    draws = text.sample_negatives(table, (20_000,), seed=0)
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 20_000, [1 / 36, 8 / 36, 27 / 36, 0], atol=0.01)
    np.testing.assert_array_equal(draws, text.sample_negatives(table, (20_000,), seed=0))


def test_bad_arguments():
    with pytest.raises(TypeError, match="ids must hold integer token ids"):
        text.skipgram_pairs([0.5, 1.5])
    with pytest.raises(ValueError, match="ids must be a 1-D"):
        text.cbow_examples([[1, 2]])
    with pytest.raises(ValueError, match="window must be > 0"):
        text.skipgram_pairs([1, 2], window=0)
    with pytest.raises(ValueError, match="counts must be finite"):
        text.noise_distribution([0, 0])
    with pytest.raises(ValueError, match=r"ids must be < len\(counts\) = 2"):
        text.subsample([0, 2], [1, 1])
    with pytest.raises(ValueError, match="table must be a non-empty 1-D integer array"):
        text.sample_negatives([], 3)


def test_verse_books_labels_each_verse_by_its_book():
    data = text.verse_books(max_length=8, max_vocabulary=50)
    assert data.classes == tuple(name for name, _ in text.KJV_BOOKS)
    np.testing.assert_array_equal(np.bincount(data.labels), [1533, 1213, 810, 695, 816, 719])
    assert data.tokens.shape == (5786, 8) and data.tokens.dtype == np.int32
    # counted with `zcat kjv.txt.gz | tr A-Z a-z | grep -oE "[a-z0-9]+('[a-z0-9]+)*" | sort | uniq -c | sort -rn`:
    # and 13488, the 13466, ...; god is the 36th word, heaven the 247th, beginning and created rarer
    assert data.vocabulary.words[:4] == ("<pad>", "<unk>", "and", "the") and len(data.vocabulary) == 52
    # Genesis 1:1 and Exodus 1:1 (the first verse of the second book), first 8 words; words past the 50th are <unk>
    assert data.vocabulary.decode(data.tokens[0]) == ["in", "the", "<unk>", "god", "<unk>", "the", "<unk>", "and"]
    assert data.labels[1532] == 0 and data.labels[1533] == 1
    short = data.lengths < 8
    assert short.any() and all(not data.tokens[i, data.lengths[i]:].any() for i in np.flatnonzero(short))
    two = text.verse_books(["Exodus", "Genesis"])
    assert two.classes == ("Genesis", "Exodus") and len(two.labels) == 1533 + 1213
    assert two.vocabulary.decode(two.tokens[1533][:8]) == "now these are the names of the children".split()


def test_verse_books_bad_arguments():
    with pytest.raises(ValueError, match="books must name books of the kjv corpus.*'Genesys'; close: Genesis"):
        text.verse_books(["Genesys"])
    with pytest.raises(TypeError, match="books must be a non-empty list"):
        text.verse_books("Genesis")
    with pytest.raises(ValueError, match="books must be distinct"):
        text.verse_books(["Exodus", "Exodus"])
    with pytest.raises(ValueError, match="max_length must be > 0"):
        text.verse_books(max_length=0)
