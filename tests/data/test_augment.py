import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import data

KEY = jax.random.key(0)


def random_images(n=32, h=6, w=6, c=2, seed=0):
    return jnp.asarray(np.random.default_rng(seed).random((n, h, w, c)), jnp.float32)


def linear_images(n, size=9):
    """Channel 0 = column offset x, channel 1 = row offset y from the centre (bilinear-exact)."""
    centre = (size - 1) / 2
    rows, cols = np.meshgrid(np.arange(size) - centre, np.arange(size) - centre, indexing="ij")
    return jnp.asarray(np.broadcast_to(np.stack([cols, rows], -1), (n, size, size, 2)), jnp.float32)


def right_of_centre(out, size=9):
    """The output at offset (y=0, x=1): (x_in, y_in) of the input point it sampled."""
    c = (size - 1) // 2
    return np.asarray(out[:, c, c + 1, 0]), np.asarray(out[:, c, c + 1, 1])


# -- flips -----------------------------------------------------------------------------------------


def test_random_horizontal_flip_flips_some_and_keeps_others():
    images = random_images()
    out = np.asarray(data.random_flip("horizontal")(KEY, images))
    x = np.asarray(images)
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 4 <= flipped.sum() <= 28
    np.testing.assert_array_equal(out[flipped], x[flipped][:, :, ::-1])


def test_random_flip_modes():
    images = random_images(16)
    x = np.asarray(images)
    out = np.asarray(data.random_flip("vertical")(KEY, images))
    assert all(np.array_equal(o, i) or np.array_equal(o, i[::-1]) for o, i in zip(out, x))
    both = np.asarray(data.random_flip("horizontal_and_vertical")(jax.random.key(1), images))
    seen = set()
    for o, i in zip(both, x):
        match = [k for k, v in enumerate((i, i[:, ::-1], i[::-1], i[::-1, ::-1])) if np.array_equal(o, v)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) >= 3


def test_flip_with_explicit_masks():
    images = random_images(3)
    out = data.flip(images, jnp.array([True, False, True]), jnp.array([False, False, True]))
    x = np.asarray(images)
    np.testing.assert_array_equal(out[0], x[0, :, ::-1])
    np.testing.assert_array_equal(out[1], x[1])
    np.testing.assert_array_equal(out[2], x[2, ::-1, ::-1])
    with pytest.raises(ValueError, match="horizontal"):
        data.flip(images, jnp.array([True, False]))


# -- rotation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees,k", [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_rotate_by_right_angles_equals_rot90(degrees, k):
    images = random_images(4, 7, 7, 3)
    out = data.rotate(images, jnp.full(4, math.radians(degrees)))
    np.testing.assert_allclose(out, np.rot90(np.asarray(images), k, axes=(1, 2)), atol=1e-5)


def test_rotate_even_square_and_per_image_angles():
    images = random_images(2, 6, 6, 1)
    out = np.asarray(data.rotate(images, jnp.array([0.0, math.pi / 2])))
    np.testing.assert_array_equal(out[0], np.asarray(images[0]))
    np.testing.assert_allclose(out[1], np.rot90(np.asarray(images[1]), 1, axes=(0, 1)), atol=1e-5)


def test_rotate_fill_value_and_modes():
    images = jnp.ones((1, 8, 8, 1))
    out = data.rotate(images, math.pi / 4, fill_value=7.0)
    assert float(out[0, 0, 0, 0]) == 7.0 and float(out[0, 4, 4, 0]) == pytest.approx(1.0)
    nearest = data.rotate(images, math.pi / 4, fill_mode="nearest")
    np.testing.assert_allclose(nearest, 1.0, atol=1e-6)
    assert data.rotate(jnp.ones((2, 5, 9, 3)), jnp.array([0.3, 1.0])).shape == (2, 5, 9, 3)


