"""Multi-process `jdl train` for real on this machine: 2 and 4 processes on localhost (Gloo), 2 CPU devices each.

One module fixture starts every multi-process run at once (they overlap their start-up and the
heartbeat wait): the 2- and 4-process runs must give the per-epoch losses and final parameters of
a single-process, 1-device run with the same global batch (computed in this process); a third,
long run loses its process 1 to SIGKILL; a process with 4 devices asks for a batch that does not
divide over them; another waits for a coordinator nobody serves.
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jdl import cli
from jdl import config as config_lib
from jdl import launch
from jdl import runs as run_lib
from jdl.train import checkpoint, distributed
from tests.once import once

CONFIG = """
name = "multihost"
seed = 3
[data]
name = "iris"
options = {{ test_size = 0.2, seed = 1 }}
validation_split = 0.25
[model]
name = "mlp"
hidden = [4]
outputs = 3
[train]
epochs = {epochs}
batch_size = 16
optimizer = "sgd"
learning_rate = 0.1
[callbacks]
early_stopping = {{ monitor = "val_loss", patience = 1, min_delta = 10.0, restore_best_weights = true }}
"""
# 90 training rows in global batches of 16: five full batches and a last partial one of 10; no epoch
# improves val_loss by min_delta, so early stopping ends the 3-epoch run after epoch 2 and restores epoch 1's weights.
LONG_EPOCHS = 6  # the run whose process 1 is killed after its second epoch; one process then resumes it


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A free localhost port, never one given before in this module (two runs on one port join each other)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def devices_env(devices: int) -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def start(config: Path, out: Path, processes: int, *extra: str) -> list[subprocess.Popen]:
    """`jdl train` as `processes` real processes on localhost, each with 2 CPU devices."""
    env = devices_env(2)
    port = free_port()
    return [subprocess.Popen([sys.executable, "-m", "jdl.cli", "train", str(config), "--out", str(out), "--verbose", "2",
                              "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                              "--process-id", str(i), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for i in range(processes)]


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    outputs = [p.communicate(timeout=300) for p in processes]
    return [(p.returncode, *o) for p, o in zip(processes, outputs)]


def kill_after_second_epoch(processes: list[subprocess.Popen], result: dict) -> None:
    """Read process 0's output; at its second epoch line SIGKILL process 1; record how long the survivor takes.

    By then the first epoch's checkpoint is committed (a save waits for the one before it), so the run can resume.
    """
    first = processes[0]
    lines = []
    for line in first.stdout:
        lines.append(line)
        if line.startswith("Epoch 2/"):
            processes[1].kill()
            killed = time.monotonic()
            rest, err = first.communicate(timeout=120)
            result.update(seconds=time.monotonic() - killed, code=first.returncode, stderr=err,
                          stdout="".join(lines) + rest)
            return
    result.update(code=first.wait(), stderr=first.stderr.read(), stdout="".join(lines), seconds=None)


def metrics(out: Path) -> dict[str, list[float]]:
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def final_params(out: Path, config_path: Path):
    config = config_lib.load(config_path)
    trainer, dataset = run_lib.build(config)
    state, _ = checkpoint.restore(out / run_lib.LATEST, trainer.init(dataset.x_train, config.seed))
    return jax.device_get(state.params)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(root, config path, results) of every run, started once per test session whichever xdist workers ask.

    Two sets of ~10 interpreters at once would crowd 2 cores past Gloo's patience (tests.once).
    """
    root, results = once(tmp_path_factory, "multihost", start_every_run)
    return root, root / "short.toml", results


