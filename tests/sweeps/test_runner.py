"""Running sweeps: trial run directories reproducible alone, sweep.json/csv, resume after a kill, Optuna's study."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jdl import cli
from jdl import config as config_lib
from jdl import runs
from jdl.sweeps import optuna_search, runner, spec, store


def _column(run_dir, name):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


def test_grid_trials_are_ordinary_runs_reproducible_alone(write_sweep, tmp_path, capsys):
    path = write_sweep("""
        name = "lr_grid"
        objective = "val_loss, minimize"
        [space]
        "train.learning_rate" = [0.2, 0.02]
    """)
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--out", str(out), "--verbose", "0"]) == 0
    body = json.loads((out / "sweep.json").read_text())
    assert body["method"] == "grid" and body["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert [t["number"] for t in body["trials"]] == [0, 1]
    for trial in body["trials"]:
        run_dir = out / trial["run_dir"]
        assert trial["state"] == "complete"
        assert trial["value"] == min(_column(run_dir, "val_loss"))
        summary = json.loads((run_dir / "summary.json").read_text())
        lr = trial["params"]["train.learning_rate"]
        assert summary["name"] == f"iris_base lr={lr:g}"
        assert f"Training report: iris_base lr={lr:g}" in (run_dir / "report.html").read_text()
    with open(out / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["train.learning_rate"]) for r in rows] == [0.2, 0.02]
    assert [float(r["value"]) for r in rows] == [t["value"] for t in body["trials"]]
    # trial 1 alone, from the command sweep.json records: the same numbers, bit for bit
    sweep = spec.load(path)
    overrides = sweep.trial_overrides(body["trials"][1]["params"], "iris_base")
    assert body["trials"][1]["command"].endswith(f"--out {out / 'trial-1'}")
    runs.run(config_lib.load(tmp_path / "base.toml", overrides), tmp_path / "alone", verbose=0)
    assert _column(tmp_path / "alone", "val_loss") == _column(out / "trial-1", "val_loss")
    page = (out / "report.html").read_text()
    assert "Sweep report: lr_grid" in page and "Trials, best first" in page
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 2
    assert "already holds this sweep; use --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkilled_workers_resume_and_finish_every_trial_once(write_sweep, tmp_path):
    path = write_sweep("""
        name = "killed"
        method = "random"
        trials = 4
        seed = 3
        objective = "val_loss"
        [space]
        "train.learning_rate" = { log_uniform = [0.01, 0.3] }
    """)
    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-m", "jdl.cli", "sweep", str(path), "--out", str(out), "--workers", "2",
                               "--verbose", "0"], start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(r["state"] == "complete" for r in store.trials(out)):
        if (out / "sweep.json").exists():
            json.loads((out / "sweep.json").read_text())  # valid JSON at every moment
        time.sleep(0.2)
    finished_before = {r["number"]: r for r in store.trials(out) if r["state"] == "complete"}
    assert finished_before, "no trial finished within 240 s"
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()
    claims = [json.loads(c.read_text())["pid"] for c in out.glob("trial-*/.claim")]
    while any(store._alive(pid) for pid in claims) and time.monotonic() < deadline + 30:
        time.sleep(0.1)
    json.loads((out / "sweep.json").read_text())
    assert cli.main(["sweep", str(path), "--out", str(out), "--resume", "--verbose", "0"]) == 0
    body = json.loads((out / "sweep.json").read_text())
    assert [t["number"] for t in body["trials"]] == [0, 1, 2, 3]
    assert all(t["state"] == "complete" for t in body["trials"])
    for number, before in finished_before.items():
        assert store.read_trial(out, number)["seconds"] == before["seconds"]  # not run again
    expected = spec.load(path).points()
    for trial in body["trials"]:
        assert trial["params"] == expected[trial["number"]]
        epochs = [int(row["epoch"]) for row in csv.DictReader(open(out / trial["run_dir"] / "metrics.csv"))]
        assert epochs == [0, 1, 2]  # each epoch once, also for the trial a worker was killed in
    assert not list(out.glob("trial-*/.claim"))


def test_optuna_study_matches_sweep_json_and_interrupted_trials_continue_in_place(write_sweep, tmp_path, monkeypatch):
    import optuna

    path = write_sweep("""
        name = "tpe"
        method = "optuna"
        trials = 3
        objective = "val_loss"
        pruner = { name = "median", startup_trials = 1, warmup_epochs = 0 }
        [space]
        "train.learning_rate" = { log_uniform = [0.01, 0.3] }
        seed = { choice = [0, 1] }
    """)
    sweep, out = spec.load(path), tmp_path / "out"
    real = runner.run_trial

    def interrupted_second(sweep, out, number, params, **kwargs):
        if number == 1:
            raise KeyboardInterrupt
        return real(sweep, out, number, params, **kwargs)

    monkeypatch.setattr(runner, "run_trial", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        runner.sweep(sweep, out, verbose=0)
    monkeypatch.setattr(runner, "run_trial", real)
    body = runner.sweep(sweep, out, resume=True, verbose=0)
    study = optuna.load_study(study_name="tpe", storage=optuna_search.study(sweep, out)._storage)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]  # the interrupted trial 1 was continued, not replaced
    states = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}
    for record, frozen in zip(body["trials"], trials):
        assert frozen.state == states[record["state"]]
        assert optuna_search.decode(sweep, frozen.params) == record["params"]
        if record["state"] == "complete":
            assert frozen.value == record["value"]
    assert "Sweep report: tpe" in (out / "report.html").read_text()


def test_health_findings_group_trials_by_trouble_and_name_the_values_they_share():
    from jdl.sweeps import report, space

    sweep = spec.Sweep(name="s", path=None, base=None, overrides=(), method="random", trials=4, seed=0,
                       objective=spec.Objective("val_loss", "minimize"), pruner={"name": "none"},
                       dimensions=space.parse({"train.learning_rate": {"log_uniform": [1e-4, 1.0]},
                                               "model.kernel_init": {"choice": ["he_normal", "glorot_uniform"]}}))
    trials = [{"number": n, "params": {"train.learning_rate": lr, "model.kernel_init": init}, "state": "complete"}
              for n, (lr, init) in enumerate([(0.5, "he_normal"), (0.3, "glorot_uniform"), (1e-3, "he_normal"), (2e-3, "he_normal")])]
    health = {0: ["90% of layer Dense_0's ReLUs are dead"], 1: ["layer Dense_1's gradient is non-finite at step 12",
                                                               "80% of layer Dense_0's ReLUs are dead"], 2: [], 3: []}
    found = report.health_findings(sweep, trials, health)
    assert found[0].startswith("Non-finite in 1 of 4 trials (#1): learning_rate 0.3 (the others 0.001–0.5)")
    assert found[1].startswith("Dead ReLUs in 2 of 4 trials (#0, #1): learning_rate 0.3–0.5 (the others 0.001–0.002); "
                               "kernel_init he_normal ×1, glorot_uniform ×1")
    assert len(found) == 2


def test_a_trial_is_claimed_once_and_a_dead_claim_is_cleared_on_resume(tmp_path):
    assert store.claim(tmp_path, 3) and not store.claim(tmp_path, 3)
    with pytest.raises(FileExistsError, match=f"trial 3 of {tmp_path} is being run by process {os.getpid()}"):
        store.clear_stale_claims(tmp_path)  # this process is alive: refuse to steal its trial
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "trial-3" / ".claim").write_text(json.dumps({"host": __import__("socket").gethostname(),
                                                             "pid": int(dead.stdout)}))
    (tmp_path / "trial-4").mkdir()
    (tmp_path / "trial-4" / ".claim").write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert store.clear_stale_claims(tmp_path) == ([3], ["trial 4 (host elsewhere, pid 1)"])
    assert store.claim(tmp_path, 3)


def test_a_finished_trials_claim_left_by_a_killed_worker_is_removed_on_resume(tmp_path):
    """The worker wrote trial 5's record, then died before releasing its claim (SIGKILL between the two)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = __import__("socket").gethostname()
    for number in (5, 6):
        store.trial_dir(tmp_path, number).mkdir()
        store.write_trial(tmp_path, {"number": number, "state": "complete"})
    (tmp_path / "trial-5" / ".claim").write_text(json.dumps({"host": host, "pid": int(dead.stdout)}))
    (tmp_path / "trial-6" / ".claim").write_text(json.dumps({"host": host, "pid": os.getpid()}))  # still running
    assert store.clear_stale_claims(tmp_path) == ([], [])
    assert not (tmp_path / "trial-5" / ".claim").exists() and (tmp_path / "trial-6" / ".claim").exists()