def test_random_rotation_angles_in_range_and_independent():
    factor = 0.1
    out = data.random_rotation(factor)(KEY, linear_images(64))
    x_in, y_in = right_of_centre(out)
    np.testing.assert_allclose(x_in**2 + y_in**2, 1.0, atol=1e-5)
    angles = np.arctan2(y_in, x_in)
    limit = factor * 2 * math.pi
    assert np.all(np.abs(angles) <= limit + 1e-5)
    assert angles.min() < -0.5 * limit and angles.max() > 0.5 * limit
    assert len(np.unique(np.round(angles, 5))) == 64


def test_random_rotation_factor_zero_is_identity():
    images = random_images(5)
    np.testing.assert_array_equal(data.random_rotation(0.0)(KEY, images), images)


# -- zoom ------------------------------------------------------------------------------------------


def test_zoom_scale_one_is_identity_and_random_zoom_zero_too():
    images = random_images(5)
    np.testing.assert_array_equal(data.zoom(images, jnp.ones(5)), images)
    np.testing.assert_array_equal(data.random_zoom(0.0)(KEY, images), images)


def test_zoom_samples_input_at_scaled_offsets():
    images = linear_images(2)
    out = np.asarray(data.zoom(images, jnp.array([0.5, 0.8])))
    centre = np.arange(9) - 4.0
    for i, s in enumerate((0.5, 0.8)):
        np.testing.assert_allclose(out[i, :, :, 0], s * np.broadcast_to(centre, (9, 9)), atol=1e-5)
        np.testing.assert_allclose(out[i, :, :, 1], s * np.broadcast_to(centre[:, None], (9, 9)), atol=1e-5)
    anisotropic = np.asarray(data.zoom(images[:1], jnp.array([[0.5, 0.75]])))
    np.testing.assert_allclose(anisotropic[0, :, :, 0], 0.75 * np.broadcast_to(centre, (9, 9)), atol=1e-5)
    np.testing.assert_allclose(anisotropic[0, :, :, 1], 0.5 * np.broadcast_to(centre[:, None], (9, 9)), atol=1e-5)


def test_zoom_out_fills_the_border():
    out = np.asarray(data.zoom(jnp.ones((1, 9, 9, 1)), jnp.array([2.0])))
    assert out[0, 0, 0, 0] == 0.0 and out[0, 4, 4, 0] == 1.0


def test_random_zoom_keras_sign_convention():
    factor = 0.3
    out = data.random_zoom(factor)(KEY, linear_images(64))
    x_in, y_in = right_of_centre(out)
    np.testing.assert_allclose(y_in, 0.0, atol=1e-6)
    assert np.all((x_in >= 1 - factor - 1e-5) & (x_in <= 1 + factor + 1e-5))
    assert x_in.min() < 0.9 and x_in.max() > 1.1
    ones = data.random_zoom(factor)(KEY, jnp.ones((64, 9, 9, 1)))
    corner = np.asarray(ones[:, 0, 0, 0])
    clear = np.abs(x_in - 1.0) > 1e-3
    assert clear.sum() > 50
    np.testing.assert_array_equal((corner < 0.999)[clear], (x_in > 1.0)[clear])  # s > 1 zooms out


# -- brightness ------------------------------------------------------------------------------------


def test_random_brightness_adds_one_delta_per_image_and_clips():
    images = random_images(32, 5, 5, 3)
    factor = 0.2
    out = np.asarray(data.random_brightness(factor)(KEY, images))
    x = np.asarray(images)
    assert out.min() >= 0.0 and out.max() <= 1.0
    deltas = []
    for o, i in zip(out, x):
        inside = (o > 0) & (o < 1)
        diff = (o - i)[inside]
        assert diff.size and np.ptp(diff) < 1e-6
        deltas.append(diff.mean())
    deltas = np.array(deltas)
    assert np.all(np.abs(deltas) <= factor + 1e-6)
    assert deltas.min() < -factor / 2 and deltas.max() > factor / 2


