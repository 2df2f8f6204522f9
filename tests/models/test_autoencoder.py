import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jdl
from jdl.models.autoencoder import VAE, Autoencoder, ConvAutoencoder, kl_standard_normal, latent_plot, reconstruction_grid
from tests.numeric import jax_central_difference, random_variables

rng = np.random.default_rng(0)
X = (1 / (1 + np.exp(-2 * rng.normal(size=(48, 2)) @ rng.normal(size=(2, 6))))).astype(np.float32)
IMAGES = (rng.uniform(size=(16, 5, 1, 1)) * rng.uniform(size=(16, 1, 4, 1))).astype(np.float32)


def bce_from_logits(y, z):
    """Mean over all entries of −y·log σ(z) − (1−y)·log(1−σ(z)), by the textbook formula."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))
    y = np.asarray(y, np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def kl_loop(mu, log_var):
    """½ Σ_j (μ_j² + σ_j² − log σ_j² − 1) with a Python loop, one value per example."""
    out = []
    for m_row, v_row in zip(np.asarray(mu, np.float64), np.asarray(log_var, np.float64)):
        total = 0.0
        for m, v in zip(m_row, v_row):
            total += 0.5 * (m * m + math.exp(v) - v - 1.0)
        out.append(total)
    return np.array(out)


def fit_losses(model, x, epochs=6):
    trainer = jdl.Trainer(model, loss="binary_crossentropy", optimizer=jdl.optim.adam(0.02))
    state, history = trainer.fit(x, x, epochs=epochs, batch_size=16, verbose=0)
    return trainer, state, history.history["loss"]


@pytest.fixture(scope="module")
def fitted_vae():
    return VAE(encoder=(8,), latent_dim=2), *fit_losses(VAE(encoder=(8,), latent_dim=2), X, epochs=8)


def grad_check(model, x, key_train=None):
    """jax.grad of the mean BCE (+ mean sown KL) w.r.t. all parameters vs float64 central differences."""
    x64 = jnp.asarray(x, jnp.float64)
    params = random_variables(model, x64, seed=1, dtype=np.float64)["params"]  # any weights: no init compile
    flat, unravel = ravel_pytree(params)

    def cost(vector):
        kwargs = {"train": True, "rngs": {"sample": key_train}} if key_train is not None else {}
        logits, sown = model.apply({"params": unravel(vector)}, x64, mutable=["losses"], **kwargs)
        kl = sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(sown)) / x64.shape[0]
        bce = jnp.mean(jnp.maximum(logits, 0) - logits * x64 + jnp.log1p(jnp.exp(-jnp.abs(logits))))
        return bce + kl

    value_and_grad = jax.jit(jax.value_and_grad(cost))
    analytic = np.asarray(value_and_grad(flat)[1])
    numeric = jax_central_difference(cost, np.asarray(flat))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    assert np.abs(analytic).max() > 1e-4


# -- dense autoencoder ----------------------------------------------------------------------------


def test_autoencoder_trains_and_its_encode_decode_compose_to_the_reconstruction():
    model = Autoencoder(encoder=(8,), latent_dim=2)
    _, state, losses = fit_losses(model, X)
    assert losses[-1] < losses[0] - 0.02, losses

    @jax.jit
    def paths(params, x):
        z = model.apply(params, x, method=Autoencoder.encode)
        return z, model.apply(params, z, method=Autoencoder.decode), model.apply(params, x)

    z, logits, direct = paths({"params": state.params}, X)
    assert z.shape == (48, 2)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(direct), rtol=1e-6)
    assert float(np.mean(bce_from_logits(X, logits))) < losses[0]


def test_autoencoder_gradient_matches_finite_differences(x64):
    grad_check(Autoencoder(encoder=(3,), latent_dim=2, activation="tanh"), X[:5, :4])


def test_dense_models_reject_bad_arguments_and_inputs():
    for cls in (Autoencoder, VAE):
        with pytest.raises(ValueError, match="latent_dim must be > 0"):
            cls(encoder=(4,), latent_dim=0)
        with pytest.raises(TypeError, match="encoder must be a sequence"):
            cls(encoder=4, latent_dim=2)
        model = cls(encoder=(4,), latent_dim=2)
        with pytest.raises(ValueError, match=r"x must have shape \(batch, features\).*got shape \(2, 3, 2\)"):
            jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.ones((2, 3, 2)))
        params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.ones((2, 6)))["params"]
        with pytest.raises(ValueError, match=r"z must have shape \(batch, 2\).*got shape \(2, 3\)"):
            jax.eval_shape(lambda p: model.apply({"params": p}, jnp.ones((2, 3)), method=cls.decode), params)
    with pytest.raises(ValueError, match="beta must be > 0"):
        VAE(latent_dim=2, beta=-1.0)


# -- variational autoencoder ----------------------------------------------------------------------


def test_kl_closed_form_matches_a_loop_and_numerical_integration():
    mu = rng.normal(size=(4, 3))
    log_var = rng.normal(size=(4, 3))
    np.testing.assert_allclose(np.asarray(kl_standard_normal(jnp.asarray(mu), jnp.asarray(log_var))),
                               kl_loop(mu, log_var), rtol=1e-5)
    grid = np.linspace(-20, 20, 40001)
    m, s = 0.7, math.exp(0.5 * -0.4)
    p = np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    q = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    integrand = np.where(p > 0, p * (np.log(np.maximum(p, 1e-300)) - np.log(q)), 0.0)
    integral = np.sum(integrand) * (grid[1] - grid[0])
    assert float(kl_standard_normal(jnp.array([[m]]), jnp.array([[-0.4]]))[0]) == pytest.approx(integral, rel=1e-4)


def test_vae_sows_beta_times_the_closed_form_kl_per_example():
    x = jnp.asarray(X[:5])
    for beta, expected_beta in ((None, 1 / 6), (0.25, 0.25)):
        model = VAE(encoder=(8,), latent_dim=3, beta=beta)

        @jax.jit
        def encode_and_sow(params, x):
            return model.apply({"params": params}, x, method=VAE.encode), model.apply({"params": params}, x, mutable=["losses"])[1]

        (mu, log_var), sown = encode_and_sow(random_variables(model, x)["params"], x)
        assert mu.shape == log_var.shape == (5, 3)
        (kl,) = sown["losses"]["kl"]
        assert kl.shape == (5,)
        np.testing.assert_allclose(np.asarray(kl), expected_beta * kl_loop(mu, log_var), rtol=1e-5)


def test_vae_is_deterministic_in_inference_and_samples_in_training(fitted_vae):
    model, _, state, _ = fitted_vae
    x = jnp.asarray(X[:4])
    params = state.params
    decoded_mean = jax.jit(lambda x: model.apply({"params": params}, model.apply({"params": params}, x, method=VAE.encode)[0],
                                                 method=VAE.decode))(x)
    apply = jax.jit(lambda x, seed, train: model.apply({"params": params}, x, train=train, rngs={"sample": jax.random.PRNGKey(seed)}),
                    static_argnums=2)
    for seed in (1, 2):
        np.testing.assert_array_equal(np.asarray(apply(x, seed, False)), np.asarray(decoded_mean))
    a, b, a2 = apply(x, 1, True), apply(x, 2, True), apply(x, 1, True)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))


def test_vae_trains_under_the_trainer_and_evaluate_is_the_negative_elbo_per_pixel(fitted_vae):
    model, trainer, state, losses = fitted_vae
    assert losses[-1] < losses[0] - 0.02, losses
    logits, (mu, log_var) = jax.jit(lambda p: (model.apply(p, X), model.apply(p, X, method=VAE.encode)))({"params": state.params})
    elbo_terms = bce_from_logits(X, logits).sum(axis=1) + kl_loop(mu, log_var)
    assert trainer.evaluate(state, X, X)["loss"] == pytest.approx(elbo_terms.mean() / 6, rel=1e-5)


def test_vae_gradient_matches_finite_differences_through_the_sampled_code(x64):
    grad_check(VAE(encoder=(3,), latent_dim=2, activation="tanh", beta=0.5), X[:5, :4], key_train=jax.random.PRNGKey(3))


# -- convolutional autoencoder --------------------------------------------------------------------


@pytest.mark.slow
def test_conv_autoencoder_shapes_training_and_encode_decode():
    model = ConvAutoencoder(input_shape=(5, 4, 1), filters=(3,), latent_dim=2)
    assert model.code_map_shape == (3, 2, 3)
    _, state, losses = fit_losses(model, IMAGES, epochs=8)
    assert losses[-1] < losses[0] - 0.01, losses

    params = {"params": state.params}
    z = jax.eval_shape(lambda p, x: model.apply(p, x, method=ConvAutoencoder.encode), params, IMAGES)
    decoded = jax.eval_shape(lambda p, z: model.apply(p, z, method=ConvAutoencoder.decode), params, jnp.zeros((3, 2)))
    assert z.shape == (16, 2) and decoded.shape == (3, 5, 4, 1)
    assert ConvAutoencoder(input_shape=(7, 6, 2), filters=(4, 8)).code_map_shape == (2, 2, 8)


def test_conv_autoencoder_gradient_matches_finite_differences(x64):
    grad_check(ConvAutoencoder(input_shape=(5, 4, 1), filters=(2,), latent_dim=2, activation="tanh"), IMAGES[:3])


def test_conv_autoencoder_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="latent_dim must be > 0"):
        ConvAutoencoder(input_shape=(6, 5, 1), latent_dim=-2)
    with pytest.raises(ValueError, match=r"input_shape must be \(H, W, C\)"):
        ConvAutoencoder(input_shape=(6, 5))
    model = ConvAutoencoder(input_shape=(6, 5, 1), filters=(4,), latent_dim=2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 6, 5, 1\).*got shape \(2, 5, 6, 1\)"):
        jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.ones((2, 5, 6, 1)))
    trainer = jdl.Trainer(model, loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 6, 5, 1\)"):
        trainer.fit(np.ones((4, 6, 5)), np.ones((4, 6, 5)), epochs=1, batch_size=2, verbose=0)


# -- plots ----------------------------------------------------------------------------------------


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_latent_plot_and_reconstruction_grid_write_pngs(tmp_path):
    labels = np.arange(30) % 3
    path = latent_plot(rng.normal(size=(30, 2)), labels, tmp_path / "latent.png")
    assert path == str(tmp_path / "latent.png") and png_size(path)[0] > 300
    path = latent_plot(lambda x: (x[:, :2], x[:, 2:]), labels, tmp_path / "sub" / "fn.png", inputs=rng.normal(size=(30, 4)))
    assert png_size(path)[0] > 300
    assert png_size(latent_plot(rng.normal(size=(30, 5)), labels, tmp_path / "pca.png"))[0] > 300
    grid = reconstruction_grid(X[:12, :4], X[:12, :4] * 0.5, tmp_path / "grid.png")
    width, height = png_size(grid)
    assert width > height > 100
    assert png_size(reconstruction_grid(IMAGES, IMAGES, tmp_path / "img.png", max_images=3))[0] > 100


def test_plots_reject_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"labels must have shape \(30,\)"):
        latent_plot(np.zeros((30, 2)), np.zeros(29, int), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"encoded must have shape \(n, k\) with k >= 2"):
        latent_plot(np.zeros((30, 1)), np.zeros(30, int), tmp_path / "a.png")
    with pytest.raises(ValueError, match="inputs must be given"):
        latent_plot(lambda x: x, np.zeros(30, int), tmp_path / "a.png")
    with pytest.raises(ValueError, match="6 is not a square; give image_shape"):
        reconstruction_grid(X[:3], X[:3], tmp_path / "b.png")
    with pytest.raises(ValueError, match="originals and reconstructions must have the same shape"):
        reconstruction_grid(X[:3, :4], X[:2, :4], tmp_path / "b.png")
    with pytest.raises(TypeError, match="path must be a file path"):
        reconstruction_grid(X[:3, :4], X[:3, :4], 3)
