import numpy as np
import pytest

from jdl.data import sequences as seq


def digits_of(row):
    """Decimal digits of the DIGIT tokens of a row, read independently of the module's decoder."""
    return [int(t) - 4 for t in row if t >= 4]


def valid_prefix(row):
    """Tokens before the first PAD."""
    row = list(row)
    return row[: row.index(0)] if 0 in row else row


def test_token_convention():
    assert (seq.PAD, seq.START, seq.END, seq.PLUS, seq.DIGIT_OFFSET, seq.VOCAB_SIZE) == (0, 1, 2, 3, 4, 14)
    assert seq.digit_tokens([0, 9, 5]) == [4, 13, 9]


@pytest.mark.parametrize("min_len,max_len", [(3, 8), (1, 1), (5, 5)])
def test_reverse_digits_targets_are_reversed_inputs(min_len, max_len):
    data = seq.reverse_digits(200, min_len, max_len, seed=3)
    enc, dec, tgt = data
    assert enc.shape == (200, max_len) and dec.shape == tgt.shape == (200, max_len + 1)
    assert enc.dtype == dec.dtype == tgt.dtype == np.int32
    lengths = []
    for e, d, t in zip(enc, dec, tgt):
        source = valid_prefix(e)
        lengths.append(len(source))
        assert all(4 <= s <= 13 for s in source)
        assert list(e[len(source):]) == [0] * (max_len - len(source)), "right padding only"
        answer = list(t)
        assert answer[: len(source)] == source[::-1]
        assert answer[len(source)] == seq.END
        assert answer[len(source) + 1:] == [0] * (max_len - len(source))
        assert d[0] == seq.START and list(d[1:]) == answer[:-1], "teacher forcing: targets shifted right"
    assert min(lengths) == min_len and max(lengths) == max_len
    if max_len > min_len:
        assert len(set(lengths)) == max_len - min_len + 1, "every length in [min_len, max_len] appears"
    assert data.inputs[0] is enc and data.inputs[1] is dec


def test_reverse_digits_is_deterministic_and_seeded():
    a, b, c = (seq.reverse_digits(50, 2, 6, seed=s) for s in (7, 7, 8))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.encoder_inputs, c.encoder_inputs)


@pytest.mark.parametrize("digits", [1, 3, 5])
def test_add_digits_targets_are_sums(digits):
    data = seq.add_digits(300, digits, seed=1)
    enc, dec, tgt = data
    assert enc.shape == (300, 2 * digits + 1) and dec.shape == tgt.shape == (300, digits + 2)
    big = 0
    for e, d, t in zip(enc, dec, tgt):
        source = valid_prefix(e)
        plus = source.index(seq.PLUS)
        a_digits, b_digits = digits_of(source[:plus]), digits_of(source[plus + 1:])
        assert 1 <= len(a_digits) <= digits and 1 <= len(b_digits) <= digits
        assert (a_digits[0] != 0 or len(a_digits) == 1) and (b_digits[0] != 0 or len(b_digits) == 1), "no leading zeros"
        a = int("".join(map(str, a_digits)))
        b = int("".join(map(str, b_digits)))
        answer = valid_prefix(t)
        assert answer[-1] == seq.END
        assert int("".join(map(str, digits_of(answer[:-1])))) == a + b
        assert all(tok >= 4 for tok in answer[:-1])
        assert d[0] == seq.START and list(d[1:]) == list(t[:-1])
        big += len(a_digits) == digits
    assert big > 200, "operands are uniform in [0, 10**digits): most have the full number of digits"


def test_add_digits_zero_padded_and_reversed():
    plain = seq.add_digits(100, 3, seed=4)
    data = seq.add_digits(100, 3, seed=4, zero_pad=True, reverse_answer=True)
    assert data.encoder_inputs.shape == (100, 7) and data.targets.shape == (100, 5)
    assert np.all(data.encoder_inputs != seq.PAD) and np.all(data.encoder_inputs[:, 3] == seq.PLUS)
    assert np.all(data.targets[:, 4] == seq.END)
    for e, t, p in zip(data.encoder_inputs, data.targets, plain.encoder_inputs):
        a = int("".join(map(str, digits_of(e[:3]))))
        b = int("".join(map(str, digits_of(e[4:]))))
        total = a + b
        assert digits_of(t[:4]) == [(total // 10**k) % 10 for k in range(4)], "least significant digit first"
        source = valid_prefix(p)
        plus = source.index(seq.PLUS)
        number = lambda tokens: int("".join(map(str, digits_of(tokens))))  # noqa: E731
        assert (number(source[:plus]), number(source[plus + 1:])) == (a, b), "the same operands as unpadded"
    with pytest.raises(TypeError, match="zero_pad must be a bool"):
        seq.add_digits(3, zero_pad=1)


def test_to_string_and_exact_match():
    assert seq.to_string([5, 13, 3, 4, 2, 7, 0]) == "19+0"
    assert seq.to_string([5, 13, 2, 7], stop_at_end=False) == "19$3"
    assert seq.to_string([1, 6, 0, 0]) == "^2"
    targets = np.array([[5, 6, 2, 0], [7, 2, 0, 0]])
    assert seq.exact_match(targets, targets) == 1.0
    assert seq.exact_match(np.array([[5, 6, 2, 0], [7, 2, 5, 0]]), targets) == 0.5, "extra tokens after END are wrong"
    assert seq.exact_match(np.array([[5, 6, 2, 0, 0, 0], [7, 2, 0, 0, 0, 4]]), targets) == 0.5
    assert seq.exact_match(np.array([[5, 6, 2], [7, 2, 0]]), targets) == 1.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: seq.reverse_digits(0), "n must be > 0"),
        (lambda: seq.reverse_digits(5, 4, 3), "min_len must be <= max_len"),
        (lambda: seq.reverse_digits(5, 0, 3), "min_len must be > 0"),
        (lambda: seq.reverse_digits(5, seed=-1), "seed must be >= 0"),
        (lambda: seq.add_digits(5, 0), "digits must be > 0"),
        (lambda: seq.add_digits(5, 19), "digits must be <= 18"),
        (lambda: seq.to_string([99]), r"tokens must be ids in \[0, 13\]"),
        (lambda: seq.exact_match(np.zeros((2, 3)), np.zeros((3, 3))), "same n"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_argument_types():
    with pytest.raises(TypeError, match="n must be an integer"):
        seq.reverse_digits(2.5)
    with pytest.raises(TypeError, match="digits must be an integer"):
        seq.add_digits(3, "3")
