"""Population sweeps: trials differing only in numbers train as one population, each still an ordinary run."""

import csv
import json
from pathlib import Path

import numpy as np

from jdl import config as config_lib
from jdl import runs
from jdl.sweeps import population, spec, store
from jdl.train.checkpoint import latest_step


def _columns(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def test_trials_are_grouped_by_their_non_member_values(write_sweep):
    sweep = spec.load(write_sweep("""
        objective = "val_loss, minimize"
        population = 3
        [space]
        "model.kernel_init" = ["he_normal", "glorot_uniform"]
        "train.learning_rate" = [0.1, 0.02]
        seed = [0, 1]
    """))
    assert sweep.population == 3 and sweep.members == ("train.learning_rate", "seed")
    points = sweep.points()
    groups = population.batches(sweep, list(range(len(points))), points)
    assert groups == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert all(len({points[k]["model.kernel_init"] for k in group}) == 1 for group in groups)
    assert sweep.to_dict()["population"] == {"size": 3, "members": ["train.learning_rate", "seed"]}


def test_a_population_sweep_writes_trials_reproducible_alone(write_sweep, tmp_path, monkeypatch):
    reports = []  # the HTML reports (tested with runs) are left out here: they cost ~2 s each

    class Report:
        def save(self, out):
            reports.append(out)

    monkeypatch.setattr(population.report_lib, "training_report", lambda out, **given: Report())
    path = write_sweep("""
        name = "pop"
        objective = "val_loss, minimize"
        population = 4
        [space]
        "train.learning_rate" = [0.1, 0.02]
        seed = [0, 1]
    """)
    sweep = spec.load(path)
    out = tmp_path / "out"
    body = population.runner.sweep(sweep, out, verbose=0)
    assert [t["state"] for t in body["trials"]] == ["complete"] * 4
    records = [json.loads((out / t["run_dir"] / "trial.json").read_text()) for t in body["trials"]]
    assert all(r["population"] == [0, 1, 2, 3] for r in records)
    assert all(latest_step(out / t["run_dir"] / "checkpoints" / "best") is not None for t in body["trials"])
    trial = body["trials"][3]
    run_dir = out / trial["run_dir"]
    assert trial["value"] == min(_columns(run_dir)["val_loss"])
    assert json.loads((run_dir / "summary.json").read_text())["name"] == "iris_base lr=0.02 seed=1"
    assert reports == [out / t["run_dir"] for t in body["trials"]]
    overrides = sweep.trial_overrides(trial["params"], "iris_base")
    runs.run(config_lib.load(tmp_path / "base.toml", overrides), tmp_path / "alone", verbose=0)
    alone, member = _columns(tmp_path / "alone"), _columns(run_dir)
    assert sorted(alone) == sorted(member)
    for key in alone:
        np.testing.assert_allclose(member[key], alone[key], rtol=0, atol=1e-5, err_msg=key)
    kept = json.loads((run_dir / "monitor.json").read_text())["records"]
    reference = json.loads((tmp_path / "alone" / "monitor.json").read_text())["records"]
    assert [r["step"] for r in kept] == [r["step"] for r in reference]
    for ours, theirs in zip(kept, reference):  # the member's own per-example gradient norms
        assert ours["example_index"] == theirs["example_index"]
        np.testing.assert_allclose(ours["example_norm"], theirs["example_norm"], rtol=1e-4)
        np.testing.assert_allclose(ours["grad_norm"]["Dense_0"], theirs["grad_norm"]["Dense_0"], rtol=1e-4)


def test_the_digits_sweep_example_trains_two_populations_of_six():
    sweep = spec.load(Path(__file__).resolve().parents[2] / "examples" / "configs" / "digits_sweep.toml")
    points = sweep.points()
    groups = population.batches(sweep, list(range(len(points))), points)
    assert sweep.members == ("train.learning_rate", "seed")
    assert [len(g) for g in groups] == [6, 6]
    assert [{points[k]["model.kernel_init"] for k in g} for g in groups] == [{"he_normal"}, {"glorot_uniform"}]


def test_interrupted_trials_continue_alone_and_the_others_as_populations(write_sweep, tmp_path, monkeypatch):
    sweep = spec.load(write_sweep("""
        objective = "val_loss, minimize"
        population = 4
        [space]
        "train.learning_rate" = [0.1, 0.02]
        seed = [0, 1, 2]
    """))
    out = tmp_path / "out"
    (out / "trial-0").mkdir(parents=True)
    store.write_trial(out, {"number": 0, "state": "complete"})
    monkeypatch.setattr(population, "latest_step", lambda path: 1 if path.parent.parent.name == "trial-3" else None)
    ran = []
    monkeypatch.setattr(population.runner, "run_trial", lambda s, o, k, p: ran.append([k]) or {"number": k})
    monkeypatch.setattr(population, "run_population", lambda s, o, ks, p: ran.append(ks) or [{"number": k} for k in ks])
    assert population.run_batches(sweep, out, sweep.points(), lambda record: None) == 5
    assert ran == [[3], [1, 2, 4, 5]]  # trial 3 holds a checkpoint; trial 0 is finished
    assert not list(out.glob("trial-*/.claim"))  # every claim released
