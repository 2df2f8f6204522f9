"""The training examples (03-05) run (`--quick`, in this process) and print numbers that make sense."""

import math
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))"


def value(out, label):
    match = re.search(rf"^\s*{re.escape(label)}\s+{NUMBER}", out, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{out}"
    return float(match.group(1))


def table(out, columns):
    """Rows "name  v1 v2 ... v_columns" of a printed table: {name: [floats]}."""
    pattern = re.compile(r"^(\S.*?)" + rf"\s+{NUMBER}" * columns + r"\s*$", re.MULTILINE)
    return {m.group(1): [float(v) for v in m.groups()[1:]] for m in pattern.finditer(out)}


def test_ann_keras_style_reaches_high_test_accuracy_with_consistent_scores():
    out = run_example("03_ann_keras_style.py", "--quick")
    epochs = int(re.search(r"epochs run: (\d+) \(best val_loss at epoch (\d+)", out).group(1))
    best = int(re.search(r"best val_loss at epoch (\d+)", out).group(1))
    assert 1 <= best <= epochs <= 20, "quick mode trains at most 20 epochs"
    assert "455 training examples (304 fit, 151 validation" in out, "validation_split=0.33 takes the last third"
    accuracy = value(out, "test accuracy")
    assert accuracy >= 0.9, f"the 30-11-7-1 ANN should classify breast cancer well, got {accuracy}"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert math.isfinite(value(out, key))
    assert value(out, "val_loss") >= value(out, "min val_loss")

    rows = [[int(v) for v in m.groups()] for m in re.finditer(r"^\s*true \S+\s+(\d+)\s+(\d+)\s*$", out, re.MULTILINE)]
    assert len(rows) == 2, out
    (tn, fp), (fn, tp) = rows
    assert tn + fp + fn + tp == 114, "the confusion matrix counts every test example once"
    assert (tn + tp) / 114 == pytest.approx(accuracy, abs=1e-4), "evaluate's accuracy = the matrix's trace / n"
    precision, recall, f1 = value(out, "precision"), value(out, "recall"), value(out, "F1")
    assert precision == pytest.approx(tp / (tp + fp), abs=1e-4)
    assert recall == pytest.approx(tp / (tp + fn), abs=1e-4)
    assert f1 == pytest.approx(2 / (1 / precision + 1 / recall), abs=2e-4)


VARIANTS = {  # name: batch size (None: the full training set of 256 points in quick mode)
    "GD (full batch)": None,
    "SGD (batch 1)": 1,
    "mini-batch SGD (32)": 32,
    "momentum 0.9 (32)": 32,
    "Adagrad (32)": 32,
    "RMSprop (32)": 32,
    "Adam (32)": 32,
}


def test_gradient_descent_variants_print_goldens_and_train_every_variant():
    out = run_example("04_gradient_descent_variants.py", "--quick")
    for n, batch, steps in [(100000, 1000, 100), (34000, 500, 68), (1000, 500, 2)]:
        assert re.search(rf"n = \s*{n}, batch = \s*{batch} -> \s*{steps} iterations per epoch", out), (n, batch)
    assert "256 training points" in out and "3 epochs" in out
    rows = table(out, 9)  # lr, batch, iter/epoch, updates, train loss, train acc, test acc, time, 1st epoch
    assert set(rows) == set(VARIANTS), rows
    for name, batch in VARIANTS.items():
        lr, printed_batch, steps, updates, loss, train_acc, test_acc, seconds, first = rows[name]
        assert printed_batch == (batch or 256)
        assert steps == math.ceil(256 / (batch or 256)), name
        assert updates == 3 * steps, f"{name}: epochs x iterations per epoch updates"
        assert math.isfinite(loss) and 0 < loss < 0.69, f"{name}: below chance-level cross-entropy ln 2, got {loss}"
        assert 0.5 < train_acc <= 1 and 0.5 < test_acc <= 1, name
        assert seconds >= 0 and first >= 0
    assert rows["SGD (batch 1)"][4] < rows["GD (full batch)"][4], "768 SGD updates beat 3 full-batch steps"


def test_regularization_narrows_the_train_validation_gap():
    out = run_example("05_regularization.py", "--quick")
    assert "100 training points, 1000 validation" in out and "up to 40 epochs" in out
    rows = table(out, 8)  # epochs, best, train loss, val loss, loss gap, train acc, val acc, acc gap
    assert list(rows) == ["plain", "L2 (lambda=0.3)", "dropout 0.5", "batch norm", "early stopping"], rows
    for name, (epochs, best, train_loss, val_loss, gap, train_acc, val_acc, acc_gap) in rows.items():
        assert 1 <= best <= epochs <= 40, name
        assert math.isfinite(train_loss) and math.isfinite(val_loss), name
        assert gap == pytest.approx(val_loss - train_loss, abs=2e-4), name
        assert acc_gap == pytest.approx(train_acc - val_acc, abs=2e-4), name
    plain_gap = rows["plain"][4]
    assert plain_gap > 0.05, "the plain wide net over-fits its 100 noisy points"
    for name, row in rows.items():
        if name != "plain":
            assert row[4] < plain_gap, f"{name} should narrow the validation-training loss gap"
    assert rows["early stopping"][0] < 40, "early stopping stops before the last epoch"
