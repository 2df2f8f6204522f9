"""jdl.nn.conv against NumPy loop references, SPEC.md §9's golden edge map and float64 finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jdl.nn.conv import AvgPool, Conv1D, Conv2D, Flatten, MaxPool, MinPool, channels_last_conv, output_size, pool
from tests.numeric import jax_central_difference

EDGE = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)


def step_image():
    """SPEC.md §9: 6×6, left three columns 0, right three 255, scaled by 1/255; shape (1, 6, 6, 1)."""
    image = np.zeros((6, 6), np.float32)
    image[:, 3:] = 255
    return (image / 255)[None, :, :, None]


def loop_conv(x, kernel, bias, strides, pads, dilation=(1, 1)):
    """Cross-correlation by explicit loops: x (B, H, W, C), kernel (kh, kw, C, O), pads ((t, b), (l, r))."""
    (t, b), (l, r) = pads
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (t, b), (l, r), (0, 0)))
    kh, kw, _, out = kernel.shape
    sh, sw = strides
    dh, dw = dilation
    height = (x.shape[1] - (dh * (kh - 1) + 1)) // sh + 1
    width = (x.shape[2] - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((x.shape[0], height, width, out))
    for n in range(x.shape[0]):
        for i in range(height):
            for j in range(width):
                for o in range(out):
                    total = bias[o]
                    for u in range(kh):
                        for v in range(kw):
                            total += np.dot(x[n, i * sh + u * dh, j * sw + v * dw, :], kernel[u, v, :, o])
                    y[n, i, j, o] = total
    return y


def loop_pool(x, size, strides, reduce):
    """Valid pooling by loops over windows: x (B, H, W, C)."""
    (ph, pw), (sh, sw) = size, strides
    height, width = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
    y = np.zeros((x.shape[0], height, width, x.shape[3]))
    for i in range(height):
        for j in range(width):
            y[:, i, j, :] = reduce(x[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :], axis=(1, 2))
    return y


def with_params(kernel, bias):
    return {"params": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}}


def test_vertical_edge_golden_map_valid_and_padded():
    layer = Conv2D(1, 3)
    params = with_params(EDGE[:, :, None, None], np.zeros(1, np.float32))
    valid = np.asarray(layer.apply(params, step_image()))[0, :, :, 0]
    assert valid.shape == (4, 4)
    np.testing.assert_allclose(valid, np.tile([0.0, -4.0, -4.0, 0.0], (4, 1)), atol=1e-6)

    padded = np.asarray(Conv2D(1, 3, padding=1).apply(params, step_image()))
    assert padded.shape == (1, 6, 6, 1)
    expected = loop_conv(step_image(), EDGE[:, :, None, None], [0.0], (1, 1), ((1, 1), (1, 1)))
    np.testing.assert_allclose(padded, expected, atol=1e-5)
    # the padded map sees the image border: the zero column on the left, the 1s meeting zeros on the right
    np.testing.assert_allclose(padded[0, 1:5, :, 0], np.tile([0, 0, -4, -4, 0, 4], (4, 1)), atol=1e-5)


CASES = [  # (input shape, kernel_size, strides, padding as given, the (top, bottom), (left, right) it means, dilation)
    ((2, 7, 6, 3), 3, 1, "same", ((1, 1), (1, 1)), 1),
    ((2, 7, 6, 3), (3, 2), 2, "same", ((1, 1), (0, 0)), 1),
    ((2, 8, 8, 2), 4, 2, "same", ((1, 1), (1, 1)), 1),
    ((2, 7, 6, 3), 3, (2, 3), 2, ((2, 2), (2, 2)), 1),
    ((2, 7, 6, 3), (2, 3), 1, ((1, 0), (2, 1)), ((1, 0), (2, 1)), 1),
    ((1, 9, 8, 2), 3, 2, "same", ((2, 2), (1, 2)), 2),
]


@pytest.mark.parametrize("shape, kernel_size, strides, padding, pads, dilation", CASES)
def test_conv2d_matches_loop_cross_correlation(shape, kernel_size, strides, padding, pads, dilation):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    layer = Conv2D(4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    kernel = rng.normal(size=(kh, kw, shape[-1], 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    shapes = jax.tree_util.tree_map(jnp.shape, jax.eval_shape(layer.init, jax.random.key(0), x))
    assert shapes == {"params": {"kernel": kernel.shape, "bias": (4,)}}
    y = np.asarray(layer.apply(with_params(kernel, bias), x))
    s = (strides, strides) if isinstance(strides, int) else strides
    expected = loop_conv(x, kernel, bias, s, pads, (dilation, dilation))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    if padding == "same":
        assert y.shape[1:3] == (math.ceil(shape[1] / s[0]), math.ceil(shape[2] / s[1]))


@pytest.mark.parametrize("n, f, p, s", [(6, 3, 0, 1), (6, 3, 1, 1), (7, 3, 0, 2), (7, 3, 1, 2), (8, 5, 2, 3),
                                        (28, 5, 2, 1), (32, 3, 0, 1), (5, 5, 0, 1), (10, 4, 3, 4), (9, 1, 0, 2)])
def test_output_size_formula_agrees_with_conv_shapes(n, f, p, s):
    assert output_size(n, f, p, s) == (n + 2 * p - f) // s + 1
    x = jax.ShapeDtypeStruct((1, n, n + 1, 1), jnp.float32)
    y, _ = jax.eval_shape(Conv2D(2, f, strides=s, padding=p).init_with_output, jax.random.key(0), x)
    assert y.shape == (1, output_size(n, f, p, s), output_size(n + 1, f, p, s), 2)


def test_output_size_validates_its_arguments():
    with pytest.raises(ValueError, match="f must be <= n \\+ 2p"):
        output_size(3, 5, 0, 1)
    with pytest.raises(ValueError, match="s must be > 0"):
        output_size(6, 3, 0, 0)
    with pytest.raises(ValueError, match="p must be >= 0"):
        output_size(6, 3, -1, 1)
    with pytest.raises(TypeError, match="n must be an integer"):
        output_size(6.0, 3)


@pytest.mark.parametrize("padding, strides, dilation", [("valid", 1, 1), ("same", 2, 1), ("causal", 1, 2), (2, 3, 1)])
def test_conv1d_matches_loop(padding, strides, dilation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 11, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    y = np.asarray(Conv1D(5, 3, strides=strides, padding=padding, dilation_rate=dilation).apply(with_params(kernel, bias), x))
    span = dilation * 2
    pads = {"valid": (0, 0), "same": (1, 1), "causal": (span, 0), 2: (2, 2)}[padding]
    expected = loop_conv(x[:, :, None, :], kernel[:, None], bias, (strides, 1), (pads, (0, 0)), (dilation, 1))[:, :, 0]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    if padding == "causal":  # y[t] depends on x[<= t] only
        changed = x.copy()
        changed[:, 6:] += 1.0
        y2 = np.asarray(Conv1D(5, 3, padding="causal", dilation_rate=dilation).apply(with_params(kernel, bias), changed))
        np.testing.assert_allclose(y2[:, :6], y[:, :6], rtol=1e-5)
        assert not np.allclose(y2[:, 6:], y[:, 6:])


def test_activation_is_applied_after_the_bias():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    kernel, bias = rng.normal(size=(3, 3, 2, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    y = Conv2D(3, 3, activation="relu").apply(with_params(kernel, bias), x)
    np.testing.assert_allclose(y, np.maximum(loop_conv(x, kernel, bias, (1, 1), ((0, 0), (0, 0))), 0), atol=1e-4)
    assert "bias" not in jax.eval_shape(Conv2D(3, 3, use_bias=False).init, jax.random.key(0), x)["params"]


GRAD_CONFIGS = [(2, (1, 1), ((1, 1), (1, 1)), (1, 1), 2), (2, (3, 2), ((0, 1), (2, 0)), (2, 2), 2),
                (1, (2,), ((3, 1),), (2,), 2), (2, (2, 1), ((1, 0), (0, 2)), (1, 2), 9), (1, (1,), ((0, 2),), (1,), 9)]


@pytest.mark.parametrize("rank, strides, pads, dilation, channels", GRAD_CONFIGS)
def test_conv_gradient_matches_finite_differences_and_lax(x64, rank, strides, pads, dilation, channels):
    """jdl's convolution gradient (forward operations only) against float64 FD and lax's own transpose.

    channels 2 takes kernel_grad's one column-matrix product, 9 its product per window offset.
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2,) + (6,) * rank + (channels,))
    kernel = rng.normal(size=(3,) * rank + (channels, 2))
    specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[rank]

    def loss(conv, x, k):
        return jnp.sum(jnp.sin(conv(x, k, strides, pads, None, dilation)) ** 2)

    def reference(x, k, strides, pads, _, dilation):
        return lax.conv_general_dilated(x, k, strides, pads, rhs_dilation=dilation, dimension_numbers=specs)

    gx, gk = jax.jit(jax.grad(lambda x, k: loss(channels_last_conv, x, k), (0, 1)))(x, kernel)
    rx, rk = jax.jit(jax.grad(lambda x, k: loss(reference, x, k), (0, 1)))(x, kernel)
    np.testing.assert_allclose(gx, rx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gk, rk, rtol=1e-10, atol=1e-10)
    value = jax.jit(lambda x, k: loss(reference, x, k))
    fd_k = jax_central_difference(lambda k: value(x, k), kernel)
    np.testing.assert_allclose(gk, fd_k, rtol=1e-6, atol=1e-7)
    fd_x = jax_central_difference(lambda v: value(v, kernel), x)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-6, atol=1e-7)


