"""Saliency: closed forms on a linear model, IG completeness, jax.grad of the class logit, Adebayo et al. (2018) checks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl.diagnostics import saliency


class TinyCNN(nn.Module):
    """Conv(8, 3×3) → activation → 2×2 pool → Dense(10); smooth (tanh, average pool) or piecewise linear (relu, max pool)."""

    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        x = getattr(nn, self.activation)(nn.Conv(8, (3, 3))(x))
        x = (nn.max_pool if self.activation == "relu" else nn.avg_pool)(x, (2, 2), (2, 2))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def digits_cnn():
    """A tiny ReLU CNN trained full-batch on 256 digits (40 Adam steps, test accuracy ≈ 0.96) (one compiled scan), its initial weights, and 24 test digits."""
    data = jdl.data.load("digits", as_images=True)
    x, y = jnp.asarray(data.x_train[:256], jnp.float32), jnp.asarray(data.y_train[:256])
    model, optimizer = TinyCNN(), optax.adam(2e-2)
    initial = model.init(jax.random.key(0), x[:1])

    def cost(p):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    def step(carry, _):
        p, s = carry
        u, s = optimizer.update(jax.grad(cost)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    trained = jax.jit(lambda p: jax.lax.scan(step, (p, optimizer.init(p)), None, length=40)[0][0])(initial)
    x_test, y_test = jnp.asarray(data.x_test[:24], jnp.float32), jnp.asarray(data.y_test[:24])
    accuracy = float(jnp.mean(jnp.argmax(model.apply(trained, x_test), -1) == y_test))
    return model, trained, initial, x_test, y_test, accuracy


def _linear(seed=0, d=5, k=3):
    w = jax.random.normal(jax.random.key(seed), (d, k))
    b = jnp.arange(k, dtype=jnp.float32)
    return w, b, (lambda x: x @ w + b)


def test_linear_model_closed_forms():
    w, b, fn = _linear()
    x = jax.random.normal(jax.random.key(1), (4, 5))
    target = jnp.asarray([0, 2, 1, 2])
    np.testing.assert_allclose(saliency.gradient(fn, x, target=target), w[:, target].T, rtol=1e-6)
    np.testing.assert_allclose(saliency.gradient_x_input(fn, x, target=target), x * w[:, target].T, rtol=1e-6)
    baseline = jnp.full((5,), 0.5)
    ig = saliency.integrated_gradients(fn, x, target=target, baseline=baseline, steps=3)
    np.testing.assert_allclose(ig, (x - baseline) * w[:, target].T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saliency.smoothgrad(fn, x, target=1, samples=4), jnp.tile(w[:, 1], (4, 1)), rtol=1e-5)


def test_gradient_is_jax_grad_of_the_class_logit():
    model = TinyCNN("tanh")
    params = jax.jit(model.init)(jax.random.key(3), jnp.zeros((1, 8, 8, 1)))
    x = np.asarray(jax.random.uniform(jax.random.key(4), (3, 8, 8, 1)))
    fn = lambda xb: model.apply(params, xb)  # noqa: E731
    got = saliency.gradient(fn, x, target=7)
    reference = jax.jit(jax.grad(lambda xb: jnp.sum(model.apply(params, xb)[:, 7])))(x)  # examples are independent
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-7)
    one = jax.jit(jax.grad(lambda xi: model.apply(params, xi[None])[0, 7]))(x[1])
    np.testing.assert_allclose(got[1], one, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_completeness_at_64_steps():
    """Σ IG = f(x) − f(baseline) to 1e-3 relative, on a smooth (tanh) CNN and a random baseline."""
    model = TinyCNN("tanh")
    params = model.init(jax.random.key(5), jnp.zeros((1, 8, 8, 1)))
    fn = lambda xb: model.apply(params, xb)  # noqa: E731
    x = jax.random.uniform(jax.random.key(6), (4, 8, 8, 1))
    target = jnp.asarray([1, 4, 9, 0])
    for baseline in (None, jax.random.uniform(jax.random.key(7), (8, 8, 1))):
        ig = saliency.integrated_gradients(fn, x, target=target, baseline=baseline, steps=64)
        assert ig.shape == x.shape
        start = jnp.zeros_like(x) if baseline is None else jnp.broadcast_to(baseline, x.shape)
        rows = jnp.arange(4)
        gap = fn(x)[rows, target] - fn(start)[rows, target]
        np.testing.assert_allclose(ig.reshape(4, -1).sum(1), gap, rtol=1e-3)


def _ink_fraction(attributions, images, threshold=0.25):
    """Share of |attribution| on strokes (pixel > threshold) and their 4-neighbour edges, and that region's area share."""
    a = np.abs(np.asarray(attributions))[..., 0]
    ink = np.asarray(images)[..., 0] > threshold
    region = ink.copy()
    region[:, 1:] |= ink[:, :-1]
    region[:, :-1] |= ink[:, 1:]
    region[:, :, 1:] |= ink[:, :, :-1]
    region[:, :, :-1] |= ink[:, :, 1:]
    mass = (a * region).sum((1, 2)) / a.sum((1, 2))
    return float(mass.mean()), float(region.mean())


