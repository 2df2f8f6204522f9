import csv

import numpy as np
import pytest

from jdl import callbacks as cb
from jdl import optim
from jdl.models import MLP
from jdl.train import Trainer
from jdl.train.callbacks import FitContext


def drive(callback, values, monitor="val_loss", state=None):
    """Feed a sequence of monitored values to a callback as Keras would; return the epochs run."""
    context = FitContext(trainer=None, epochs=len(values), initial_epoch=0, steps_per_epoch=1, batch_size=1, history=None)
    callback.set_context(context)
    state = callback.on_train_begin(state, {}) or state
    run = []
    for epoch, value in enumerate(values):
        run.append(epoch)
        state = callback.on_epoch_end(epoch, state, {monitor: value}) or state
        if context.stop_training:
            break
    return run, state


# Expected stops below follow Keras 3's EarlyStopping step by step: wait += 1 each epoch; an
# improvement (value - min_delta beats best) resets wait only if it also beats the baseline;
# a non-improving epoch stops once wait >= patience (and epoch > 0).

def test_patience_counts_epochs_without_improvement():
    run, _ = drive(cb.EarlyStopping(patience=2), [1.0, 0.8, 0.85, 0.9, 0.7])
    assert run == [0, 1, 2, 3]
    run, _ = drive(cb.EarlyStopping(patience=0), [1.0, 0.8, 0.85, 0.9])
    assert run == [0, 1, 2]


def test_min_delta_sets_what_counts_as_improvement():
    assert drive(cb.EarlyStopping(patience=1, min_delta=0.1), [1.0, 0.95, 0.8])[0] == [0, 1]
    assert drive(cb.EarlyStopping(patience=1, min_delta=0.0), [1.0, 0.95, 0.8])[0] == [0, 1, 2]


def test_baseline_must_be_beaten_to_reset_patience():
    assert drive(cb.EarlyStopping(patience=2, baseline=0.5), [1.0, 0.9, 0.95, 0.9])[0] == [0, 1, 2]
    assert drive(cb.EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.9])[0] == [0, 1, 2, 3]


def test_start_from_epoch_ignores_the_warm_up():
    assert drive(cb.EarlyStopping(patience=0), [1.0, 2.0, 3.0, 2.5])[0] == [0, 1]
    assert drive(cb.EarlyStopping(patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 2.5])[0] == [0, 1, 2, 3]
    assert drive(cb.EarlyStopping(patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 3.5])[0] == [0, 1, 2, 3]


def test_mode_auto_maximises_accuracy():
    assert drive(cb.EarlyStopping(monitor="val_accuracy", patience=1), [0.5, 0.6, 0.55, 0.7], "val_accuracy")[0] == [0, 1, 2]
    assert drive(cb.EarlyStopping(monitor="val_accuracy", patience=1, mode="min"), [0.5, 0.6, 0.55], "val_accuracy")[0] == [0, 1]


def test_missing_monitor_warns_and_does_not_stop():
    stopper = cb.EarlyStopping(monitor="val_loss", patience=0)
    context = FitContext(trainer=None, epochs=3, initial_epoch=0, steps_per_epoch=1, batch_size=1, history=None)
    stopper.set_context(context)
    with pytest.warns(RuntimeWarning, match="`val_loss`, which is not in the logs. Available: loss"):
        stopper.on_epoch_end(0, None, {"loss": 1.0})
    assert not context.stop_training


def small_state(lr=0.1):
    x = np.ones((4, 3), np.float32)
    return Trainer(MLP(hidden=(4,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.sgd(lr)).init(x)


def test_reduce_lr_on_plateau_follows_keras():
    reducer = cb.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.02)
    _, state = drive(reducer, [1.0, 1.0, 1.0, 1.0], state=small_state(0.1))
    assert float(optim.learning_rate(state.opt_state)) == pytest.approx(0.02)
    values = [1.0, 1.0, 1.0, 1.0, 1.0]
    # patience 2: e0 best; e1 wait 1; e2 wait 2 -> 0.05, cooldown starts.
    # cooldown 1: e3 ends the cooldown and counts wait 1; e4 wait 2 -> 0.025.
    _, state = drive(cb.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1), values, state=small_state(0.1))
    assert float(optim.learning_rate(state.opt_state)) == pytest.approx(0.025)
    # cooldown 2: e3 and e4 are both cooling down (the second ends it and counts wait 1) -> still 0.05.
    _, state = drive(cb.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2), values, state=small_state(0.1))
    assert float(optim.learning_rate(state.opt_state)) == pytest.approx(0.05)


def test_learning_rate_scheduler_sets_the_rate_used_by_fit():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    t = Trainer(MLP(hidden=(4,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.sgd(0.1))
    scheduler = cb.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    _, history = t.fit(x, y, epochs=4, batch_size=8, callbacks=[scheduler], verbose=0)
    np.testing.assert_allclose(history.history["lr"], [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    path = tmp_path / "metrics.csv"
    t = Trainer(MLP(hidden=(4,), outputs=2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, history = t.fit(x, y, epochs=3, batch_size=8, callbacks=[cb.CSVLogger(path)], verbose=0)
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]
    assert [float(r["accuracy"]) for r in rows] == history.history["accuracy"]


def test_lambda_callback_and_verbose_two(capsys):
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    seen = []
    t = Trainer(MLP(hidden=(4,), outputs=2), loss="sparse_categorical_crossentropy")
    t.fit(x, y, epochs=2, batch_size=8, verbose=2,
          callbacks=[cb.LambdaCallback(on_epoch_end=lambda epoch, state, logs: seen.append((epoch, logs["loss"])))])
    assert [e for e, _ in seen] == [0, 1]
    out = capsys.readouterr().out
    assert "Epoch 1/2 - loss: " in out and "Epoch 2/2 - loss: " in out


def test_callback_arguments_are_validated():
    with pytest.raises(ValueError, match=r"mode must be one of \['auto', 'min', 'max'\], got 'up'"):
        cb.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience must be >= 0"):
        cb.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="factor must be < 1"):
        cb.ReduceLROnPlateau(factor=2.0)
    with pytest.raises(TypeError, match="schedule must be a function"):
        cb.LearningRateScheduler(0.1)
