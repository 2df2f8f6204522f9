"""CNN, LeNet and lecture_cnn: shapes, training under Trainer.fit, float64 finite-difference gradients, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.models.cnn import CNN, LeNet, lecture_cnn
from tests.numeric import jax_central_difference

def shapes(model, x_shape):
    variables = jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct(x_shape, jnp.float32))
    return jax.tree_util.tree_map(lambda a: a.shape, variables)


def test_lenet_and_lecture_cnn_have_the_documented_layers():
    lenet = shapes(LeNet(), (1, 28, 28, 1))["params"]
    assert lenet["Conv2D_0"]["kernel"] == (5, 5, 1, 6)  # 6 filters 5×5, "same": 28×28 -> pool 14×14
    assert lenet["Conv2D_1"]["kernel"] == (5, 5, 6, 16)  # 16 filters 5×5, valid: 10×10 -> pool 5×5
    assert [lenet[f"Dense_{i}"]["kernel"] for i in range(3)] == [(400, 120), (120, 84), (84, 10)]
    lecture = shapes(lecture_cnn(), (1, 32, 32, 3))["params"]
    assert lecture["Conv2D_0"]["kernel"] == (3, 3, 3, 32)
    assert lecture["Dense_0"]["kernel"] == (15 * 15 * 32, 64)  # 32×32 -valid 3×3-> 30×30 -pool 2-> 15×15
    assert lecture["Dense_1"]["kernel"] == (64, 10)
    out = jax.eval_shape(lambda x: LeNet().init_with_output(jax.random.key(0), x)[0], jnp.zeros((5, 28, 28, 1)))
    assert out.shape == (5, 10)


def numpy_forward(params, x, pads, act, pooling):
    """A CNN's forward pass in NumPy: [conv (pad p) → act → pool 2] per layer, flatten, dense layers → logits."""
    def conv(x, kernel, bias, pad):
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        k = kernel.shape[0]
        h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
        y = np.zeros((x.shape[0], h, w, kernel.shape[-1]))
        for i in range(h):
            for j in range(w):
                y[:, i, j, :] = np.einsum("buvc,uvco->bo", x[:, i:i + k, j:j + k, :], kernel) + bias
        return y

    def pool(x):
        h, w = x.shape[1] // 2, x.shape[2] // 2
        windows = x[:, :2 * h, :2 * w].reshape(x.shape[0], h, 2, w, 2, x.shape[3])
        return windows.max(axis=(2, 4)) if pooling == "max" else windows.mean(axis=(2, 4))

    p = jax.tree_util.tree_map(np.asarray, params)
    for i, pad in enumerate(pads):
        x = pool(act(conv(x, p[f"Conv2D_{i}"]["kernel"], p[f"Conv2D_{i}"]["bias"], pad)))
    x = x.reshape(x.shape[0], -1)
    dense = sorted(k for k in p if k.startswith("Dense_"))
    for i, name in enumerate(dense):
        x = x @ p[name]["kernel"] + p[name]["bias"]
        x = act(x) if i < len(dense) - 1 else x
    return x


