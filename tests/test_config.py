import json
from pathlib import Path

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


DIGITS = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml"


def test_the_example_config_passes_every_check_unchanged():
    config = C.load(DIGITS)
    assert C.check(config) is config and config.data.options == {"test_size": 0.2, "seed": 0}


@pytest.mark.parametrize("override, message", [
    ("model.activation=rellu", r"^model\.activation: unknown activation 'rellu'\. Did you mean 'relu'"),
    ("model.kernel_init=he_norml", r"^model\.kernel_init: unknown initializer 'he_norml'\. Did you mean 'he_normal'"),
    ("model.dropout=1.5", r"^model\.dropout: dropout must be in \[0, 1\), got 1\.5$"),
    ("model.hidden=[64, 0]", r"^model\.hidden: hidden widths must be > 0, got 0$"),
    ("data.name=mnsit", r"^data\.name: unknown data set 'mnsit'\. Did you mean 'mnist'"),
    ("data.name=mnist", r"^data\.options\.path is missing: data set 'mnist' reads local files"),
    ("data.options.tset_size=0.3", r"^data\.options\.tset_size: unknown data set 'digits' option 'tset_size'\. Did you mean 'test_size'"),
    ("data.options.Seed=1", r"^data\.options\.Seed: option names are lowercase; did you mean 'seed'\?$"),
    ("data.validation_split=1.0", r"^data\.validation_split must be in \[0\.0, 1\.0\), got 1\.0$"),
    ("train.loss=mse2", r"^train\.loss: unknown loss 'mse2'\. Did you mean 'mse'"),
    ("train.metrics=['accuracy', 'acuracy']", r"^train\.metrics: unknown metric 'acuracy'\. Did you mean 'accuracy'"),
    ("train.epochs=0", r"^train\.epochs must be >= 1, got 0$"),
    ("train.batch_size=0", r"^train\.batch_size must be >= 1, got 0$"),
    ("train.optimizer=adamm", r"^train\.optimizer: unknown optimizer 'adamm'\. Did you mean 'adam' or 'adamw'\? Valid names: "),
    ("train.learning_rate=-1", r"^train\.learning_rate: learning_rate must be >= 0, got -1\.0$"),
    ("train.optimizer_options={momentum = 0.9}", r"^train\.optimizer_options\.momentum: unknown optimizer 'adam' option 'momentum'\. Valid names: beta_1"),
    ("train.optimizer_options={learning_rate = 0.1}", r"^train\.optimizer_options\.learning_rate: jdl train sets learning_rate itself"),
    ("train.schedule={name = 'cosin', epochs = 10}", r"^train\.schedule\.name: unknown schedule 'cosin'\. Did you mean 'cosine'\? Valid names: "),
    ("train.schedule={epochs = 10}", r"^train\.schedule\.name is missing; valid names: cosine, exponential"),
    ("train.schedule={name = 'cosine'}", r"^train\.schedule\.epochs is missing: schedule 'cosine' needs epochs$"),
    ("train.schedule={name = 'cosine', epochs = 10, alpha = 2.0}", r"^train\.schedule\.alpha: alpha must be in \[0, 1\], got 2\.0$"),
    ("callbacks.early_stopping.patence=5", r"^callbacks\.early_stopping\.patence: unknown callback 'early_stopping' option 'patence'\. Did you mean 'patience'"),
    ("callbacks.early_stopping.patience=-1", r"^callbacks\.early_stopping\.patience: patience must be >= 0, got -1$"),
    ("callbacks.model_checkpoint={mode = 'maximum'}", r"^callbacks\.model_checkpoint\.mode: mode must be one of \['auto', 'min', 'max'\]"),
    ("callbacks.model_checkpoint={filepath = 'here'}", r"^callbacks\.model_checkpoint\.filepath: jdl train sets filepath itself"),
    ("callbacks.gradient_monitor={every = 0}", r"^callbacks\.gradient_monitor\.every: every must be > 0, got 0$"),
    ("train.precision=float8", r"^train\.precision: precision must be one of 'float32', 'bfloat16', 'float16', got 'float8'$"),
    ("train.steps_per_execution=0", r"^train\.steps_per_execution must be >= 1, got 0$"),
    ("train.precison=bfloat16", r"^unknown key train\.'precison'; valid keys in \[train\]: .*precision"),
])
def test_every_name_and_option_is_checked_on_load(override, message):
    with pytest.raises(C.ConfigError, match=message) as caught:
        C.load(DIGITS, [override])
    assert "\n" not in str(caught.value)


def test_a_new_data_set_drops_the_options_it_does_not_take(capsys, tmp_path):
    config = C.load(DIGITS, ["data.name=mnist", f"data.options.path={tmp_path}", "data.options.split=test"])
    assert config.data.options == {"path": str(tmp_path), "split": "test"}
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "dropped data.options test_size, seed" in err[0] and "takes path, split, flatten" in err[0]
    assert C.load(DIGITS, ["data.name=iris"]).data.options == {"test_size": 0.2, "seed": 0}
    assert C.load(DIGITS, ["data.name=mnist", f"data.options={{path = '{tmp_path}'}}"]).data.options == {"path": str(tmp_path)}
    assert capsys.readouterr().err == ""
    with pytest.raises(C.ConfigError, match=r"^data\.options\.seed: unknown data set 'mnist' option 'seed'"):
        C.load(DIGITS, ["data.name=mnist", f"data.options.path={tmp_path}", "data.options.seed=1"])
    with pytest.raises(C.ConfigError, match=r"^data\.options\.test_size: unknown data set 'mnist' option"):
        C.load(write(tmp_path, DIGITS.read_text().replace('name = "digits"', 'name = "mnist"')))


def test_a_packed_data_set_and_its_read_options_are_checked_on_load(tmp_path):
    import numpy as np

    from jdl.data import packed

    packed.write(tmp_path / "p", np.zeros((4, 64), np.float32), np.arange(4) % 10)
    config = C.load(DIGITS, [f"data.packed={tmp_path / 'p'}", "data.read_options={threads = 2, workers = 1}"])
    assert config.data.read_options == {"threads": 2, "workers": 1} and config.data.packed == str(tmp_path / "p")
    for overrides, message in [
        ([f"data.packed={tmp_path}"], r"^data\.packed: .* is not a packed data set: it has no manifest\.json"),
        ([f"data.packed={tmp_path / 'p'}", "data.read_options={threds = 2}"],
         r"^data\.read_options\.threds: unknown Grain read option 'threds'\. Did you mean 'threads'"),
        ([f"data.packed={tmp_path / 'p'}", "data.read_options={workers = -1}"],
         r"^data\.read_options(\.workers)?: read_options\.workers must be a non-negative integer, got -1$"),
        (["data.read_options={threads = 2}"], r"^data\.read_options: applies to data\.packed"),
    ]:
        with pytest.raises(C.ConfigError, match=message):
            C.load(DIGITS, overrides)
