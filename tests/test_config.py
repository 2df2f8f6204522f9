import json

import pytest

from jdl import config as C

MINIMAL = """
name = "tiny"
seed = 3
[data]
name = "iris"
[model]
name = "mlp"
hidden = [8]
outputs = 3
[train]
epochs = 2
"""


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_resolves_sections_and_defaults(tmp_path):
    config = C.load(write(tmp_path, MINIMAL))
    assert config.name == "tiny" and config.seed == 3
    assert config.data.name == "iris" and config.data.validation_split == 0.1
    assert config.model.name == "mlp" and config.model.options == {"hidden": [8], "outputs": 3}
    assert config.train.epochs == 2 and config.train.optimizer == "adam" and config.train.metrics == ("accuracy",)
    assert json.loads(json.dumps(config.to_dict()))["model"] == {"name": "mlp", "hidden": [8], "outputs": 3}


def test_overrides_are_parsed_as_toml_values(tmp_path):
    config = C.load(write(tmp_path, MINIMAL), ["train.learning_rate=0.01", "train.batch_size=8", "model.hidden=[4, 4]",
                                               "data.options={test_size = 0.3}", "train.optimizer=sgd"])
    assert config.train.learning_rate == 0.01 and config.train.batch_size == 8
    assert config.model.options["hidden"] == [4, 4] and config.data.options == {"test_size": 0.3}
    assert config.train.optimizer == "sgd"


@pytest.mark.parametrize("override, message", [
    ("train.learnin_rate=0.1", r"unknown key train\.'learnin_rate'; valid keys in \[train\]: loss, optimizer, learning_rate"),
    ("trian.epochs=3", r"unknown key 'trian'; valid keys: name, seed, data, model, train, callbacks"),
    ("model.hiden=[3]", r"unknown key model\.'hiden'; valid keys in \[model\]: name, hidden, outputs"),
    ("callbacks.early_stoping={patience = 2}", r"unknown key callbacks\.'early_stoping'; valid keys in \[callbacks\]: early_stopping"),
    ("train.epochs=ten", r"train\.epochs must be an integer, got 'ten'"),
    ("train.batch_size=true", r"train\.batch_size must be an integer, got True"),
    ("seed=-1", r"seed must be a non-negative integer, got -1"),
    ("model.name=resnet", r"model\.name: unknown model 'resnet'"),
    ("train.epochs", r"--set expects key=value"),
])
def test_bad_keys_and_values_name_the_key(tmp_path, override, message):
    with pytest.raises(C.ConfigError, match=message):
        C.load(write(tmp_path, MINIMAL), [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(C.ConfigError, match="does not exist"):
        C.load(tmp_path / "nope.toml")
    with pytest.raises(C.ConfigError, match="not valid TOML"):
        C.load(write(tmp_path, "name = \n"))
