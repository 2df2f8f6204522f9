"""Population training: P members in one vmapped step equal P separate fits, member by member.

The independent reference is an ordinary `Trainer.fit` per member with that member's settings.
float64 (a float64 MLP under a scoped `jax.enable_x64`): History and parameters to 1e-9 over 5
epochs, with per-member early stopping (a stopped member keeps its best weights); float32 (the
digits MLP of jdl.models): to 1e-4 after one epoch. Small slices of digits keep it cheap.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.train.population import Population, as_population

LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2]
SEEDS = [0, 1, 2, 3]
STOPS_EARLY = {0, 5, 10, 15}  # members whose EarlyStopping needs an improvement of 10 (they stop after epoch 2)


class MLP64(nn.Module):
    """The digits MLP in float64: Dense(hidden) -> ReLU -> Dense(outputs)."""

    hidden: int = 16
    outputs: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(self.hidden, dtype=jnp.float64, param_dtype=jnp.float64)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.outputs, dtype=jnp.float64, param_dtype=jnp.float64)(x)


def digits(n):
    data = jdl.data.load("digits")
    return data.x_train[:n], data.y_train[:n]


def stopper(k):
    return jdl.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0 if k in STOPS_EARLY else 0.0,
                                       restore_best_weights=True)


def leaves(state):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state.params)]


def max_difference(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(leaves(a), leaves(b)))


def history_difference(a, b, keys=None):
    assert sorted(a.history) == sorted(b.history) and a.epoch == b.epoch
    keys = a.history if keys is None else keys
    return max(abs(u - v) for key in keys for u, v in zip(a.history[key], b.history[key]))


@pytest.fixture(scope="module")
def float64_runs():
    """16 members (4 learning rates x 4 seeds), 5 epochs, and the 16 separate fits, in float64."""
    with jax.enable_x64(True):
        x, y = digits(200)
        x = x.astype(np.float64)

        def trainer(rate=1e-3):
            return jdl.Trainer(MLP64(), loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(rate),
                               metrics=["accuracy"])

        options = dict(epochs=5, batch_size=40, validation_split=0.2, verbose=0)
        population = Population.grid(learning_rate=LEARNING_RATES, seed=SEEDS)
        states, histories = trainer().fit(x, y, population=population, callbacks=[[stopper(k)] for k in range(16)],
                                          **options)
        alone = [trainer(m["learning_rate"]).fit(x, y, seed=m["seed"], callbacks=[stopper(k)], **options)
                 for k, m in enumerate(population)]
        best = {k: trainer(m["learning_rate"]).fit(x, y, seed=m["seed"], **{**options, "epochs": 1})[0]
                for k, m in enumerate(population) if k in STOPS_EARLY}
        return states, histories, alone, best


def test_float64_members_equal_separate_fits(float64_runs):
    states, histories, alone, _ = float64_runs
    assert len(states) == len(histories) == 16
    for k, (state, history) in enumerate(alone):
        assert leaves(states[k])[0].dtype == np.float64
        assert history_difference(histories[k], history, ("loss", "val_loss")) < 1e-9, k
        assert history_difference(histories[k], history) < 1e-6, k  # accuracies are float32 metrics: one rounding
        assert max_difference(states[k], state) < 1e-9, k
        assert int(states[k].step) == int(state.step)
        assert histories[k].stop_reason == history.stop_reason


def test_member_stopped_early_keeps_its_best_weights(float64_runs):
    states, histories, alone, best = float64_runs
    assert {k for k, h in enumerate(histories) if len(h.epoch) == 2} == STOPS_EARLY
    assert any(len(h.epoch) == 5 for h in histories)  # the others trained on while these were masked
    for k in STOPS_EARLY:
        assert "weights restored from epoch 1" in histories[k].stop_reason
        assert max_difference(states[k], best[k]) < 1e-9  # the state after epoch 1 of a 1-epoch fit


def test_float32_digits_mlp_members_equal_separate_fits_after_one_epoch():
    x, y = digits(320)

    def trainer(rate=1e-3):
        return jdl.Trainer(jdl.models.MLP(hidden=(32,), outputs=10, dropout=0.2), loss="sparse_categorical_crossentropy",
                           optimizer=jdl.optim.sgd(rate, momentum=0.5), metrics=["accuracy"])

    population = Population.grid(learning_rate=LEARNING_RATES, seed=SEEDS)
    options = dict(epochs=1, batch_size=32, validation_split=0.1, verbose=0)
    states, histories = trainer().fit(x, y, population=population, **options)
    for k, member in enumerate(population):
        state, history = trainer(member["learning_rate"]).fit(x, y, seed=member["seed"], **options)
        assert history_difference(histories[k], history) < 1e-4, k
        assert max_difference(states[k], state) < 1e-4, k


def test_members_differ_in_momentum_weight_decay_l2_and_loss_weights():
    """Settings some members leave off (momentum 0, no weight decay, no L2) equal fits built without them."""
    members = [{"momentum": 0.9, "l2": 0.5}, {"weight_decay": 0.05, "loss_weights": 2.0, "seed": 1}]
    with jax.enable_x64(True):
        x, y = digits(120)
        x = x.astype(np.float64)
        options = dict(epochs=2, batch_size=30, verbose=0)
        trainer = jdl.Trainer(MLP64(hidden=8), loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.1))
        states, histories = trainer.fit(x, y, population=members, seed=2, **options)
        for k, m in enumerate(members):
            optimizer = jdl.optim.sgd(0.1, momentum=m.get("momentum", 0.0), weight_decay=m.get("weight_decay"),
                                      l2=m.get("l2"))
            alone = jdl.Trainer(MLP64(hidden=8), loss="sparse_categorical_crossentropy", optimizer=optimizer,
                                loss_weights=m.get("loss_weights"))
            state, history = alone.fit(x, y, seed=m.get("seed", 2), **options)
            assert history_difference(histories[k], history) < 1e-9, k
            assert max_difference(states[k], state) < 1e-9, k


def test_population_of_p_takes_consecutive_seeds():
    assert [m["seed"] for m in as_population(3, 7)] == [7, 8, 9]
    assert len(as_population([{"seed": 1}, {}], 0)) == 2


@pytest.mark.parametrize("population, match", [
    (Population.grid, None),
    ({"hidden": [8, 16]}, "'hidden' cannot be vmapped.*grid"),
    ({"dropout": [0.1, 0.2]}, "dropout.*TracerBoolConversionError.*grid"),
    ({"learning_rate": [1e-3, 1e-2], "seed": [0, 1, 2]}, "same number of members"),
    ({"seed": [-1, 2]}, "population member 0 seed must be >= 0"),
    ({"momentum": [0.5, 1.5]}, "population member 1 momentum must be in \\[0, 1\\)"),
    ({"learning_rate": [1e-3, "fast"]}, "population member 1 learning_rate must be a real number"),
])
def test_bad_member_settings_name_the_setting(population, match):
    if match is None:
        with pytest.raises(ValueError, match="Population.grid\\(seed=...\\) needs a non-empty list"):
            Population.grid(seed=[])
        return
    with pytest.raises((ValueError, TypeError), match=match):
        Population(**population)


def test_bad_population_fits_are_refused_before_tracing():
    x, y = digits(40)
    adam = jdl.Trainer(jdl.models.MLP(hidden=(4,), outputs=10), loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="'momentum': optimizer 'adam' has no momentum"):
        adam.fit(x, y, population=Population(momentum=[0.0, 0.9]), verbose=0)
    with pytest.raises(ValueError, match="population must be > 0"):
        adam.fit(x, y, population=0, verbose=0)
    with pytest.raises(TypeError, match="population must be a number of members"):
        adam.fit(x, y, population="four", verbose=0)
    with pytest.raises(ValueError, match="population\\[1\\] setting 'units' cannot be vmapped"):
        adam.fit(x, y, population=[{"seed": 0}, {"units": 3}], verbose=0)
    with pytest.raises(ValueError, match="state must be None for a population fit"):
        adam.fit(x, y, population=2, state=adam.init(x), verbose=0)
    with pytest.raises(ValueError, match="ModelCheckpoint writes files.*one per member"):
        adam.fit(x, y, population=2, callbacks=[jdl.callbacks.ModelCheckpoint("/tmp/never")], verbose=0)
    with pytest.raises(ValueError, match="one list per member \\(2\\), got 3"):
        adam.fit(x, y, population=2, callbacks=[[], [], []], verbose=0)
    scheduled = jdl.Trainer(jdl.models.MLP(hidden=(4,), outputs=10), loss="sparse_categorical_crossentropy",
                            optimizer=jdl.optim.adam(jdl.optim.step_decay(1e-3, 0.5, 2)))
    with pytest.raises(ValueError, match="'learning_rate': the Trainer's learning rate is a schedule"):
        scheduled.fit(x, y, population=Population(learning_rate=[1e-3, 1e-2]), verbose=0)


class StopAfter:
    """An interrupt that is set from its `calls`-th poll on (BackupAndRestore polls after every dispatch)."""

    def __init__(self, calls):
        self.calls = calls

    def is_set(self):
        self.calls -= 1
        return self.calls < 0

    def __str__(self):
        return "test interrupt"


@pytest.mark.slow
def test_an_interrupted_population_saves_every_member_and_resumes_exactly(tmp_path):
    x, y = digits(96)

    def fit(callbacks):
        trainer = jdl.Trainer(jdl.models.MLP(hidden=(8,), outputs=10), loss="sparse_categorical_crossentropy",
                              steps_per_execution=2)
        return trainer.fit(x, y, population=Population(learning_rate=[1e-2, 3e-2], seed=[0, 1]), epochs=2,
                           batch_size=24, verbose=0, callbacks=callbacks)

    def backups(polls=None):  # each member its own interrupt, set from the same dispatch on (as by one signal)
        return [[jdl.callbacks.BackupAndRestore(tmp_path / f"member-{k}", interrupt=polls and StopAfter(polls))]
                for k in range(2)]

    straight, straight_histories = fit([[], []])
    with pytest.raises(jdl.callbacks.TrainingInterrupted, match="saved epoch 2 at step 2/4"):
        fit(backups(2))  # set at the first dispatch of epoch 2
    assert all((tmp_path / f"member-{k}").is_dir() for k in range(2))
    resumed, histories = fit(backups())
    for k in range(2):
        assert max_difference(resumed[k], straight[k]) == 0
        assert histories[k].history == straight_histories[k].history
