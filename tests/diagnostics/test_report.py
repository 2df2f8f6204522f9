"""Reports: every section has content, every plot is embedded, every number is in report.json."""

import base64
import json
import re

import pytest

from jdl import cli
from jdl.diagnostics import report as report_lib


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


def test_depth_report_sections_plots_table_and_findings(tmp_path):
    records = []
    for act, init, norms in (("sigmoid", "uniform", [1e-9, 1e-5, 1.0]), ("relu", "he_normal", [0.5, 1.0, 2.0]),
                             ("relu", "large", [1e5, 1e6, 1e7])):
        records.append({"activation": act, "init": init, "depth": 1, "batch_norm": False, "residual": False,
                        "init_norms": norms, "first_to_last": norms[0] / norms[-1]})
    result = {"study": "depth", "steps": 0, "records": records}
    report = report_lib.depth_report(result)
    page, numbers = report.save(tmp_path)
    text = page.read_text()
    assert len(_images(text)) == 1 and all(png.startswith(b"\x89PNG") for png in _images(text))
    assert text.count("<tr>") == 1 + 3, "a header row and one row per configuration"
    assert any("sigmoid + uniform init, depth 1: vanishing" in f for f in report.findings)
    assert any("relu + large init, depth 1: exploding" in f for f in report.findings)
    assert any(f.startswith("Healthy") and "relu + he_normal" in f for f in report.findings)
    assert json.loads(numbers.read_text())["records"][0]["init_norms"] == [1e-9, 1e-5, 1.0]


