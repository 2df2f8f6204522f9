"""examples/10_word2vec.py runs (--quick, in this process) and prints numbers that make sense."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def output():
    return run_example("10_word2vec.py", "--quick")


def test_quick_run_reports_a_decreasing_loss_and_the_corpus_sizes(output):
    assert re.search(r"corpus: kjv, 30000 words; vocabulary (\d+) words", output), output
    losses = [float(v) for v in re.findall(r"^\s*epoch \d+\s+(\d+\.\d+)$", output, re.MULTILINE)]
    assert len(losses) == 2, output
    assert 0 < losses[1] < losses[0] < 0.6931 + 1e-3, f"loss starts below ln 2 (u = 0) and decreases: {losses}"
    examples = int(re.search(r"(\d+) skipgram examples per epoch", output).group(1))
    assert examples % 1024 == 0 and examples > 50_000


def test_neighbours_are_other_words_ranked_by_cosine(output):
    rows = re.findall(r"^\s*(\S+)\s+-> (.*)$", output, re.MULTILINE)
    assert len(rows) >= 5, output
    for query, listing in rows:
        pairs = [item.rsplit(" ", 1) for item in listing.split(", ")]
        assert len(pairs) == 5
        words, scores = [w for w, _ in pairs], [float(s) for _, s in pairs]
        assert query not in words and len(set(words)) == 5
        assert all(-1 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    similarities = [float(v) for v in re.findall(r"^\s*similarity \S+\s+(-?\d\.\d+)$", output, re.MULTILINE)]
    assert similarities and all(-1 <= s <= 1 for s in similarities)
