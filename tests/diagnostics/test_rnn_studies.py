"""Gradients through time: ‖∂L/∂h_t‖ against closed forms and a Jacobian-chain reference; the memory studies."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses
from jdl.data import memory_tasks
from jdl.diagnostics import report as report_lib
from jdl.diagnostics import rnn_studies
from jdl.models.rnn import SequenceClassifier, SequenceTagger
from jdl.nn import recurrent


def test_simple_rnn_hidden_gradients_equal_the_numpy_backward_recursion():
    x, y = memory_tasks.adding_problem(6, 12, seed=0)
    model = SequenceClassifier(cell="simple_rnn", units=5, outputs=1)
    variables = model.init(jax.random.PRNGKey(3), x[:1])
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), variables["params"])
    cell = p["recurrent"]["layer_0"]["cell"]
    w, b, u = cell["input"]["kernel"], cell["input"]["bias"], cell["recurrent_kernel"]
    h, hs = np.zeros((6, 5)), []
    for t in range(12):
        h = np.tanh(x[:, t].astype(np.float64) @ w + b + h @ u)
        hs.append(h)
    prediction = h @ p["head"]["kernel"] + p["head"]["bias"]
    g = 2 * (prediction - y) @ p["head"]["kernel"].T
    expected = np.zeros((6, 12))
    for t in range(11, -1, -1):
        expected[:, t] = np.linalg.norm(g, axis=1)
        g = (g * (1 - hs[t] ** 2)) @ u.T
    np.testing.assert_allclose(rnn_studies.hidden_gradient_norms(model, variables, x, y), expected, rtol=1e-4)


def _reference_norms(model, variables, x, y, loss):
    """Loop over t: the loss's direct term at t plus the carry's gradient through jax.jacrev of one cell step."""
    params = variables["params"]
    cell = recurrent.cell(model.cell, model.units)
    cell_vars = {"params": params["recurrent"]["layer_0"]["cell"]}
    is_lstm = model.cell == "lstm"
    batch, steps = x.shape[:2]
    flatten = (lambda c: jnp.concatenate(c, axis=-1)) if is_lstm else (lambda c: c)
    unflatten = (lambda v: (v[..., :model.units], v[..., model.units:])) if is_lstm else (lambda v: v)

    def one_step(carry_flat, x_t):
        carry, _ = cell.apply(cell_vars, unflatten(carry_flat[None]), x_t[None])
        return flatten(carry)[0]

    def head_loss(h_t, target):
        logits = jnp.asarray(h_t[None] @ params["head"]["kernel"] + params["head"]["bias"])
        return losses.get(loss)(target[None], logits, reduction="none").reshape(-1).mean()

    one_step_jacobian, head_grad, one_step = jax.jit(jax.jacrev(one_step)), jax.jit(jax.grad(head_loss)), jax.jit(one_step)
    norms = np.zeros((batch, steps))
    for i in range(batch):
        carries = [jnp.zeros(((2 if is_lstm else 1) * model.units,))]
        for t in range(steps):
            carries.append(one_step(carries[-1], x[i, t]))
        g_carry = jnp.zeros_like(carries[-1])
        for t in range(steps - 1, -1, -1):
            h_t = carries[t + 1][-model.units:]
            if isinstance(model, SequenceTagger):
                direct = head_grad(h_t, y[i, t]) / steps
            else:
                direct = head_grad(h_t, y[i]) if t == steps - 1 else jnp.zeros_like(h_t)
            g_carry = g_carry.at[-model.units:].add(direct)
            norms[i, t] = float(jnp.linalg.norm(g_carry[-model.units:]))
            g_carry = g_carry @ one_step_jacobian(carries[t], x[i, t])
    return norms


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cell_hidden_gradients_equal_a_jacobian_chain_reference(cell):
    x, y = memory_tasks.adding_problem(3, 9, seed=1)
    model = SequenceClassifier(cell=cell, units=4, outputs=1)
    variables = model.init(jax.random.PRNGKey(0), x[:1])
    np.testing.assert_allclose(rnn_studies.hidden_gradient_norms(model, variables, x, y),
                               _reference_norms(model, variables, x, y, "mse"), rtol=2e-4, atol=1e-9)


def test_tagger_hidden_gradients_include_every_step_of_the_copy_loss():
    x, y = memory_tasks.copy_memory(2, 3, seed=0)
    model = SequenceTagger(cell="gru", units=4, outputs=memory_tasks.COPY_VOCAB)
    variables = model.init(jax.random.PRNGKey(1), x[:1])
    loss = "sparse_categorical_crossentropy"
    np.testing.assert_allclose(rnn_studies.hidden_gradient_norms(model, variables, x, y, loss),
                               _reference_norms(model, variables, x, y, loss), rtol=2e-4, atol=1e-9)


def test_rnn_study_linear_sweep_follows_scale_to_the_power_of_steps_back():
    result = rnn_studies.rnn_study(cells=("lstm",), length=10, units=8, examples=4, scales=(0.5, 1.1, 50.0),
                                   sweep_activations=("linear",), sweep_length=30)
    by_scale = {r["scale"]: r for r in result["sweep"]}
    for scale in (0.5, 1.1):
        np.testing.assert_allclose(by_scale[scale]["profile"], scale ** np.arange(29, -1, -1.0), rtol=1e-4)
        assert by_scale[scale]["growth_per_step_back"] == pytest.approx(scale, rel=1e-5)
    assert by_scale[50.0]["finite_steps_back"] == 23, "50^22 < 3.4e38, the largest float32, < 50^23"
    assert len(result["cells"][0]["profile"]) == 10 and result["cells"][0]["first_to_last"] < 1


def test_adding_study_lstm_learns_a_short_adding_problem_and_reports_it():
    result = rnn_studies.adding_study(cells=("lstm",), lengths=(8,), clipnorms=(1.0,), steps=300, units=16,
                                      eval_every=100, test_examples=256)
    record = result["records"][0]
    assert record["steps"] == [100, 200, 300] and len(record["test_loss"]) == 3
    assert record["baseline"] == pytest.approx(1 / 6)
    assert record["finite"] and record["final_test_loss"] < record["baseline"] / 4
    assert len(record["trained_profile"]["profile"]) == 8
    report = report_lib.memory_report(result)
    assert any(f.startswith("T = 8, lstm, clipnorm 1:") for f in report.findings)
    assert len(report.sections) == 1 and len(report.sections[0].figures) == 2


def test_copy_study_records_recall_and_the_baseline():
    result = rnn_studies.copy_study(cells=("gru",), lengths=(3,), clipnorms=(None,), steps=20, units=4,
                                    eval_every=10, test_examples=32, profile_examples=8)
    record = result["records"][0]
    assert record["baseline"] == pytest.approx(10 * np.log(8) / 23)
    assert 0 <= record["recall"] <= 1 and record["clipnorm"] is None
    assert len(record["trained_profile"]["profile"]) == 23


def test_concurrent_configurations_give_the_records_of_one_at_a_time():
    """Two workers train the grid's configurations at once; each record equals the sequential path's, bit for bit."""
    options = dict(cells=("simple_rnn", "gru"), lengths=(4,), clipnorms=(None, 0.5), steps=20, units=4,
                   eval_every=10, test_examples=16, profile_examples=4)
    alone, together = (rnn_studies.copy_study(workers=k, **options) for k in (1, 2))
    assert [(r["length"], r["cell"], r["clipnorm"]) for r in together["records"]] == [
        (4, cell, clip) for cell in ("simple_rnn", "gru") for clip in (None, 0.5)]
    timing = ("seconds", "ms_per_step")
    for one, two in zip(alone["records"], together["records"]):
        assert {k: v for k, v in one.items() if k not in timing} == {k: v for k, v in two.items() if k not in timing}
    assert {k: v for k, v in alone.items() if k != "records"} == {k: v for k, v in together.items() if k != "records"}


def test_a_failing_configuration_raises_and_starts_no_further_fit(monkeypatch):
    started = []

    def fail_on_the_first(task, spec, length, name, clip, data, settings, seed):
        started.append(name)
        if len(started) > 1:
            time.sleep(0.5)  # the fit the worker took up meanwhile: the study cancels the rest before it ends
        raise RuntimeError(f"{name} failed")

    monkeypatch.setattr(rnn_studies, "_memory_record", fail_on_the_first)
    with pytest.raises(RuntimeError, match="failed"):
        rnn_studies.adding_study(cells=("lstm",) * 6, lengths=(4,), clipnorms=(None,), steps=10, eval_every=10,
                                 workers=1)
    assert len(started) <= 2


def test_seeds_give_the_mean_and_spread_of_the_separate_fits():
    """seeds = 2: fit seeds 3 and 4 on the same sequences, each fit as a one-seed study runs it; then mean ± std."""
    options = dict(cells=("lstm",), lengths=(4,), clipnorms=(1.0,), steps=20, units=4, eval_every=10,
                   test_examples=16, profile_examples=4)
    both = rnn_studies.copy_study(seeds=2, seed=3, **options)
    spec = rnn_studies.TASKS["copy"]
    data = (spec["data"](10 * 64, 4, 3), spec["data"](16, 4, 4))
    settings = dict(steps=20, batch_size=64, units=4, learning_rate=1e-2, eval_every=10, profile_examples=4)
    runs = [rnn_studies._memory_record("copy", spec, 4, "lstm", 1.0, data, settings, s) for s in (3, 4)]
    one_seed = rnn_studies.copy_study(seed=3, **options)["records"][0]
    assert {k: v for k, v in runs[0].items() if k not in ("seconds", "ms_per_step")} == {
        k: v for k, v in one_seed.items() if k not in ("seconds", "ms_per_step")}
    record = both["records"][0]
    losses = np.asarray([r["test_loss"] for r in runs])
    assert not np.array_equal(losses[0], losses[1])
    np.testing.assert_array_equal(record["test_loss"], losses.mean(axis=0))
    np.testing.assert_array_equal(record["test_loss_spread"], losses.std(axis=0))
    assert record["test_loss_seeds"] == losses.tolist()
    assert record["final_test_loss"] == pytest.approx(np.mean([r["final_test_loss"] for r in runs]), rel=1e-12)
    assert record["recall_seeds"] == [r["recall"] for r in runs]
    np.testing.assert_allclose(record["trained_profile"]["profile"],
                               np.mean([r["trained_profile"]["profile"] for r in runs], axis=0), rtol=1e-12)
    assert record["finite"] and both["seeds"] == 2
    report = report_lib.memory_report(both)
    header, rows = report.sections[0].table
    assert rows[0][header.index("± std over 2 seeds")] == record["final_test_loss_spread"]
    assert "Means over 2 seeds" in report.sections[0].paragraphs[0]
    assert report.findings[0].startswith(f"T = 4, lstm, clipnorm 1 (mean of 2 seeds, ± {record['final_test_loss_spread']:.2g}): ")


def test_copy_recall_counts_only_the_ten_copied_symbols():
    _, y = memory_tasks.copy_memory(4, 5, seed=0)
    predictions = np.eye(10)[y].copy()
    predictions[:, :10] = np.eye(10)[9]
    assert rnn_studies._copy_recall(predictions, y) == 1.0
    predictions[0, -1] = np.eye(10)[0]
    assert rnn_studies._copy_recall(predictions, y) == pytest.approx(39 / 40)


def test_rnn_report_plots_each_part_and_names_vanishing_and_exploding():
    result = {"study": "rnn", "length": 3, "units": 2, "examples": 1, "sweep_length": 3,
              "cells": [{"cell": "lstm", "profile": [1e-3, 1e-1, 1.0], "first_to_last": 1e-3, "growth_per_step_back": 0.03,
                         "finite_steps_back": 3},
                        {"cell": "gru", "profile": [0.0, 1e-30, 1.0], "first_to_last": 0.0, "growth_per_step_back": 1e-30,
                         "finite_steps_back": 2}],
              "sweep": [{"activation": "linear", "scale": 0.5, "profile": [0.25, 0.5, 1.0], "first_to_last": 0.25,
                         "growth_per_step_back": 0.5, "finite_steps_back": 3},
                        {"activation": "linear", "scale": 50.0, "profile": [float("inf"), 50.0, 1.0],
                         "first_to_last": float("inf"), "growth_per_step_back": 50.0, "finite_steps_back": 2}]}
    report = report_lib.rnn_report(result)
    assert [len(s.figures) for s in report.sections] == [1, 1]
    assert any("scale 0.5: vanishing" in f for f in report.findings)
    assert any("scale 50: exploding — the gradient overflows float32 2 steps back" in f for f in report.findings)
    assert "lstm at initialization: the gradient reaching h_0 is 1.0e-03 of the one at h_T" in report.findings[0]
    assert "gru at initialization: the gradient vanishes below float32's range 2 steps back" in report.findings[1]


@pytest.mark.parametrize("call, error, message", [
    (lambda: rnn_studies.memory_study("sort"), ValueError, "task"),
    (lambda: rnn_studies.adding_study(cells=("transformer",)), ValueError, "cell"),
    (lambda: rnn_studies.adding_study(steps=50, eval_every=100), ValueError, "steps must be >= eval_every"),
    (lambda: rnn_studies.adding_study(clipnorms=(-1.0,)), ValueError, "clipnorms"),
    (lambda: rnn_studies.adding_study(workers=0), ValueError, "workers"),
    (lambda: rnn_studies.copy_study(seeds=0), ValueError, "seeds"),
    (lambda: rnn_studies.rnn_study(scales=(0.0,)), ValueError, "scales"),
    (lambda: rnn_studies.hidden_gradient_norms(SequenceClassifier(cell="gru", layers=2), {}, np.zeros((1, 2, 1)), None),
     ValueError, "one unidirectional recurrent layer"),
    (lambda: rnn_studies.hidden_gradient_norms("lstm", {}, np.zeros((1, 2, 1)), None), TypeError, "SequenceClassifier"),
    (lambda: rnn_studies.hidden_gradient_norms(SequenceClassifier(), {"params": {}}, np.zeros((1, 2, 1)), np.zeros((1, 1))),
     ValueError, "variables must be the model's variables"),
    (lambda: rnn_studies.hidden_gradient_norms(SequenceClassifier(units=2), SequenceClassifier(units=2).init(
        jax.random.PRNGKey(0), np.zeros((1, 2, 1))), np.zeros((3, 2, 1)), np.zeros((2, 1))), ValueError, "one target per example"),
])
def test_rnn_studies_reject_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_memory_findings_name_solved_baseline_worse_partial_and_diverged_runs():
    def record(cell, final, finite=True):
        return {"cell": cell, "length": 50, "clipnorm": None, "steps": [100, 200], "final_test_loss": final,
                "baseline": 1 / 6, "finite": finite, "stop_reason": None if finite else "loss became nan at step 7"}

    result = {"study": "adding", "unit": "MSE", "solved_below": 0.01,
              "records": [record("lstm", 0.004), record("simple_rnn", 0.16), record("gru", 0.5), record("rnn", 0.08),
                          record("x", float("nan"), finite=False)]}
    findings = report_lib.memory_findings(result)
    assert findings[0].startswith("T = 50, lstm, no clipping: solved — test MSE 0.0040 after 200 steps")
    assert "no memory learned" in findings[1] and "stays near the baseline 0.1667" in findings[1]
    assert "nothing learned" in findings[2] and "worse than the memoryless baseline" in findings[2]
    assert "partly learned — test MSE 0.0800 (0.48 of the baseline)" in findings[3]
    assert findings[4].endswith("training diverged (loss became nan at step 7).")


def test_profile_growth_spans_the_finite_steps_even_across_a_gap():
    profile = np.array([[0.125, np.inf, 0.5, 1.0]])
    summary = rnn_studies.profile_summary(profile)
    assert summary["growth_per_step_back"] == pytest.approx(0.5) and summary["finite_steps_back"] == 2
