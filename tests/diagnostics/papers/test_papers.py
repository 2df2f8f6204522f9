"""The reproduced papers: each measurement against an independent computation, and the findings' verdicts."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import cli
from jdl.diagnostics import report as report_lib
from jdl.diagnostics.papers import glorot, he, noise_scale, pascanu


def test_glorot_jacobian_singular_values_and_gradients_equal_jax_jacobian_and_grad():
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 5))
    y = jnp.arange(6) % 10
    params = glorot.init_params("xavier_uniform", [5, 7, 7, 7, 10], seed=1)
    measured = glorot.at_init(params, x, y, jacobian_examples=2)

    def layer(h, i):
        return jnp.tanh(h @ params[i]["kernel"] + params[i]["bias"])

    h1 = jax.jit(layer, static_argnums=1)(x[1], 0)
    expected = np.linalg.svd(np.asarray(jax.jit(jax.jacobian(layer), static_argnums=1)(h1, 1)), compute_uv=False)
    np.testing.assert_allclose(measured["singular_values"][0, 1], expected, rtol=1e-5)

    def example_loss(params, i):
        logits, _ = glorot.forward(params, x[i:i + 1], [0.0] * 3)
        return -jax.nn.log_softmax(logits)[0, y[i]]

    total = jax.jit(jax.grad(lambda p: sum(example_loss(p, i) for i in range(6)) / 6))(params)
    np.testing.assert_allclose(measured["weight_grad_var"][2], np.var(np.asarray(total[2]["kernel"])), rtol=1e-5)


def test_glorot_singular_values_match_the_paper_and_random_matrix_theory_at_width_96():
    result = glorot.glorot_study(width=96, examples=32, jacobian_examples=2, bins=11)
    sv = {k: m["mean_singular_value"] for k, m in result["inits"].items()}
    # quarter-circle law: a square matrix with entries of std s has mean singular value 8/(3π)·s·√n;
    # the tanh' factors (< 1) pull it lower. Standard: s√n = 1/√3, normalized: s√n = 1.
    assert 0.35 < sv["standard"] < 8 / (3 * math.pi) / math.sqrt(3)
    assert 0.6 < sv["normalized"] < 8 / (3 * math.pi)
    findings = report_lib.glorot_report(result).findings
    assert len(findings) == 4 and findings[3].startswith("Sec. 4.2.2") and " agrees: " in findings[3]


def test_he_closed_form_halves_the_variance_under_xavier_and_keeps_it_under_he():
    np.testing.assert_allclose(he.closed_form_std(1.0, 3), he.RECTIFIED_STD * np.array([1, 2 ** -0.5, 0.5]))
    np.testing.assert_allclose(he.closed_form_std(2.0, 3), np.full(3, he.RECTIFIED_STD * math.sqrt(2)))
    samples = np.maximum(np.random.default_rng(0).normal(0, 3.0, 400_000), 0)
    assert samples.std() == pytest.approx(3.0 * he.RECTIFIED_STD, rel=5e-3)


def test_he_findings_say_whether_xavier_stalled_and_he_converged():
    def init(final):
        return {"ratio_per_layer": 0.7, "measured_over_closed_form": [1.0, 0.9], "final_loss": final}

    result = {"chance_loss": math.log(10), "depth": 30, "steps": 100, "stalled_below": 0.95, "converged_below": 0.5,
              "paper": he.PAPER, "inits": {"xavier_normal": init(2.30), "he_normal": init(0.4)}}
    assert " agrees: " in report_lib.he_findings(result)[0]
    result["inits"]["xavier_normal"]["final_loss"] = 1.0
    assert " does not agree: " in report_lib.he_findings(result)[0]


def test_pascanu_descent_equals_a_python_loop_of_jax_grad_and_clipping_bounds_the_step():
    start, lr, c = jnp.array([5.0, -4.0]), 0.01, 1.0
    points, _, _ = pascanu.descend(start, jnp.float32(np.inf), learning_rate=lr, iterations=30, steps=50,
                                   x0=0.5, target=0.7)  # before the wall: past it, float rounding decides the jump
    p = start
    for _ in range(30):
        p = p - lr * jax.grad(pascanu.error)(p, 50, 0.5, 0.7)
    np.testing.assert_allclose(points[-1], p, rtol=1e-4)
    x = 0.5
    for _ in range(50):
        x = 5.0 / (1 + math.exp(-x)) - 4.0
    assert float(pascanu.final_state(jnp.float32(5.0), jnp.float32(-4.0), 50, 0.5)) == pytest.approx(x, rel=1e-5)
    clipped, _, _ = pascanu.descend(start, jnp.float32(c), learning_rate=lr, iterations=80, steps=50, x0=0.5, target=0.7)
    assert np.linalg.norm(np.diff(np.asarray(clipped), axis=0), axis=1).max() <= lr * c * (1 + 1e-3), "float32 positions near 5 round the step by ~1e-4"


def test_noise_scale_estimators_are_unbiased_on_synthetic_gradients():
    rng = np.random.default_rng(0)
    d, big, small, batches, sigma = 20, 64, 8, 4000, 0.5
    mean = rng.normal(size=d) * 0.2
    g = mean + sigma * rng.normal(size=(batches, big, d))
    est = noise_scale.estimates(np.sum(g ** 2, axis=(1, 2)), np.sum(g.mean(axis=1) ** 2, axis=1),
                                np.sum(g[:, :small].mean(axis=1) ** 2, axis=1), big, small)
    truth = {"g2": float(mean @ mean), "trace": d * sigma ** 2}
    for name in ("per_example", "two_batch"):
        assert est[name]["g2"] == pytest.approx(truth["g2"], rel=0.05), name
        assert est[name]["trace"] == pytest.approx(truth["trace"], rel=0.02), name
        assert est[name]["b_simple"] == pytest.approx(truth["trace"] / truth["g2"], rel=0.06), name


def test_noise_scale_per_example_estimate_matches_the_exact_whole_set_value():
    result = noise_scale.noise_scale_study(hidden=8, steps=20, checkpoints=1, big=128, small=16, batches=32,
                                           learning_rate=0.1)
    assert [r["step"] for r in result["records"]] == [0, 20]
    for record in result["records"]:
        assert record["per_example"]["b_simple"] == pytest.approx(record["exact"]["b_simple"], rel=0.15)
    assert len(report_lib.noise_scale_report(result).findings) == 3


def test_jdl_study_pascanu_quick_writes_a_report_that_states_agreement(tmp_path, capsys):
    assert cli.main(["study", "pascanu", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Fig. 6 (plain gradient descent jumps at the cliff, norm clipping crosses it) agrees" in out
    assert (tmp_path / "report.html").stat().st_size > 10_000 and (tmp_path / "report.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["study", "init", "--seeds", "2"], "--seeds applies to the adding, copy, depth, he studies, not init"),
    (["study", "depth", "--seeds", "0"], "--seeds must be a positive integer, got 0"),
    (["study", "glorot", "--mnist", "/tmp"], "--mnist applies to the noise-scale study, not glorot"),
])
def test_jdl_study_option_mistakes_print_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"jdl study: error: {message}"


@pytest.mark.parametrize("call, message", [
    (lambda: glorot.glorot_study(layers=1), "layers must be at least 2"),
    (lambda: he.he_study(depth=2), "depth must be at least 3"),
    (lambda: pascanu.pascanu_study(start=(1.0,)), "start must be a pair"),
    (lambda: noise_scale.noise_scale_study(small=1), "small must be between 2"),
    (lambda: noise_scale.noise_scale_study(mnist=3), "mnist must be a directory path"),
])
def test_paper_studies_reject_bad_arguments(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
