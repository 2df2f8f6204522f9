import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.models.mlp import MLP
from jdl.models.transfer import TrunkHead, load_params, transplant
from tests.numeric import jax_central_difference, random_variables

rng = np.random.default_rng(0)
X = rng.normal(size=(48, 6)).astype(np.float32)
Y_OLD = (X[:, 0] + X[:, 1] > 0).astype(np.int32) + 2 * (X[:, 2] > 0)
Y_NEW = (X[:, 0] - X[:, 3] > 0).astype(np.int32)


def trunk():
    return MLP(hidden=(8,), outputs=5)


def leaves(tree):
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    """A trunk + 4-class head trained on the old task and saved by ModelCheckpoint."""
    directory = tmp_path_factory.mktemp("ckpt") / "old"
    trainer = jdl.Trainer(TrunkHead(trunk(), MLP(hidden=(), outputs=4)), loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(0.02))
    state, history = trainer.fit(X, Y_OLD, epochs=5, batch_size=16, verbose=0,
                                 callbacks=[jdl.callbacks.ModelCheckpoint(directory, monitor="loss")])
    return directory, state, history.history["loss"]


def test_the_old_model_trains_and_load_params_reads_the_checkpoint(old):
    directory, state, losses = old
    assert losses[-1] < losses[0] - 0.1, losses
    for source in (directory, directory / "4", state):
        params = load_params(source)
        assert leaves(params).keys() == leaves(state.params).keys()
        for key, value in leaves(params).items():
            np.testing.assert_array_equal(value, leaves(state.params)[key])
    first = load_params(directory, step=0)
    assert not np.array_equal(leaves(first)["['head']['Dense_0']['kernel']"], leaves(state.params)["['head']['Dense_0']['kernel']"])
    with pytest.raises(FileNotFoundError, match="no checkpoint step 9"):
        load_params(directory, step=9)
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        load_params(directory.parent / "nothing")
    with pytest.raises(TypeError, match="source must be a TrainState or a checkpoint directory"):
        load_params(3)


def test_transplant_then_frozen_fine_tuning_keeps_the_trunk_bit_identical(old):
    directory, _, _ = old
    old_params = load_params(directory)
    trainer = jdl.Trainer(TrunkHead(trunk(), MLP(hidden=(), outputs=2)), loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(0.02, freeze=["trunk"]))
    fresh = trainer.init(X, seed=1)
    params = transplant(fresh.params, old_params, ["trunk"])
    for key, value in leaves(params["trunk"]).items():
        np.testing.assert_array_equal(value, leaves(old_params["trunk"])[key])
    for key, value in leaves(params["head"]).items():
        np.testing.assert_array_equal(value, leaves(fresh.params["head"])[key])
    state, history = trainer.fit(X, Y_NEW, epochs=5, batch_size=16, verbose=0, state=fresh.replace(params=params))
    assert history.history["loss"][-1] < history.history["loss"][0], history.history["loss"]
    for key, value in leaves(state.params["trunk"]).items():
        np.testing.assert_array_equal(value, leaves(old_params["trunk"])[key])
    changed = [not np.array_equal(v, leaves(params["head"])[k]) for k, v in leaves(state.params["head"]).items()]
    assert all(changed)


def test_transplant_maps_paths_and_names_missing_or_mismatched_ones():
    def dense(fan_in, fan_out, value):
        return {"bias": np.full((fan_out,), value, np.float32), "kernel": np.full((fan_in, fan_out), value, np.float32)}

    old_params = {"trunk": {"Dense_0": dense(6, 8, 1.0), "Dense_1": dense(8, 5, 2.0)}, "head": {"Dense_0": dense(5, 4, 3.0)}}
    plain = {"Dense_0": dense(6, 8, 0.0), "Dense_1": dense(8, 5, 0.0)}
    moved = transplant(plain, old_params, {"Dense_0": "trunk/Dense_0", "Dense_1/kernel": "trunk/Dense_1/kernel"})
    np.testing.assert_array_equal(moved["Dense_0"]["kernel"], np.ones((6, 8)))
    np.testing.assert_array_equal(moved["Dense_0"]["bias"], np.ones(8))
    np.testing.assert_array_equal(moved["Dense_1"]["kernel"], np.full((8, 5), 2.0))
    np.testing.assert_array_equal(moved["Dense_1"]["bias"], np.zeros(5))
    assert np.all(plain["Dense_0"]["kernel"] == 0), "transplant returns a copy"
    with pytest.raises(ValueError, match=r"path 'trunk/Dense_7' is not in old_params; its modules are: head/Dense_0, trunk/Dense_0"):
        transplant(old_params, old_params, {"trunk/Dense_0": "trunk/Dense_7"})
    with pytest.raises(ValueError, match=r"path 'encoder' is not in new_params"):
        transplant(old_params, old_params, ["encoder"])
    wide = {"trunk": {"Dense_0": dense(6, 9, 0.0), "Dense_1": dense(9, 5, 0.0)}}
    with pytest.raises(ValueError, match=r"parameter 'trunk/Dense_0/bias' has shape \(9,\) in new_params but 'trunk/Dense_0/bias' has shape \(8,\)"):
        transplant(wide, old_params, ["trunk"])
    with pytest.raises(ValueError, match="hold different parameters"):
        transplant(old_params, old_params, {"trunk": "head"})
    with pytest.raises(TypeError, match="paths must be a list of parameter paths"):
        transplant(old_params, old_params, "trunk")


def test_trunk_head_gradient_matches_finite_differences(x64):
    model = TrunkHead(MLP(hidden=(3,), outputs=2, activation="tanh"), MLP(hidden=(), outputs=3), activation="tanh")
    x = jnp.asarray(X[:4], jnp.float64)
    labels = jnp.asarray(Y_OLD[:4])
    params = random_variables(model, x, dtype=np.float64)["params"]  # any weights: no init compile
    flat, unravel = ravel_pytree(params)

    def cost(vector):
        logits = model.apply({"params": unravel(vector)}, x)
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, labels[:, None], 1)[:, 0])

    value_and_grad = jax.jit(jax.value_and_grad(cost))
    analytic = np.asarray(value_and_grad(flat)[1])
    numeric = jax_central_difference(cost, np.asarray(flat))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_trunk_head_rejects_non_modules():
    with pytest.raises(TypeError, match="head must be a flax.linen.Module"):
        TrunkHead(trunk(), head="dense")