FORWARD_CONFIGS = [  # (rank, window, channels, strides, pads, dilation): taps × channels on both sides of SHIFTED_TERMS
    (2, (3, 3), 1, (1, 1), ((0, 0), (0, 0)), (1, 1)), (2, (3, 3), 4, (2, 1), ((1, 2), (0, 1)), (1, 2)),
    (2, (5, 5), 1, (1, 2), ((2, 2), (2, 2)), (1, 1)), (2, (3, 3), 5, (1, 1), ((1, 1), (1, 1)), (1, 1)),
    (1, (3,), 3, (2,), ((2, 0),), (2,)), (1, (5,), 8, (1,), ((0, 0),), (1,)), (2, (3, 3), 2, (1, 1), ((-1, 1), (1, 0)), (1, 1)),
]


@pytest.mark.parametrize("rank, window, channels, strides, pads, dilation", FORWARD_CONFIGS)
def test_fast_forward_equals_lax_in_float64(x64, rank, window, channels, strides, pads, dilation):
    """channels_last_conv's forward (shifted views summed at ≤ SHIFTED_TERMS taps × channels, lax above) = lax's."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3,) + (9,) * rank + (channels,))
    kernel = rng.normal(size=(*window, channels, 6))
    specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[rank]
    expected = lax.conv_general_dilated(x, kernel, strides, pads, rhs_dilation=dilation, dimension_numbers=specs)
    got = jax.jit(lambda x, k: channels_last_conv(x, k, strides, pads, None, dilation))(x, kernel)
    assert got.shape == expected.shape and got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_fast_forward_keeps_bfloat16_and_sums_in_float32():
    rng = np.random.default_rng(6)
    x, kernel = (jnp.asarray(rng.normal(size=s), jnp.bfloat16) for s in ((2, 8, 8, 1), (3, 3, 1, 4)))
    got = channels_last_conv(x, kernel, (1, 1), ((0, 0), (0, 0)))
    exact = lax.conv_general_dilated(x.astype(jnp.float32), kernel.astype(jnp.float32), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), exact, rtol=1e-2, atol=1e-2)


def test_fast_grad_off_allows_forward_mode_with_the_same_values():
    x = np.random.default_rng(9).normal(size=(1, 5, 5, 2)).astype(np.float32)
    params = with_params(np.random.default_rng(10).normal(size=(3, 3, 2, 2)).astype(np.float32), np.zeros(2, np.float32))
    fast, plain = Conv2D(2, 3, strides=2, padding="same"), Conv2D(2, 3, strides=2, padding="same", fast_grad=False)
    np.testing.assert_allclose(jax.jit(fast.apply)(params, x), jax.jit(plain.apply)(params, x), rtol=1e-6)
    forward = jax.jit(jax.jacfwd(lambda v: plain.apply(params, v).sum()))(x)
    np.testing.assert_allclose(forward, jax.jit(jax.grad(lambda v: fast.apply(params, v).sum()))(x), rtol=1e-5)
    with pytest.raises(TypeError, match="fast_grad must be a bool"):
        Conv2D(2, 3, fast_grad="yes")


def test_conv_gradient_is_unchanged_inside_scan(x64):
    rng = np.random.default_rng(4)
    xs = jnp.asarray(rng.normal(size=(3, 2, 6, 6, 2)))
    kernel = jnp.asarray(rng.normal(size=(3, 3, 2, 4)))
    layer = Conv2D(4, 3, strides=2, padding="same")

    def loss(k, x):
        return jnp.sum(layer.apply({"params": {"kernel": k, "bias": jnp.zeros(4)}}, x) ** 2)

    scanned = jax.lax.scan(lambda c, x: (c, jax.grad(loss)(kernel, x)), 0.0, xs)[1]
    grad = jax.jit(jax.grad(loss))
    for i in range(3):
        np.testing.assert_allclose(scanned[i], grad(kernel, xs[i]), rtol=1e-12)


@pytest.mark.parametrize("cls, kind, reduce", [(MaxPool, "max", np.max), (AvgPool, "avg", np.mean), (MinPool, "min", np.min)])
def test_pools_match_loop_reference_with_keras_default_strides(cls, kind, reduce):
    x = np.random.default_rng(5).normal(size=(2, 7, 9, 3)).astype(np.float32)
    y = np.asarray(cls(2)(x))
    assert y.shape == (2, 3, 4, 3)  # strides default to pool_size: floor((7 - 2)/2) + 1 = 3
    np.testing.assert_allclose(y, loop_pool(x, (2, 2), (2, 2), reduce), rtol=1e-6)
    overlapping = np.asarray(cls(3, strides=1)(x))
    np.testing.assert_allclose(overlapping, loop_pool(x, (3, 3), (1, 1), reduce), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pool(x, kind, (2, 3), (1, 2)), loop_pool(x, (2, 3), (1, 2), reduce), rtol=1e-5, atol=1e-6)


def test_same_pooling_ignores_padding():
    x = np.random.default_rng(6).uniform(1.0, 2.0, size=(1, 5, 5, 1)).astype(np.float32)
    for cls, reduce in ((MaxPool, np.max), (AvgPool, np.mean), (MinPool, np.min)):
        y = np.asarray(cls(2, padding="same")(x))
        assert y.shape == (1, 3, 3, 1)
        for i in range(3):
            for j in range(3):
                window = x[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0]  # lax pads after: the last window is cut
                np.testing.assert_allclose(y[0, i, j, 0], reduce(window), rtol=1e-6)


def test_pool_1d_and_pool_gradient_finite_differences(x64):
    x = np.random.default_rng(7).normal(size=(2, 9, 2))
    np.testing.assert_allclose(MaxPool(3)(x), loop_pool(x[:, :, None], (3, 1), (3, 1), np.max)[:, :, 0])
    x2 = np.random.default_rng(8).normal(size=(1, 5, 4, 2))
    for kind, strides in (("max", None), ("avg", None), ("min", 1)):  # tiled (reshape) and windowed paths
        f = jax.jit(lambda v, kind=kind, strides=strides: jnp.sum(jnp.cos(pool(v, kind, 2, strides)) ** 3))
        np.testing.assert_allclose(jax.jit(jax.grad(f))(x2), jax_central_difference(f, x2), rtol=1e-6, atol=1e-8)


def test_flatten_is_row_major():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(Flatten()(x), x.reshape(2, 60))


def test_errors_name_the_argument_and_what_arrived():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"x of Conv2D must have 4 dimensions \(batch, height, width, channels\), got shape \(6, 6, 1\)"):
        Conv2D(1, 3).init(key, np.zeros((6, 6, 1)))
    with pytest.raises(ValueError, match=r"x of Conv1D must have 3 dimensions \(batch, steps, channels\)"):
        Conv1D(1, 3).init(key, np.zeros((2, 6, 6, 1)))
    with pytest.raises(ValueError, match=r"looks like NCHW.*x\.transpose\(0, 2, 3, 1\)"):
        Conv2D(4, 3, input_channels=3).init(key, np.zeros((2, 3, 32, 32)))
    with pytest.raises(ValueError, match="input_channels=3 on its last axis"):
        Conv2D(4, 3, input_channels=3).init(key, np.zeros((2, 8, 32, 1)))
    with pytest.raises(ValueError, match=r"kernel_size \(7, 7\) of Conv2D is larger than the padded input \(6, 6\)"):
        Conv2D(1, 7).init(key, step_image())
    jax.eval_shape(Conv2D(1, 7, padding="same").init, key, step_image())  # "same" always fits: the checks run
    with pytest.raises(ValueError, match=r"kernel_size \(dilated\) \(5, 5\)"):
        Conv2D(1, 3, dilation_rate=2).init(key, np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="padding must be one of"):
        Conv2D(1, 3, padding="full")
    with pytest.raises(ValueError, match="padding must be one of"):
        Conv2D(1, 3, padding="causal")
    with pytest.raises(TypeError, match="padding must be"):
        Conv2D(1, 3, padding=((1, 1),))
    with pytest.raises(ValueError, match="padding entries must be >= 0"):
        Conv2D(1, 3, padding=((1, -1), (0, 0)))
    with pytest.raises(TypeError, match="kernel_size must be an int or a sequence of 2 ints"):
        Conv2D(1, (3, 3, 3))
    with pytest.raises(ValueError, match="strides entries must be > 0"):
        Conv2D(1, 3, strides=0)
    with pytest.raises(TypeError, match="filters must be an integer"):
        Conv2D(2.5, 3)
    with pytest.raises(ValueError, match="unknown activation"):
        Conv2D(1, 3, activation="rleu")
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) of max pooling is larger than the padded input \(2, 2\)"):
        MaxPool(3)(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="padding must be one of"):
        AvgPool(2, padding="full")
    with pytest.raises(ValueError, match="kind must be one of"):
        pool(np.zeros((1, 4, 4, 1)), "median")
    with pytest.raises(ValueError, match="x of max pooling must have 3 to 5 dimensions"):
        MaxPool(2)(np.zeros((4, 4)))
