"""Sweep files: every searched key and value checked against the base config, the objective, the method's options."""

import pytest

from jdl import cli
from jdl.config import ConfigError
from jdl.sweeps import spec


def test_a_valid_sweep_and_its_trial_configs(write_sweep):
    sweep = spec.load(write_sweep("""
        method = "grid"
        set = ["train.epochs=2"]
        objective = "val_accuracy, maximize"
        [space]
        "train.learning_rate" = [0.1, 0.01]
        "model.hidden" = [[4], [8, 8]]
    """))
    assert sweep.trials == 4 and sweep.objective == spec.Objective("val_accuracy", "maximize")
    config = sweep.trial_config({"train.learning_rate": 0.01, "model.hidden": [8, 8]})
    assert config.train.learning_rate == 0.01 and tuple(config.model.options["hidden"]) == (8, 8)
    assert config.train.epochs == 2
    assert config.name == "iris_base lr=0.01 hidden=8x8"


@pytest.mark.parametrize("body, message", [
    ('objective = "val_loss"\n[space]\n"train.learnin_rate" = [0.1]', "space.train.learnin_rate = 0.1: unknown key"),
    ('objective = "val_loss"\n[space]\n"model.width" = [4]', "space.model.width = 4: unknown key"),
    ('objective = "val_loss"\n[space]\n"train.optimizer" = ["adam", "adamm"]', "space.train.optimizer = 'adamm'"),
    ('objective = "val_loss"\n[space]\n"model.dropout" = { choice = [] }', "space.model.dropout: choice needs a non-empty list"),
    ('objective = "val_loss"\n[space]\n"train.learning_rate" = { log_uniform = [0, 1] }', "log_uniform needs positive bounds"),
    ('objective = "val_f1, maximize"\n[space]\nseed = [0]', "objective: 'val_f1' is never logged by the base config; its runs log loss, accuracy, val_loss"),
    ('objective = "val_accuracy"\n[space]\nseed = [0]', "say 'minimize' or 'maximize'"),
    ('objective = "val_loss, lower"\n[space]\nseed = [0]', "direction must be 'minimize' or 'maximize'"),
    ('method = "bayes"\nobjective = "val_loss"\n[space]\nseed = [0]', "method must be one of grid, random, optuna"),
    ('method = "random"\nobjective = "val_loss"\n[space]\nseed = [0]', "trials must be a positive integer"),
    ('trials = 3\nobjective = "val_loss"\n[space]\nseed = [0]', "a grid sweep runs every combination"),
    ('pruner = "median"\nobjective = "val_loss"\n[space]\nseed = [0]', "pruner 'median' needs method = 'optuna'"),
    ('objective = "val_loss"\npopulation = 0\n[space]\nseed = [0]', "population must be a positive integer"),
    ('objective = "val_loss"\npopulation = { size = 2, members = ["model.hidden"] }\n[space]\n"model.hidden" = [[4], [8]]',
     "population.members: 'model.hidden' cannot be vmapped: members of a population share one compiled step"),
    ('objective = "val_loss"\npopulation = { size = 2, members = ["model.dropout"] }\n[space]\n"model.dropout" = [0.1, 0.2]',
     "population.members: 'model.dropout': a dropout rate cannot differ between members"),
    ('objective = "val_loss"\npopulation = { size = 2, members = ["seed"] }\n[space]\n"train.learning_rate" = [0.1]',
     "population.members: 'seed' is not a key of [space]"),
    ('objective = "val_loss"\npopulation = { size = 2, member = ["seed"] }\n[space]\nseed = [0]', "unknown key population.'member'"),
    ('method = "optuna"\ntrials = 2\nobjective = "val_loss"\npopulation = 2\n[space]\nseed = [0, 1]',
     "population: an optuna sweep asks for its trials one at a time"),
    ('objective = "val_loss"', "missing key 'space'"),
])
def test_bad_sweep_files_name_the_key(write_sweep, body, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        spec.load(write_sweep(body))


def test_the_command_answers_a_bad_sweep_with_one_line(write_sweep, capsys):
    path = write_sweep('objective = "val_loss"\n[space]\n"model.dropout" = { choice = [] }')
    assert cli.main(["sweep", str(path), "--out", str(path.parent / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("jdl sweep: error: space.model.dropout: choice needs")
    assert not (path.parent / "out").exists()