def _spearman(a, b):
    ranks = lambda v: np.argsort(np.argsort(v, axis=1), axis=1).astype(float)  # noqa: E731
    ra, rb = ranks(a.reshape(len(a), -1)), ranks(b.reshape(len(b), -1))
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    return float(np.mean((ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))))


def test_adebayo_sanity_checks_on_digits(digits_cnn):
    """Vanilla gradients and SmoothGrad of a trained CNN favour strokes; randomized weights change them (Adebayo et al. 2018).

    Measured (24 test digits): mass on strokes+edges 0.763 (gradient) / 0.768 (SmoothGrad) against the region's area
    share 0.678, which is what a random (uniform) attribution puts there; rank correlation of |attributions| with
    those of the untrained (randomly initialized) weights 0.11 / 0.13.
    """
    model, trained, initial, x, y, accuracy = digits_cnn
    assert accuracy > 0.8
    fn = lambda xb: model.apply(trained, xb)  # noqa: E731
    fresh = lambda xb: model.apply(initial, xb)  # noqa: E731
    for method, options in ((saliency.gradient, {}), (saliency.smoothgrad, {"samples": 8})):
        attributions = method(fn, x, target=y, **options)
        mass, random_share = _ink_fraction(attributions, x)
        assert mass > random_share + 0.03, (method.__name__, mass, random_share)
        noise = np.random.default_rng(0).random(x.shape)
        assert abs(_ink_fraction(noise, x)[0] - random_share) < 0.03
        randomized = method(fresh, x, target=y, **options)
        assert _spearman(np.abs(attributions), np.abs(randomized)) < 0.5


def test_bad_input_is_named():
    _, _, fn = _linear()
    x = jnp.ones((2, 5))
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 3\).*got 3"):
        saliency.gradient(fn, x, target=3)
    with pytest.raises(ValueError, match=r"target\[1\] = -1"):
        saliency.integrated_gradients(fn, x, target=np.asarray([0, -1]))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        saliency.smoothgrad(fn, x, target=np.asarray([0, 1, 2]))
    with pytest.raises(ValueError, match="baseline must have x's shape"):
        saliency.integrated_gradients(fn, x, target=0, baseline=jnp.zeros(3))
    with pytest.raises(TypeError, match="floating point"):
        saliency.gradient(fn, jnp.ones((2, 5), jnp.int32), target=0)
    with pytest.raises(ValueError, match="outputs \\(n, classes\\)"):
        saliency.gradient(lambda xb: xb.sum(), x, target=0)
    with pytest.raises(TypeError, match="fn must be a function"):
        saliency.gradient("model", x, target=0)
