"""Data parallelism: fit on 8 (forced host) devices gives the single-device losses, batch sharded."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import flax.linen as nn
    import jax
    import numpy as np
    from jdl import optim
    from jdl.train import Trainer

    shardings, data_shards = [], []
    from jdl.train import sharding
    shard_rows = sharding.shard_rows

    def spy(tree, mesh):
        placed = shard_rows(tree, mesh)
        x = placed[0]
        data_shards.append({"global": list(x.shape), "per_device": sorted({s.data.shape[0] for s in x.addressable_shards}),
                            "devices": len(x.addressable_shards), "bytes": int(x.addressable_shards[0].data.nbytes)})
        return placed

    sharding.shard_rows = spy

    class Probe(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            if train:
                jax.debug.inspect_array_sharding(x, callback=lambda s: shardings.append(list(s.shard_shape(x.shape))))
            h = nn.tanh(nn.Dense(16)(x))
            return nn.Dense(3)(h)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=100).astype(np.int32)
    trainer = Trainer(Probe(), loss="sparse_categorical_crossentropy", optimizer=optim.adam(0.01), metrics=["accuracy"])
    try:
        trainer.fit(x, y, epochs=1, batch_size=12, verbose=0)
        divisible_error = None
    except ValueError as err:
        divisible_error = str(err)
    shardings.clear()
    state, history = trainer.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
    traced, placed = list(shardings), list(data_shards)
    from tests.compiles import counting
    with counting() as compiles:
        trainer.fit(x, y, epochs=2, batch_size=24, verbose=0)
    print(json.dumps({"compiled": list(compiles.names), "devices": jax.device_count(), "history": history.history, "shardings": traced,
                      "divisible_error": divisible_error, "data_shards": placed,
                      "padded": np.asarray(shard_rows(np.arange(13, dtype=np.float32), trainer.mesh)).tolist(),
                      "param_sharding": str(jax.tree_util.tree_leaves(state.params)[0].sharding)}))
""")


def run(devices: int) -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300,
                               cwd=Path(__file__).parents[2])
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eight_devices_match_one_device_and_shard_the_batch():
    one, eight = run(1), run(8)
    assert one["devices"] == 1 and eight["devices"] == 8
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(eight["history"][key], one["history"][key], rtol=1e-5, err_msg=key)
    assert eight["shardings"] and all(shape == [2, 5] for shape in eight["shardings"]), eight["shardings"]
    assert one["shardings"] and all(shape == [16, 5] for shape in one["shardings"])
    assert "batch_size must be divisible by the number of devices (8) for data parallelism, got 12" in eight["divisible_error"]
    assert one["divisible_error"] is None
    # 100 rows in batches of 24: four full batches and a remainder of 4, two chunk shapes compiled
    # ahead of the first step, and not again when the second chunk gets the first one's flags laid out
    # on the mesh (it did, before they were placed on the mesh from the start).
    for run_ in (one, eight):
        assert run_["compiled"].count("jit(train_chunk)") == 2, run_["compiled"]
        assert run_["compiled"].count("jit(run)") == 1, run_["compiled"]  # the epoch means
    # The on-device training set (80 rows of 5 float32) is split over the devices, not copied to each,
    # and so is the validation set (20 rows, padded to the evaluation layout's 32).
    assert one["data_shards"][-2] == {"global": [80, 5], "per_device": [80], "devices": 1, "bytes": 80 * 5 * 4}
    assert one["padded"] == list(range(13)) and eight["padded"] == list(range(13)) + [0, 0, 0]
    assert eight["data_shards"][-2] == {"global": [80, 5], "per_device": [10], "devices": 8, "bytes": 10 * 5 * 4}
    assert eight["data_shards"][-1] == {"global": [32, 5], "per_device": [4], "devices": 8, "bytes": 4 * 5 * 4}
