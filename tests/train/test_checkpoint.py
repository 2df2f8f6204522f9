from pathlib import Path

import jax
import numpy as np
import pytest

import jdl
from jdl import callbacks as cb
from jdl import optim
from jdl.models import MLP
from jdl.train import Trainer, checkpoint

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)


def trainer():
    return Trainer(MLP(hidden=(8,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.05))


def test_model_checkpoint_keeps_the_best_epoch_and_restores_it(tmp_path):
    t = trainer()
    saver = cb.ModelCheckpoint(tmp_path / "best", monitor="val_loss", save_best_only=True, max_to_keep=1)
    seen = []
    state, history = t.fit(X, Y, epochs=8, batch_size=8, validation_split=0.25, verbose=0,
                           callbacks=[saver, cb.LambdaCallback(on_epoch_end=lambda e, s, logs: seen.append(s))])
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert checkpoint.latest_step(tmp_path / "best") == best_epoch
    restored, record = checkpoint.restore(tmp_path / "best", t.init(X))
    assert record["epoch"] == best_epoch and record["logs"]["val_loss"] == history.history["val_loss"][best_epoch]
    for a, b in zip(jax.tree_util.tree_leaves(restored.arrays()), jax.tree_util.tree_leaves(seen[best_epoch].arrays())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert t.evaluate(restored, X[48:], Y[48:])["loss"] == pytest.approx(history.history["val_loss"][best_epoch], rel=1e-6)


def test_backup_and_restore_continues_an_interrupted_fit(tmp_path):
    whole, _ = trainer().fit(X, Y, epochs=6, batch_size=8, verbose=0, seed=1)

    class Crash(cb.Callback):
        def on_epoch_end(self, epoch, state, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        trainer().fit(X, Y, epochs=6, batch_size=8, verbose=0, seed=1, callbacks=[Crash(), cb.BackupAndRestore(backup)])
    assert checkpoint.restore(backup, trainer().init(X))[1]["epoch"] == 1
    resumed, history = trainer().fit(X, Y, epochs=6, batch_size=8, verbose=0, seed=1, callbacks=[cb.BackupAndRestore(backup)])
    assert history.epoch == list(range(6))
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not backup.exists(), "a finished fit deletes its backup by default"


def test_restore_without_checkpoint_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint found in"):
        checkpoint.restore(tmp_path / "empty", trainer().init(X))


def test_tensorboard_writes_event_files(tmp_path):
    pytest.importorskip("tensorboardX")
    trainer().fit(X, Y, epochs=2, batch_size=16, verbose=0, callbacks=[cb.TensorBoard(tmp_path / "tb")])
    assert any(p.name.startswith("events.") for p in (tmp_path / "tb").iterdir())


def test_augment_runs_on_training_batches_only():
    t = trainer()
    plain, _ = t.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    noisy, _ = t.fit(X, Y, epochs=2, batch_size=8, verbose=0,
                     augment=lambda key, x: x + 0.5 * jax.random.normal(key, x.shape))
    assert not np.array_equal(np.asarray(plain.params["Dense_0"]["kernel"]), np.asarray(noisy.params["Dense_0"]["kernel"]))
    again, _ = t.fit(X, Y, epochs=2, batch_size=8, verbose=0,
                     augment=lambda key, x: x + 0.5 * jax.random.normal(key, x.shape))
    np.testing.assert_array_equal(np.asarray(noisy.params["Dense_0"]["kernel"]), np.asarray(again.params["Dense_0"]["kernel"]))


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "compat_v0_sgd_momentum"


def _momentum_trainer(hidden=(4,)):
    return jdl.Trainer(jdl.models.MLP(hidden=hidden, outputs=3), loss="sparse_categorical_crossentropy",
                       optimizer=jdl.optim.sgd(0.1, momentum=0.9, clipnorm=1.0))


def test_a_checkpoint_of_the_previous_release_with_momentum_and_clipping_restores_exactly():
    """Written by commit c391a1f (fit 2 epochs, then save; arrays.npz holds that release's own arrays)."""
    x = np.random.RandomState(0).randn(64, 5).astype(np.float32)
    trainer = _momentum_trainer()
    state, _ = checkpoint.restore(FIXTURE / "checkpoint", trainer.init(x, 0, steps_per_epoch=2))
    restored = {jax.tree_util.keystr(p): np.asarray(leaf) for p, leaf in
                jax.tree_util.tree_flatten_with_path({"params": state.params, "opt_state": state.opt_state})[0]}
    recorded = np.load(FIXTURE / "arrays.npz")
    for path in recorded.files:
        np.testing.assert_array_equal(restored[path], recorded[path], err_msg=path)
    assert float(restored["['opt_state'].hyperparams['momentum']"]) == pytest.approx(0.9)
    assert float(restored["['opt_state'].hyperparams['clipnorm']"]) == pytest.approx(1.0)


def test_a_checkpoint_of_another_model_is_refused_naming_the_path():
    x = np.random.RandomState(0).randn(64, 5).astype(np.float32)
    with pytest.raises(ValueError, match=r"Dense_0.*shape"):
        checkpoint.restore(FIXTURE / "checkpoint", _momentum_trainer(hidden=(6,)).init(x, 0, steps_per_epoch=2))


class InterruptAt(cb.Callback):
    """Sets `event` after dispatch number `at` (0-based, counted over the fit) — what SIGTERM does in `jdl train`."""

    holds_state = False

    def __init__(self, event, at):
        self.event, self.at, self.seen = event, at, 0

    def on_train_batch_end(self, steps, state, logs):
        if self.seen == self.at:
            self.event.set()
        self.seen += 1


NOISY_Y = np.where(np.random.default_rng(1).random(64) < 0.3, 1 - Y, Y).astype(np.int32)  # val loss rises after epoch 3


def _watched_fit(backup, *extra, **fit):
    """A fit with EarlyStopping (restoring the best weights) and ReduceLROnPlateau, 3 dispatches per epoch."""
    t = Trainer(MLP(hidden=(32,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.1),
                steps_per_execution=2)
    watchers = [cb.EarlyStopping(patience=2, restore_best_weights=True), cb.ReduceLROnPlateau(patience=1, factor=0.5)]
    return t.fit(X, NOISY_Y, epochs=8, batch_size=8, validation_split=0.25, verbose=0, seed=3,
                 callbacks=[*watchers, *extra, cb.BackupAndRestore(backup, **fit)])


def test_an_interrupted_fit_resumes_mid_epoch_to_bit_identical_parameters(tmp_path):
    """Stop at a random dispatch, resume, stop again, damage the newest checkpoint, resume: same as one fit."""
    import threading

    whole, history = _watched_fit(tmp_path / "whole")
    epochs_run = len(history.epoch)
    best = int(np.argmin(history.history["val_loss"]))
    assert best < epochs_run - 1 < 7 and len(set(history.history["lr"])) == 2, "both callbacks must act"
    first = int(np.random.default_rng().integers(0, 3 * (best + 1)))
    second = 3 * (best + 1) - first  # in the resumed fit: step 4 of 6 of the epoch after the best one
    backup = tmp_path / "stopped"
    for at in (first, second):
        event = threading.Event()
        with pytest.raises(cb.TrainingInterrupted) as stop:
            _watched_fit(backup, InterruptAt(event, at), interrupt=event)
        assert f"{stop.value.steps_done}/6" in str(stop.value), at
    assert stop.value.epoch == best + 1 and stop.value.steps_done == 4, (first, second)
    newest = max(checkpoint.steps(backup))
    data = max((backup / str(newest) / "state" / "d").iterdir(), key=lambda f: f.stat().st_size)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match=rf"checkpoint .*{newest} cannot be read \(file .*{data.name}\); falling back"):
        resumed, again = _watched_fit(backup)
    assert again == history, f"interrupted at dispatches {first} and {second}"
    for a, b in zip(jax.tree_util.tree_leaves(whole.arrays()), jax.tree_util.tree_leaves(resumed.arrays())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"interrupted at {first} and {second}")


def test_a_step_an_earlier_killed_attempt_saved_is_saved_again_not_refused(tmp_path):
    """A run killed after saving epoch k's checkpoint but before its backup re-runs epoch k on resume and saves k again."""
    t = trainer()
    first, later = t.init(X, 0), t.init(X, 1)
    earlier_attempt = checkpoint.Saver(tmp_path / "best", None)
    earlier_attempt.save(3, first, {"epoch": 3})
    earlier_attempt.close()
    resumed = checkpoint.Saver(tmp_path / "best", None)
    resumed.save(3, later, {"epoch": 3, "again": True})
    resumed.close()
    restored, record = checkpoint.restore(tmp_path / "best", t.init(X))
    assert record == {"epoch": 3, "again": True} and checkpoint.steps(tmp_path / "best") == [3]
    for a, b in zip(jax.tree_util.tree_leaves(later.params), jax.tree_util.tree_leaves(restored.params)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