def test_random_brightness_scales_with_value_range():
    images = jnp.full((16, 2, 2, 1), 127.0)
    out = np.asarray(data.random_brightness(0.1, value_range=(0, 255))(KEY, images))
    delta = out[:, 0, 0, 0] - 127.0
    assert np.all(np.abs(delta) <= 25.5 + 1e-4) and np.abs(delta).max() > 10
    np.testing.assert_array_equal(data.adjust_brightness(jnp.full((1, 1, 1, 1), 0.9), 0.5), [[[[1.0]]]])


# -- jit, determinism, compose ---------------------------------------------------------------------


AUGMENTATIONS = {
    "flip": data.random_flip("horizontal_and_vertical"),
    "rotation": data.random_rotation(0.2),
    "zoom": data.random_zoom((-0.2, 0.3)),
    "brightness": data.random_brightness(0.3),
    "compose": data.compose(data.random_flip(), data.random_rotation(0.1), data.random_brightness(0.1)),
}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_jit_deterministic_per_key(name):
    fn = AUGMENTATIONS[name]
    images = random_images(16)
    eager = fn(KEY, images)
    jitted = jax.jit(fn)(KEY, images)
    assert jitted.shape == images.shape and jitted.dtype == images.dtype
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-7)  # fused or not: the last float32 bit may differ
    np.testing.assert_array_equal(jax.jit(fn)(jax.random.key(0), images), jitted)
    np.testing.assert_array_equal(fn(jax.random.key(0), images), eager)
    assert not np.array_equal(fn(jax.random.key(1), images), eager)
    assert not np.array_equal(eager, images)


def test_raw_uint32_keys_work():
    images = random_images(4)
    out = data.random_rotation(0.1)(jax.random.PRNGKey(3), images)
    assert out.shape == images.shape


def test_compose_applies_in_order_with_split_keys():
    first, second = data.random_flip(), data.random_brightness(0.2)
    images = random_images(8)
    k1, k2 = jax.random.split(KEY)
    np.testing.assert_array_equal(data.compose(first, second)(KEY, images), second(k2, first(k1, images)))
    np.testing.assert_array_equal(data.compose()(KEY, images), images)


# -- validation ------------------------------------------------------------------------------------


def test_bad_images_name_the_argument_and_shape():
    fn = data.random_flip()
    with pytest.raises(ValueError, match=r"images must be 4-D NHWC.*\(6, 6, 2\)"):
        fn(KEY, jnp.zeros((6, 6, 2)))
    with pytest.raises(TypeError, match="images must have a float dtype"):
        fn(KEY, jnp.zeros((1, 6, 6, 2), jnp.uint8))
    with pytest.raises(ValueError, match="images"):
        data.rotate(np.zeros((2, 3)), 0.0)


def test_bad_factors_and_options():
    for factory in (data.random_rotation, data.random_zoom, data.random_brightness):
        with pytest.raises(ValueError, match="factor"):
            factory(-0.1)
        with pytest.raises(TypeError, match="factor"):
            factory("big")
    with pytest.raises(ValueError, match="factor"):
        data.random_zoom((-1.0, 0.5))
    with pytest.raises(ValueError, match="factor"):
        data.random_brightness(1.5)
    with pytest.raises(ValueError, match="factor"):
        data.random_rotation((0.2, 0.1))
    with pytest.raises(ValueError, match="mode"):
        data.random_flip("diagonal")
    with pytest.raises(ValueError, match="fill_mode"):
        data.random_rotation(0.1, fill_mode="mirror-ish")
    with pytest.raises(ValueError, match="value_range"):
        data.random_brightness(0.1, value_range=(1, 0))
    with pytest.raises(TypeError, match=r"augmentations\[1\]"):
        data.compose(data.random_flip(), 3)
    with pytest.raises(TypeError, match="key"):
        data.random_flip()(0, random_images(2))
    with pytest.raises(ValueError, match="angles"):
        data.rotate(random_images(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="scales"):
        data.zoom(random_images(2), jnp.array([1.0, -1.0]))