def test_jdl_study_init_writes_a_report_with_the_textbook_factors(tmp_path, capsys):
    assert cli.main(["study", "init", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert abs(data["ratio_per_layer"]["xavier_normal"] - 2 ** -0.5) < 0.05
    assert abs(data["ratio_per_layer"]["he_normal"] - 1.0) < 0.05
    page = (tmp_path / "report.html").read_text()
    assert len(_images(page)) == 1 and "<h2>Findings</h2>" in page
    for section in re.findall(r"<section>(.*?)</section>", page, flags=re.S):
        assert "<p>" in section and ("<img" in section or "<table>" in section)
    assert "xavier_normal: activations scale by" in capsys.readouterr().out


def test_jdl_study_rnn_writes_the_gradient_through_time_report(tmp_path, capsys, monkeypatch):
    tiny = dict(cells=("gru",), length=6, units=3, examples=2, scales=(0.5, 2.0), sweep_activations=("linear",),
                sweep_length=5)
    monkeypatch.setitem(cli.STUDY_SIZES["rnn"], "quick", tiny)
    assert cli.main(["study", "rnn", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["scale"] for r in data["sweep"]] == [0.5, 2.0]
    assert abs(data["sweep"][1]["first_to_last"] - 2.0 ** 4) < 1e-3
    page = (tmp_path / "report.html").read_text()
    assert len(_images(page)) == 2
    assert "linear SimpleRNN, recurrent scale 0.5: vanishing" in capsys.readouterr().out


# -- the training report: findings on synthetic runs ---------------------------------------------------------

import math  # noqa: E402

import numpy as np  # noqa: E402

from jdl.diagnostics.report import findings as findings_lib  # noqa: E402
from jdl.diagnostics.report.page import series_style  # noqa: E402


def _layers(n):
    return [f"Dense_{i}" for i in range(n)]  # network order, which a sort would scramble (Dense_10 before Dense_2)


def _records(layers, steps, grad, *, activation_stats=None, noise=None, examples=None):
    records = []
    for k, step in enumerate(steps):
        record = {"epoch": k, "step": step, "grad_norm": {n: grad(i, k) for i, n in enumerate(layers)},
                  "param_norm": {n: 1.0 for n in layers}, "update_ratio": {n: 1e-3 for n in layers},
                  "finite": {n: True for n in layers}}
        if activation_stats is not None:
            record["activations"] = {n: activation_stats(i, k) for i, n in enumerate(layers[:-1])}
        if noise is not None:
            record.update(noise(k))
        if examples is not None:
            record["example_norm"] = examples(k)
        records.append(record)
    return records


def _facts(curves, monitor=None, summary=None, **context):
    epochs = len(next(iter(curves.values())))
    return findings_lib.RunFacts(summary or {"epochs_run": epochs}, {"epoch": list(range(1, epochs + 1)), **curves},
                                 monitor or {}, context)


def test_still_improving_at_the_last_epoch_is_not_called_overfitting():
    """lr 1e-4, 20 epochs, validation loss still falling but well above the training loss (the old rule said overfit)."""
    loss = [2.3 * 0.97 ** e for e in range(20)]
    val = [2.4 * 0.985 ** e + 0.4 for e in range(20)]
    facts = _facts({"loss": loss, "val_loss": val, "accuracy": [0.3 + 0.02 * e for e in range(20)]},
                   summary={"train": {"loss": loss[-1], "accuracy": 0.68}, "validation": {"loss": val[-1]}},
                   learning_rate=1e-4, num_classes=10)
    found = [str(f) for f in findings_lib.training_findings(facts)]
    assert not any("overfit" in f.lower().replace("not overfitting", "") for f in found), found
    improving = [f for f in found if "Still improving at the last epoch (20)" in f]
    assert improving and "raise the learning rate (0.0001)" in improving[0]


def test_a_run_whose_validation_loss_turns_up_is_overfitting_at_its_best_epoch():
    val = [1.0, 0.6, 0.4, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    loss = [1.0 - 0.09 * e for e in range(10)]
    found = findings_lib.training_findings(_facts({"loss": loss, "val_loss": val}))
    assert found[0].key == "overfitting" and "Overfitting from epoch 4" in found[0].text


def test_sigmoid_net_at_chance_gets_did_not_learn_first_with_vanishing_gradients_as_cause():
    """12 sigmoid layers, accuracy 0.097 on 10 classes, B_simple not measurable at the end."""
    layers = _layers(12)
    monitor = {"every": 10, "records": _records(
        layers, range(0, 200, 10), lambda i, k: 0.1 * 0.25 ** (11 - i),  # sigmoid: ≤ 1/4 per layer
        activation_stats=lambda i, k: {"mean": 0.5, "std": 0.01, "saturated": 0.0, "dead": 0.0},
        noise=lambda k: {"noise_scale": math.nan, "noise_signal": -1.0, "noise_trace": 3.0})}
    facts = _facts({"loss": [2.303, 2.302, 2.302, 2.303], "accuracy": [0.1, 0.098, 0.097, 0.097]}, monitor,
                   summary={"train": {"accuracy": 0.097, "loss": 2.302}}, num_classes=10, activation="sigmoid",
                   batch_size=32)
    found = [str(f) for f in findings_lib.training_findings(facts)]
    assert found[0].startswith("critical: The model did not learn: training accuracy 0.097 is at chance (1/10 = 0.100)")
    assert "Most likely cause: vanishing gradient at step 190: Dense_0 … Dense_6 (7 layers) get 2.4e-07 to 9.8e-04" in found[0]
    assert "of Dense_11's gradient norm" in found[0]
    assert not any("converged" in f or "larger batches" in f for f in found), found
    assert sum("Vanishing gradient" in f or "vanishing gradient" in f for f in found) == 1, "the cause is not repeated"


def test_underflow_is_named_as_underflow():
    layers = _layers(4)
    monitor = {"records": _records(layers, [0, 10], lambda i, k: 0.0 if i < 2 else 0.5)}
    found = [str(f) for f in findings_lib.training_findings(_facts({"loss": [1.0, 0.5, 0.3]}, monitor))]
    under = [f for f in found if "underflow" in f]
    assert under and "Dense_0 … Dense_1 (2 layers) get exactly 0 in float32" in under[0]
    assert not any("0.0e+00" in f for f in found)


def test_repeated_top_examples_are_merged_with_and_without_the_new_keys():
    old = [{"index": 11, "norm": 9.0, "step": 10}, {"index": 11, "norm": 8.0, "step": 20},
           {"index": 551, "norm": 7.0, "step": 10}, {"index": 551, "norm": 7.5, "step": 20},
           {"index": 551, "norm": 6.0, "step": 30}]
    new = [{"index": 551, "norm": 7.5, "step": 20, "epoch": 2, "count": 3}, {"index": 11, "norm": 9.0, "step": 10,
                                                                             "epoch": 1, "count": 2}]
    for top in (old, new):
        merged = findings_lib.merged_top_examples({"top_examples": top})
        assert [(r["index"], r["norm"], r["count"]) for r in merged] == [(11, 9.0, 2), (551, 7.5, 3)]
        monitor = {"records": _records(_layers(2), [0], lambda i, k: 1.0, examples=lambda k: [1.0, 2.0, 3.0]),
                   "top_examples": top}
        text = [str(f) for f in findings_lib.training_findings(_facts({"loss": [1.0, 0.5, 0.4]}, monitor))]
        line = next(f for f in text if "largest per-example gradients" in f)
        assert line.count("#11 ") == 1 and line.count("#551 ") == 1 and "2 times" in line and "3 times" in line
    assert findings_lib.merged_top_examples({"top_examples": new})[0]["epochs"] == [1]


def test_noise_scale_is_the_ratio_of_running_averages_and_continuous_after_warm_up():
    """Per-step |G|² estimates alternate sign (per-step ratio NaN half the time); the running ratio never breaks."""
    signal = [-1.0 if k % 2 else 3.0 for k in range(40)]  # mean 1.0
    trace = [50.0 + (5.0 if k % 3 else -10.0) for k in range(40)]
    records = [{"step": 10 * k, "noise_signal": s, "noise_trace": t,
                "noise_scale": t / s if s > 0 else math.nan} for k, (s, t) in enumerate(zip(signal, trace))]
    curve = findings_lib.noise_scale_curve(records, decay=0.9)
    assert sum(math.isnan(v) for v in curve["per_step"]) == 20
    assert all(math.isfinite(v) for v in curve["running"])
    # the bias-corrected averages of a 2-periodic signal: closed form of Σ 0.9^j over the even/odd lags
    k = 39
    weights = 0.1 * 0.9 ** np.arange(k, -1, -1) / (1 - 0.9 ** (k + 1))
    assert math.isclose(curve["running"][-1], float(weights @ np.asarray(trace)) / float(weights @ np.asarray(signal)),
                        rel_tol=1e-12)
    constant = [{"step": k, "noise_signal": 2.0, "noise_trace": 10.0, "noise_scale": 5.0} for k in range(5)]
    np.testing.assert_allclose(findings_lib.noise_scale_curve(constant)["running"], [5.0] * 5, rtol=1e-14)


def test_thirty_series_have_distinct_styles():
    assert len({tuple(series_style(i).values()) for i in range(30)}) == 30


# -- run directories, the CLI, compare, explain ---------------------------------------------------------------


def _run_dir(path, *, name, layers=None, epochs=6, monitor=True, activation="relu"):
    """A synthetic jdl train run directory: config, summary, metrics.csv (0-based epochs, as CSVLogger), model, monitor."""
    path.mkdir(parents=True)
    layers = layers or _layers(3)
    loss = [1.0 / (e + 1) for e in range(epochs)]
    rows = ["epoch,loss,val_loss,accuracy,val_accuracy,lr"] + [
        f"{e},{loss[e]},{loss[e] + 0.1},{1 - loss[e] / 2},{1 - loss[e] / 2 - 0.05},0.001" for e in range(epochs)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    (path / "config.json").write_text(json.dumps({"name": name, "seed": 0, "model": {"name": "mlp", "outputs": 10,
                                                  "activation": activation}, "train": {"optimizer": "adam",
                                                  "learning_rate": 0.001, "batch_size": 32, "epochs": epochs}}))
    (path / "summary.json").write_text(json.dumps({"name": name, "epochs_run": epochs, "best_epoch": epochs,
                                                   "best_monitor": "val_loss", "train": {"loss": loss[-1]},
                                                   "test": {"loss": loss[-1] + 0.1, "accuracy": 0.9}}))
    (path / "model.json").write_text(json.dumps([{"layer": n, "shapes": [f"kernel (4, {i + 4})"], "parameters": 4}
                                                 for i, n in enumerate(layers)]))
    if monitor:
        (path / "monitor.json").write_text(json.dumps({"every": 5, "records": _records(
            layers, range(0, 30, 5), lambda i, k: 0.1 * (i + 1))}))
    return path


def test_jdl_report_without_monitor_renders_curves_and_says_the_monitor_was_off(tmp_path, capsys):
    run = _run_dir(tmp_path / "run", name="plain", monitor=False)
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "wrote" in capsys.readouterr().out
    assert len(_images(page)) == 1, "the curves"
    assert "The gradient monitor was off for this run" in page
    assert "The learning rate was constant at 0.001." in page
    assert "best epoch 6" in page and "epochs counted from 1" in page
    data = json.loads((run / "report.json").read_text())
    assert data["curves"]["epoch"] == [1, 2, 3, 4, 5, 6]


def test_jdl_report_compares_runs_of_different_models(tmp_path, capsys):
    a = _run_dir(tmp_path / "a", name="small", layers=["Dense_0", "Dense_1", "Dense_2"])
    b = _run_dir(tmp_path / "b", name="deep", layers=["Dense_0", "Dense_1", "Dense_2", "Dense_3"], activation="tanh")
    c = _run_dir(tmp_path / "c", name="nomon", monitor=False)
    out = tmp_path / "cmp"
    assert cli.main(["report", str(a), str(b), str(c), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Comparison: small vs deep vs nomon" in page
    assert "3 of 4 layers match across the runs" in page and ": Dense_0, Dense_1, Dense_2." in page
    assert "<tr><td>Dense_3</td><td>—</td><td>0.4</td><td>—</td><td>no</td></tr>" in page
    assert "The monitor was off for nomon" in page
    assert "Settings that differ: activation." in page
    assert "<tr><td>monitor off</td><td>only nomon</td>" in page  # the findings diffed by topic
    assert len(_images(page)) == 2, "curves overlaid and per-layer profiles"
    assert cli.main(["report", str(a), str(tmp_path / "missing")]) == 2
    assert "is not a jdl train run directory" in capsys.readouterr().err


def test_a_report_of_100_epochs_and_10_layers_stays_under_3_mb_and_offline(tmp_path):
    layers = _layers(10)
    rng = np.random.default_rng(0)
    monitor = {"every": 10, "records": _records(
        layers, range(0, 10_000, 10), lambda i, k: float(rng.lognormal()),
        activation_stats=lambda i, k: {"mean": 0.5, "std": 0.2, "saturated": 0.0, "dead": float(rng.random() / 4)},
        noise=lambda k: {"noise_scale": 5.0, "noise_signal": 2.0, "noise_trace": 10.0},
        examples=lambda k: rng.random(32).tolist()),
        "top_examples": [{"index": i, "norm": 10.0 - i, "step": 10 * i} for i in range(10)]}
    for r in monitor["records"]:
        r["gsnr"] = {n: 0.1 for n in layers}
    curves = {"loss": list(np.linspace(2, 0.1, 100)), "val_loss": list(np.linspace(2.1, 0.3, 100)), "lr": [1e-3] * 100}
    report = report_lib.training_report(history={"history": curves, "epoch": list(range(100))}, monitor=monitor)
    page, _ = report.save(tmp_path)
    size = page.stat().st_size
    assert size < 3_000_000, size
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert text.index("<td>Dense_2</td>") < text.index("<td>Dense_9</td>"), "layers in network order"


def test_training_report_from_python_shows_config_examples_early_stop_and_attributions(tmp_path):
    """One tiny real fit: the report from the Python objects, the same function `jdl train` calls."""
    import jdl

    data = jdl.data.load("digits")  # flat (n, 64): thumbnails are drawn as 8×8 images
    x, y = data.x_train[:96], data.y_train[:96]
    trainer = jdl.Trainer(jdl.models.MLP(hidden=(8,), outputs=10), loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(3e-3), metrics=["accuracy"])
    monitor = jdl.callbacks.GradientMonitor(every=1, moments=True, top_k=6)
    stop = jdl.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=1)
    state, history = trainer.fit(x, y, epochs=5, batch_size=32, callbacks=[monitor, stop], verbose=0)
    assert history.stop_reason.startswith("early stopping after epoch 2: loss did not improve for 1 epochs")
    report = report_lib.training_report(history=history, monitor=monitor, trainer=trainer, state=state,
                                        data=data._replace(x_train=x, y_train=y))
    page, _ = report.save(tmp_path)
    text = page.read_text()
    config = re.search(r"<h2>Config</h2>(.*?)</section>", text, flags=re.S).group(1)
    assert "<td>optimizer</td><td>adam</td>" in config and "<td>learning rate</td><td>0.003</td>" in config
    assert "<td>batch size</td><td>32</td>" in config and "<td>init</td><td>xavier_uniform</td>" in config
    assert "The dotted red line marks the early stop after epoch 2." in text
    assert "2 epochs run (counted from 1); best epoch" in text
    top = findings_lib.merged_top_examples(monitor.to_dict())
    gallery = re.search(r"<h2>Per-example gradient norms</h2>(.*?)</section>", text, flags=re.S).group(1)
    assert gallery.count("<div class='card") == len(top) >= 1 and gallery.count("<img alt='example'") == len(top)
    predicted = trainer.predict(state, x[[t["index"] for t in top]]).argmax(-1)
    assert [report.data["examples"][str(t["index"])]["prediction"] for t in top] == predicted.tolist()
    assert [report.data["examples"][str(t["index"])]["label"] for t in top] == y[[t["index"] for t in top]].tolist()
    attributions = re.search(r"<h2>Attributions of test examples</h2>(.*?)</section>", text, flags=re.S).group(1)
    assert attributions.count("<div class='card") == 4 and attributions.count("<img") == 4 * 5
    assert all(png.startswith(b"\x89PNG") for png in _images(text))


def test_explain_report_images_and_tokens():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class Bag(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            return nn.Dense(3)(nn.Embed(20, 4)(tokens).mean(1))

    tokens = np.asarray([[1, 2, 3, 4], [5, 5, 6, 0]], np.int32)
    model = Bag()
    params = model.init(jax.random.key(0), tokens)
    fn = lambda t: model.apply(params, t)  # noqa: E731
    report = report_lib.explain_report(fn, tokens, np.asarray([0, 1]), info={"vocabulary": [f"w{i}" for i in range(20)]})
    text = report.html()
    assert text.count("<div class='tokens'>") == 2 and ">w5</span>" in text
    # gradient x embedding per token, against a closed form: s = w_t·mean(E[tokens]) + b, so token j gets E_j·w_t / T
    table, w = params["params"]["Embed_0"]["embedding"], params["params"]["Dense_0"]["kernel"]
    target = np.asarray(fn(jnp.asarray(tokens))).argmax(-1)
    expected = np.stack([np.asarray(table[tokens[i]] @ w[:, target[i]]) / 4 for i in range(2)])
    np.testing.assert_allclose(report.data["token_attributions"], expected, rtol=1e-5, atol=1e-7)

    images = np.random.default_rng(0).random((3, 6, 6, 1)).astype(np.float32)
    kernel = jnp.asarray(np.random.default_rng(1).normal(size=(36, 4)), jnp.float32)
    page = report_lib.explain_report(lambda x: x.reshape(len(x), -1) @ kernel, images).html()
    assert page.count("<tr>") == 1 + 3 and page.count("class='tile'") == 3 * 6
    with pytest.raises(ValueError, match="methods must be among"):
        report_lib.explain_report(fn, tokens, methods=("occlusion",))


def test_jdl_explain_on_a_directory_without_a_run_is_one_line(tmp_path, capsys):
    assert cli.main(["explain", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jdl explain: error:") and "config.json and a checkpoint" in err and err.count("\n") == 1