def start_every_run(root: Path) -> dict:
    short, long = root / "short.toml", root / "long.toml"
    short.write_text(CONFIG.format(epochs=3))
    long.write_text(CONFIG.format(epochs=LONG_EPOCHS).replace("patience = 1,", "patience = 1000,"))
    # In two waves of at most 5 interpreters: on 2 busy cores, more at once made one process compile more
    # than 30 s after another, and Gloo gives up on a collective whose peers are that late.
    started = {"four": start(short, root / "four", 4)}
    odd_batch = subprocess.Popen([sys.executable, "-m", "jdl.cli", "train", str(short), "--out", str(root / "odd"),
                                  "--set", "train.batch_size=6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=devices_env(4))
    env = dict(os.environ)
    lonely = subprocess.Popen([sys.executable, "-m", "jdl.cli", "train", str(short), "--out", str(root / "lonely"),
                               "--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2",
                               "--process-id", "1", "--connect-timeout", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert cli.main(["train", str(short), "--out", str(root / "one"), "--verbose", "0"]) == 0  # 1 process, 1 device
    results = {"four": finish(started["four"])}
    started = {"two": start(short, root / "two", 2), "killed": start(long, root / "killed", 2)}
    killed: dict = {}
    watcher = threading.Thread(target=kill_after_second_epoch, args=(started["killed"], killed))
    watcher.start()
    results["two"] = finish(started["two"])
    watcher.join(timeout=300)
    results["killed"] = killed
    results["killed_others"] = finish(started["killed"][1:])
    results["lonely"] = finish([lonely])[0]
    results["odd_batch"] = finish([odd_batch])
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name, processes", [("two", 2), ("four", 4)])
def test_processes_train_like_one_process_on_one_device(runs, name, processes):
    root, config, results = runs
    done = results[name]
    assert [code for code, _, _ in done] == [0] * processes, [err[-2000:] for _, _, err in done]
    one, many = metrics(root / "one"), metrics(root / name)
    assert len(one["loss"]) == 2  # stopped early, in every process at the same epoch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(many[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
    expected, got = final_params(root / "one", config), final_params(root / name, config)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6), expected, got)
    environment = json.loads((root / name / "environment.json").read_text())
    assert environment["process_count"] == processes and environment["device_count"] == 2 * processes


@pytest.mark.slow
def test_only_process_zero_prints_and_writes_the_report(runs):
    root, _, results = runs
    (code, out, err), *others = results["four"]
    assert out.count("Epoch ") == 2 and "wrote" in out and "Gloo" not in out
    assert all(o == "" and e == "" for _, o, e in others), others
    assert {"metrics.csv", "summary.json", "report.html", "config.json", "checkpoints"} <= {
        p.name for p in (root / "four").iterdir()}


@pytest.mark.slow
def test_a_killed_process_ends_the_others_with_one_line_naming_it(runs):
    _, _, results = runs
    killed = results["killed"]
    assert killed["seconds"] is not None and killed["seconds"] < 60, killed
    assert killed["code"] == launch.EXIT_LOST, killed
    lines = killed["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jdl train: error: lost process 1 of 2"), killed["stderr"]


@pytest.mark.slow
def test_the_killed_two_process_run_resumes_in_one_process_on_one_device(runs, tmp_path, capsys):
    """2 processes × 2 devices → 1 process, 1 device: the checkpoint restores onto the new layout and training
    continues like a run that was one process from the start (same global batch; to 1e-5)."""
    root, _, results = runs
    long = root / "long.toml"
    done = {p.name for p in (root / "killed" / run_lib.LATEST).iterdir()}
    assert any(name.isdigit() for name in done) and not (root / "killed" / "summary.json").exists(), done
    resumed = tmp_path / "resumed"
    shutil.copytree(root / "killed", resumed)
    assert cli.main(["train", str(long), "--out", str(resumed), "--resume", "--verbose", "0"]) == 0
    assert cli.main(["train", str(long), "--out", str(tmp_path / "alone"), "--verbose", "0"]) == 0
    capsys.readouterr()
    alone, again = metrics(tmp_path / "alone"), metrics(resumed)
    assert len(again["loss"]) == len(alone["loss"]) == LONG_EPOCHS
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(again[key], alone[key], rtol=1e-5, atol=1e-6, err_msg=key)
    expected, got = final_params(tmp_path / "alone", long), final_params(resumed, long)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6), expected, got)
    environment = json.loads((resumed / "environment.json").read_text())
    assert environment["process_count"] == 1 and environment["device_count"] == jax.device_count()


@pytest.mark.slow
def test_a_batch_not_divisible_by_the_global_device_count_names_the_option(runs):
    _, _, results = runs
    for code, _, err in results["odd_batch"]:
        assert code == 2, err
        assert err.strip().splitlines() == [
            "jdl train: error: train.batch_size must be divisible by the number of devices (4) for data parallelism, "
            "got 6; use a multiple of 4, e.g. 8"], err


@pytest.mark.slow
def test_an_unreachable_coordinator_is_one_line_within_the_timeout(runs):
    _, _, results = runs
    code, _, err = results["lonely"]
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--coordinator 127.0.0.1:" in lines[0] and "did not answer within 2 s" in lines[0], err


def test_bad_multi_process_arguments_name_the_option():
    with pytest.raises(ValueError, match="--coordinator must be HOST:PORT"):
        distributed.check_arguments("localhost", 2, 0)
    with pytest.raises(ValueError, match=r"--process-id must be in \[0, 2\)"):
        distributed.check_arguments("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="--num-processes and --process-id must be given together"):
        distributed.check_arguments("localhost:1234", 2, None)
    start = time.monotonic()
    with pytest.raises(ValueError, match="did not answer within 0.5 s"):
        distributed.initialize(f"127.0.0.1:{free_port()}", 2, 1, connect_seconds=0.5)
    assert not jax.distributed.is_initialized() and time.monotonic() - start < 30


def test_the_lost_process_is_read_from_jax_fatal_messages():
    # Recorded from jaxlib 0.10.2's coordination service: a task's missing heartbeat, and the coordinator gone.
    heartbeat = ("E1201 19:53:05.693647   14996 coordination_service.cc:1549] Use error polling to propagate the "
                 "following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending "
                 "heartbeats):\n1\nThe tasks have crashed.")
    leader = ("F1201 19:53:19.576339   15150 client.h:80] Terminating process because the JAX distributed service "
              "detected fatal errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either "
              "the leader task was preempted/died/restarted unexpectedly or this task is experiencing network issues.")
    assert launch.lost_process(heartbeat) == "process 1"
    assert launch.lost_process(leader) == "process 0 (the coordinator)"
    assert launch.describe_failure(heartbeat, 0, 4).startswith("jdl train: error: lost process 1 of 4")
    assert "lost contact with another process of 2" in launch.describe_failure("F1201 x.cc:1] odd", 1, 2)
    # A peer killed during a Gloo collective: the survivor's child aborts in Gloo, which names no process.
    gloo = "terminate called after throwing an instance of 'gloo::EnforceNotMet'\n  what():  [enforce fail at pair.cc:1]"
    assert launch.describe_failure(gloo, 0, 2).startswith("jdl train: error: lost process 1 of 2")
    assert launch.describe_failure(gloo, 2, 4).startswith("jdl train: error: lost another process of 4")