def toy_images(n, size, channels, classes, seed=0):
    """Images whose class sets the position of a bright square: learnable by a CNN in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.1, size=(n, size, size, channels)).astype(np.float32)
    for i, label in enumerate(y):
        start = label * (size // classes)
        x[i, start:start + size // classes, :, :] += 1.0
    return x, y.astype(np.int32)


@pytest.mark.parametrize("name", ["lecture_cnn_bn_dropout", pytest.param("lenet", marks=pytest.mark.slow)])
def test_models_train_with_trainer_fit(name):
    """LeNet, and the lecture CNN (a CNN instance) with batch norm and dropout switched on."""
    if name == "lenet":
        model, (x, y) = LeNet(outputs=4), toy_images(32, 12, 1, 4)  # 12×12 -> 6×6 -> 2×2 -> 1×1×16
    else:
        model = lecture_cnn(dense=(16,), outputs=4, batch_norm=True, dropout=0.3)
        x, y = toy_images(32, 10, 3, 4)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-2))
    state, history = trainer.fit(x, y, epochs=20, batch_size=None, verbose=0, seed=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    if name != "lenet":
        mean = state.model_state["batch_stats"]["BatchNorm_0"]["mean"]
        assert not np.allclose(mean, 0.0), "training updates the running mean"


@pytest.mark.parametrize("name", [pytest.param("lenet", marks=pytest.mark.slow), "lecture_cnn"])
def test_gradient_matches_float64_finite_differences(x64, name):
    rng = np.random.default_rng(2)
    if name == "lenet":
        model, x, pads = LeNet(activation="tanh"), rng.normal(size=(2, 12, 12, 1)), (2, 0)
    else:  # the CNN class with average pooling
        model, pads = lecture_cnn(dense=(4,), outputs=3, activation="tanh", pooling="avg"), (0,)
        x = rng.normal(size=(2, 6, 6, 3))
    y = jnp.asarray(rng.integers(0, model.outputs, 2))
    init = jax.jit(model.init)
    first, again, other = (init(jax.random.key(seed), x) for seed in (0, 0, 1))
    jax.tree_util.tree_map(np.testing.assert_array_equal, first, again)  # same seed, same parameters
    assert not np.array_equal(first["params"]["Conv2D_0"]["kernel"], other["params"]["Conv2D_0"]["kernel"])
    variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), first)
    flat, unravel = ravel_pytree(variables["params"])

    def loss(theta):
        logits = model.apply({"params": unravel(theta)}, jnp.asarray(x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compilation serves the gradient and the FD values
    value0, grad = value_and_grad(flat)
    logits = numpy_forward(variables["params"], x, pads, np.tanh, model.pooling)  # the forward pass, independently
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(2), np.asarray(y)])
    np.testing.assert_allclose(float(value0), expected, rtol=1e-10)
    picks = rng.choice(flat.size, size=min(flat.size, 40), replace=False)  # entries from every layer for big nets
    fd = jax_central_difference(lambda sub: loss(flat.at[picks].set(sub)), np.asarray(flat[picks]))
    np.testing.assert_allclose(np.asarray(grad)[picks], fd, rtol=1e-5, atol=1e-8)
    assert np.abs(fd).max() > 1e-6


def test_errors_before_tracing():
    key = jax.random.key(0)

    class Init:  # shape-only initialization: the checks run while tracing, nothing compiles
        def __init__(self, model):
            self.model = model

        def init(self, key, x):
            return jax.eval_shape(self.model.init, key, jax.ShapeDtypeStruct(np.shape(x), jnp.float32))

    CNN_, LeNet_ = (lambda **kw: Init(CNN(**kw))), (lambda **kw: Init(LeNet(**kw)))
    with pytest.raises(ValueError, match=r"x of CNN must have 4 dimensions .* got shape \(3, 64\); flat images"):
        CNN_().init(key, np.zeros((3, 64)))
    with pytest.raises(ValueError, match=r"got shape \(3, 8, 8\); grayscale images .* x\[\.\.\., None\]"):
        LeNet_().init(key, np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="looks like NCHW"):
        Init(lecture_cnn()).init(key, np.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="kernel_size \\(5, 5\\) of Conv2D 'Conv2D_1' is larger than the padded input"):
        LeNet_().init(key, np.zeros((1, 8, 8, 1)))
    with pytest.raises(TypeError, match=r"conv\[1\] must be filters, \(filters, kernel_size\)"):
        CNN(conv=(8, "3x3"))
    with pytest.raises(ValueError, match=r"conv\[0\] filters must be > 0"):
        CNN(conv=((0, 3),))
    with pytest.raises(TypeError, match="pool must be None, an int pool size, or 2 entries"):
        CNN(pool=(2,))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        CNN(dropout=1.0)
    with pytest.raises(ValueError, match="pooling must be one of"):
        CNN(pooling="median")
    with pytest.raises(ValueError, match="padding must be one of"):
        CNN(padding="full")
    with pytest.raises(ValueError, match="unknown initializer"):
        LeNet(kernel_init="he_norm")
