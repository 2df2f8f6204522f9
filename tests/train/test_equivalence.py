"""A fixed-seed fit of an MLP, a CNN and an LSTM gives the parameters it gave before the engine-core change.

The digests were recorded on the landed main before that change (commit c391a1f), on the machine
described by RECORDED_ON. On a machine like it the parameters must be bit-identical; elsewhere XLA
may vectorise differently, so the check falls back to the recorded sums and first entries (1e-5).
A change that alters numerics on purpose re-records these, saying why in its commit.
"""

import hashlib
import platform

import jax
import jaxlib
import numpy as np
import pytest

import jdl

RECORDED_ON = {'machine': 'x86_64', 'cpu': 'Intel(R) Xeon(R) Processor', 'avx512f': True, 'jaxlib': '0.10.2'}
RECORDED = {
    "mlp": {
        "digest": "64f285769b31c3ce579336b46b14302a815e39a237412bcc4a579756c2624ac7",
        "sum": 20.525111041486525,
        "abs_sum": 370.6445021133877,
        "first": [
            -0.051396239548921585,
            0.007581835146993399,
            -0.00861384253948927,
            0.2633683681488037,
            -0.03539596125483513,
            -0.03850211575627327
        ],
        "loss": [
            2.268075704574585,
            2.0271337032318115,
            1.7733885049819946
        ]
    },
    "cnn": {
        "digest": "9f7dcca293e3ced4a340588a33c3d926cabaed81be68b6776c094b8e35bf3d35",
        "sum": -3.2942954643949633,
        "abs_sum": 549.875847546049,
        "first": [
            -0.009581334888935089,
            -0.1538902223110199,
            0.010147332213819027,
            -0.01700250245630741,
            0.036541976034641266,
            -0.05996100604534149,
            0.09711241722106934,
            -0.036838941276073456
        ],
        "loss": [
            2.212078809738159,
            1.5308022499084473
        ]
    },
    "lstm": {
        "digest": "4d2861bc9cdade9817ca73ca3dde6375e2d78929b4f287a8fa5d72458a347c56",
        "sum": 11.739479259467771,
        "abs_sum": 192.44823016506052,
        "first": [
            -0.0428161695599556,
            -0.11168737709522247,
            0.11847828328609467,
            0.1519789844751358,
            -0.18328456580638885
        ],
        "loss": [
            0.4890269637107849,
            0.24883872270584106
        ]
    }
}


def fingerprint():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    return {"machine": platform.machine(), "cpu": cpu, "avx512f": "avx512f" in flags, "jaxlib": jaxlib.__version__}


def digest(params):
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        h.update(jax.tree_util.keystr(path).encode())
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()


def cases():
    data = jdl.data.load("digits")
    x, y = data.x_train[:600], data.y_train[:600]
    mlp = jdl.Trainer(jdl.models.MLP(hidden=(32, 16), outputs=10, dropout=0.1), loss="sparse_categorical_crossentropy",
                      optimizer=jdl.optim.adam(3e-3, l2=0.01), metrics=["accuracy"])
    cnn = jdl.Trainer(jdl.models.CNN(conv=((8, 3), (16, 3)), pool=(None, 2), dense=(32,), outputs=10),
                      loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.05, momentum=0.9),
                      metrics=["accuracy"])
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(256, 12, 4)).astype(np.float32)
    target = (seq[:, :, 0].sum(1) > 0).astype(np.int32)
    lstm = jdl.Trainer(jdl.models.SequenceClassifier(cell="lstm", units=16, outputs=2),
                       loss="sparse_categorical_crossentropy", optimizer=jdl.optim.rmsprop(1e-2), metrics=["accuracy"])
    return {
        "mlp": (mlp, dict(x=x, y=y, epochs=3, batch_size=47, validation_split=0.1, seed=3)),
        "cnn": (cnn, dict(x=x.reshape(-1, 8, 8, 1), y=y, epochs=2, batch_size=64, seed=1)),
        "lstm": (lstm, dict(x=seq, y=target, epochs=2, batch_size=40, seed=2)),
    }


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_fixed_seed_fit_gives_the_recorded_parameters(name):
    trainer, options = cases()[name]
    state, history = trainer.fit(options.pop("x"), options.pop("y"), verbose=0, **options)
    recorded = RECORDED[name]
    if fingerprint() == RECORDED_ON:
        assert digest(state.params) == recorded["digest"]
        assert history.history["loss"] == recorded["loss"]
        return
    leaves = [np.asarray(leaf, np.float64) for leaf in jax.tree_util.tree_leaves(state.params)]
    assert sum(leaf.sum() for leaf in leaves) == pytest.approx(recorded["sum"], rel=1e-5, abs=1e-5)
    assert sum(np.abs(leaf).sum() for leaf in leaves) == pytest.approx(recorded["abs_sum"], rel=1e-5)
    np.testing.assert_allclose([leaf.reshape(-1)[0] for leaf in leaves], recorded["first"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], recorded["loss"], rtol=1e-5)
