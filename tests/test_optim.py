import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim as O

# -- optimizer trajectories on f(w) = ½ wᵀAw - bᵀw against NumPy transcriptions -------------------

A = np.array([[3.0, 0.5, 0.2], [0.5, 2.0, 0.3], [0.2, 0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])
W0 = np.array([0.5, 1.5, -1.0])
STEPS = 20


def quad_grad(w):
    return A @ w - B


def jdl_trajectory(opt, steps=STEPS):
    tx = opt.build()
    a, b = jnp.asarray(A), jnp.asarray(B)

    @jax.jit
    def step(w, state):
        updates, state = tx.update(a @ w - b, state, w)
        return optax.apply_updates(w, updates), state

    w = jnp.asarray(W0)
    assert w.dtype == jnp.float64
    state, out = tx.init(w), []
    for _ in range(steps):
        w, state = step(w, state)
        out.append(np.asarray(w))
    return np.array(out)


def ref_sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    w, v, out = W0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        g = quad_grad(w)
        if momentum:
            v = momentum * v + g
            direction = g + momentum * v if nesterov else v
        else:
            direction = g
        w = w - lr * (direction + weight_decay * w)
        out.append(w)
    return np.array(out)


def ref_sgd_keras(lr, momentum, nesterov=False):
    """Keras 3 SGD: v ← μv - ηg; w ← w + v (nesterov: w ← w + μv - ηg)."""
    w, v, out = W0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        g = quad_grad(w)
        v = momentum * v - lr * g
        w = w + (momentum * v - lr * g if nesterov else v)
        out.append(w)
    return np.array(out)


def ref_sgd_notes(alpha, beta):
    """The notes' momentum: v ← βv + (1-β)g (EWMA), w ← w - αv."""
    w, v, out = W0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = beta * v + (1 - beta) * quad_grad(w)
        w = w - alpha * v
        out.append(w)
    return np.array(out)


def ref_adagrad(lr, initial=0.1, eps=1e-7):
    w, acc, out = W0.copy(), np.full(3, initial), []
    for _ in range(STEPS):
        g = quad_grad(w)
        acc = acc + g**2
        w = w - lr * g / np.sqrt(acc + eps)
        out.append(w)
    return np.array(out)


def ref_rmsprop(lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False, weight_decay=0.0):
    """Keras 3 RMSprop, with Keras's decoupled weight decay w ← w - η·λ·w."""
    w, s, avg, mom, out = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3), []
    for _ in range(STEPS):
        g = quad_grad(w)
        s = rho * s + (1 - rho) * g**2
        if centered:
            avg = rho * avg + (1 - rho) * g
            increment = lr * g / np.sqrt(s - avg**2 + eps)
        else:
            increment = lr * g / np.sqrt(s + eps)
        w = w - lr * weight_decay * w
        if momentum:
            mom = momentum * mom + increment
            w = w - mom
        else:
            w = w - increment
        out.append(w)
    return np.array(out)


def ref_adadelta(lr, rho=0.95, eps=1e-6):
    w, eg, ex, out = W0.copy(), np.zeros(3), np.zeros(3), []
    for _ in range(STEPS):
        g = quad_grad(w)
        eg = rho * eg + (1 - rho) * g**2
        delta = np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
        ex = rho * ex + (1 - rho) * delta**2
        w = w - lr * delta
        out.append(w)
    return np.array(out)


def ref_adam(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, grads=None, w0=W0):
    w, m, v, out = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), []
    for t in range(1, (len(grads) if grads is not None else STEPS) + 1):
        g = quad_grad(w) if grads is None else grads[t - 1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w)
        out.append(w)
    return np.array(out)


CASES = {
    "gd": (lambda: O.gd(0.1), lambda: ref_sgd(0.1)),
    "sgd": (lambda: O.sgd(0.1), lambda: ref_sgd(0.1)),
    "sgd_momentum": (lambda: O.sgd(0.05, momentum=0.9), lambda: ref_sgd(0.05, 0.9)),
    "sgd_nesterov": (lambda: O.sgd(0.05, momentum=0.9, nesterov=True), lambda: ref_sgd(0.05, 0.9, True)),
    "adagrad": (lambda: O.adagrad(0.5), lambda: ref_adagrad(0.5)),
    "rmsprop": (lambda: O.rmsprop(0.02), lambda: ref_rmsprop(0.02)),
    "rmsprop_centered_momentum": (
        lambda: O.rmsprop(0.01, rho=0.8, momentum=0.5, centered=True),
        lambda: ref_rmsprop(0.01, rho=0.8, momentum=0.5, centered=True),
    ),
    "adadelta": (lambda: O.adadelta(), lambda: ref_adadelta(1.0)),
    "adam": (lambda: O.adam(0.05), lambda: ref_adam(0.05)),
    "adamw": (lambda: O.adamw(0.05, weight_decay=0.1), lambda: ref_adam(0.05, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectory_matches_numpy_update_rule(x64, case):
    make, reference = CASES[case]
    got, expected = jdl_trajectory(make()), reference()
    assert np.abs(expected[-1] - W0).max() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_sgd_momentum_equals_keras_form_and_notes_ewma(x64):
    for nesterov in (False, True):
        got = jdl_trajectory(O.sgd(0.05, momentum=0.9, nesterov=nesterov))
        np.testing.assert_allclose(got, ref_sgd_keras(0.05, 0.9, nesterov), rtol=0, atol=1e-10)
    alpha, beta = 0.5, 0.9
    got = jdl_trajectory(O.sgd(alpha * (1 - beta), momentum=beta))
    np.testing.assert_allclose(got, ref_sgd_notes(alpha, beta), rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (O.sgd(0.1, momentum=0.9, nesterov=True), optax.sgd(0.1, momentum=0.9, nesterov=True)),
        (O.adagrad(0.1), optax.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7)),
        (O.rmsprop(0.1, momentum=0.5, centered=True), optax.rmsprop(0.1, eps=1e-7, centered=True, momentum=0.5)),
        (O.adadelta(1.0), optax.adadelta(1.0, rho=0.95, eps=1e-6)),
        (O.adam(0.1), optax.adam(0.1)),
        (O.adamw(0.1), optax.adamw(0.1, weight_decay=0.004)),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_same_updates_as_the_optax_alias(mine, theirs):
    params = {"w": jnp.array([0.3, -0.7, 1.1]), "b": jnp.array(0.2)}
    tx = mine.build()
    s1, s2 = tx.init(params), theirs.init(params)
    for k in range(4):
        grads = jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)) + 0.1, params)
        u1, s1 = tx.update(grads, s1, params)
        u2, s2 = theirs.update(grads, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        params = optax.apply_updates(params, u1)


def test_factory_defaults_are_the_keras_names_and_values():
    assert O.gd().learning_rate == 0.01
    assert O.sgd().hyperparams == {"momentum": 0.0, "nesterov": False} and O.sgd().learning_rate == 0.01
    assert O.adagrad().hyperparams == {"initial_accumulator_value": 0.1, "epsilon": 1e-7}
    assert O.adagrad().learning_rate == 0.001
    assert O.rmsprop().hyperparams == {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False}
    assert O.adadelta().hyperparams == {"rho": 0.95, "epsilon": 1e-6} and O.adadelta().learning_rate == 1.0
    assert O.adam().hyperparams == {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8} and O.adam().learning_rate == 1e-3
    assert O.adamw().weight_decay == 0.004
    assert O.Optimizer("adam") == O.adam()


# -- get, as_optimizer ---------------------------------------------------------------------------


def test_get_by_name_options_and_passthrough():
    assert O.names() == ["adadelta", "adagrad", "adam", "adamw", "gd", "rmsprop", "sgd"]
    opt = O.get("SGD", momentum=0.9, clipnorm=1.0)
    assert opt.name == "sgd" and opt.hyperparams["momentum"] == 0.9 and opt.clipnorm == 1.0
    assert O.get("RMSprop").name == "rmsprop" and O.get("adamw").name == "adamw"
    assert O.get(opt) is opt
    raw = optax.adam(0.1)
    wrapped = O.get(raw)
    assert wrapped.build(7) is raw and O.as_optimizer(raw).build() is raw
    assert not wrapped.has_schedule and wrapped.penalty({"kernel": jnp.ones(2)}, 4) == 0.0
    params = {"w": jnp.ones(2)}
    assert O.learning_rate(raw.init(params)) is None
    with pytest.raises(ValueError, match="no learning rate"):
        O.set_learning_rate(raw.init(params), 0.1)
    injected = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    state = O.set_learning_rate(injected.init(params), 0.25)
    assert float(O.learning_rate(state)) == 0.25


def test_get_errors():
    valid = "Valid names: adadelta, adagrad, adam, adamw, gd, rmsprop, sgd"
    with pytest.raises(ValueError, match=rf"unknown optimizer 'adamm'.*Did you mean 'adam'.*{valid}"):
        O.get("adamm")
    with pytest.raises(TypeError, match=r"'adam' got unknown option\(s\) \['momentum'\]"):
        O.get("adam", momentum=0.9)
    with pytest.raises(TypeError, match="only be given with an optimizer name"):
        O.get(O.adam(), clipnorm=1.0)
    with pytest.raises(TypeError, match=r"call the optax factory"):
        O.get(optax.adam)
    with pytest.raises(TypeError, match="optimizer must be a name"):
        O.as_optimizer(3)
    with pytest.raises(ValueError, match="takes no hyperparameters or options"):
        O.Optimizer("custom", transformation=optax.sgd(0.1), clipnorm=1.0)
    with pytest.raises(TypeError, match=r"unknown hyperparameter\(s\) \['beta_3'\]"):
        O.Optimizer("adam", {"beta_3": 0.5})


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: O.sgd(learning_rate=-0.1), ValueError, "learning_rate must be >= 0, got -0.1"),
        (lambda: O.adam(learning_rate=float("nan")), ValueError, "learning_rate must be finite"),
        (lambda: O.sgd(learning_rate="fast"), TypeError, "learning_rate must be a number, an EpochSchedule or an optax"),
        (lambda: O.sgd(learning_rate=True), TypeError, "learning_rate must be a number"),
        (lambda: O.adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1.0"),
        (lambda: O.adam(beta_2=-0.1), ValueError, "beta_2 must be >= 0"),
        (lambda: O.rmsprop(rho=1.5), ValueError, r"rho must be in \[0, 1\)"),
        (lambda: O.sgd(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: O.sgd(momentum=0.9, nesterov="yes"), TypeError, "nesterov must be a bool"),
        (lambda: O.adagrad(epsilon=-1e-7), ValueError, "epsilon must be >= 0"),
        (lambda: O.adam(clipnorm=0.0), ValueError, "clipnorm must be > 0, got 0.0"),
        (lambda: O.adam(clipnorm=-1), ValueError, "clipnorm must be > 0"),
        (lambda: O.adam(clipvalue=0), ValueError, "clipvalue must be > 0"),
        (lambda: O.adam(clipnorm="1"), TypeError, "clipnorm must be a real number"),
        (lambda: O.adam(weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
        (lambda: O.adam(l2=-1.0), ValueError, "l2 must be >= 0"),
        (lambda: O.adam(freeze=[1]), TypeError, "freeze must hold glob patterns"),
        (lambda: O.adam(freeze=[""]), ValueError, "freeze must hold non-empty glob patterns"),
        (lambda: O.adam(freeze=3), TypeError, "freeze must be a sequence of glob patterns"),
        (lambda: O.adam(O.inverse_time(0.1, 0.5)).build(), ValueError, "steps_per_epoch must be given"),
        (lambda: O.adam().build(0), ValueError, "steps_per_epoch must be > 0"),
        (lambda: O.adam().build(2.5), TypeError, "steps_per_epoch must be an integer"),
        (lambda: O.Optimizer(3), TypeError, "name must be an optimizer name"),
        (lambda: O.EpochSchedule(3), TypeError, "fn must be a function epoch -> learning rate"),
        (lambda: O.inverse_time(-1.0, 0.1), ValueError, "lr0 must be > 0"),
        (lambda: O.exponential(0.1, rate=0), ValueError, "rate must be > 0"),
        (lambda: O.step_decay(0.1, 0.5, every=0), ValueError, "every must be > 0"),
        (lambda: O.cosine(0.1, epochs=10, alpha=2.0), ValueError, r"alpha must be in \[0, 1\]"),
        (lambda: O.exponential(0.1)(-1), ValueError, "epoch must be >= 0"),
        (lambda: O.exponential(0.1).to_optax(0), ValueError, "steps_per_epoch must be > 0"),
        (lambda: O.ewma(np.ones(3), beta=1.0), ValueError, r"beta must be in \[0, 1\)"),
        (lambda: O.ewma(np.ones(3), start="last"), ValueError, "start must be one of"),
        (lambda: O.ewma(1.0), ValueError, "values must have shape"),
        (lambda: O.ewma("abc"), TypeError, "values must be a numeric array"),
        (lambda: O.steps_per_epoch(0, 10), ValueError, "n must be > 0"),
        (lambda: O.steps_per_epoch(100, 0), ValueError, "batch_size must be > 0"),
        (lambda: O.steps_per_epoch(100, 2.0), TypeError, "batch_size must be an integer"),
        (lambda: O.l2_penalty({"kernel": jnp.ones(2)}, 0.1, 0), ValueError, "m must be > 0"),
        (lambda: O.l2_penalty({"kernel": jnp.ones(2)}, -0.1, 4), ValueError, "l2 must be >= 0"),
        (lambda: O.frozen_mask({"a": jnp.ones(1)}, [None]), TypeError, "patterns must hold glob patterns"),
    ],
)
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- schedules -----------------------------------------------------------------------------------


def test_epoch_schedules_closed_forms():
    lr0 = 0.2
    for epoch in range(12):
        assert float(O.inverse_time(lr0, 0.5)(epoch)) == pytest.approx(lr0 / (1 + 0.5 * epoch), rel=1e-6)
        assert float(O.exponential(lr0)(epoch)) == pytest.approx(0.95**epoch * lr0, rel=1e-6)
        assert float(O.exponential(lr0, rate=0.5)(epoch)) == pytest.approx(0.5**epoch * lr0, rel=1e-6)
        expected = 2.0 / math.sqrt(max(epoch, 1)) * lr0
        assert float(O.inverse_sqrt(lr0, k=2.0)(epoch)) == pytest.approx(expected, rel=1e-6)
        assert float(O.step_decay(lr0, drop=0.5, every=3)(epoch)) == pytest.approx(lr0 * 0.5 ** (epoch // 3), rel=1e-6)
        cos = lr0 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(epoch, 8) / 8)) + 0.1)
        assert float(O.cosine(lr0, epochs=8, alpha=0.1)(epoch)) == pytest.approx(cos, rel=1e-6)
    assert float(O.inverse_sqrt(lr0)(0)) == float(O.inverse_sqrt(lr0)(1)) == pytest.approx(lr0)
    np.testing.assert_allclose(O.exponential(1.0, 0.5)(jnp.arange(4)), [1, 0.5, 0.25, 0.125], rtol=1e-6)
    custom = O.EpochSchedule(lambda e: 0.1 * (e + 1))
    assert float(custom(2)) == pytest.approx(0.3) and repr(custom) == "EpochSchedule(custom)"
    assert repr(O.exponential(0.1)) == "EpochSchedule(exponential, lr0=0.1, rate=0.95)"


@pytest.mark.parametrize(
    "schedule",
    [O.inverse_time(0.1, 0.5), O.exponential(0.1, 0.8), O.inverse_sqrt(0.1), O.step_decay(0.1, 0.5, 2),
     O.cosine(0.1, 5)],
    ids=lambda s: s.name,
)
def test_optax_schedule_is_constant_within_an_epoch(schedule):
    spe = 4
    fn = schedule.to_optax(spe)
    values = np.array([float(fn(jnp.asarray(step))) for step in range(6 * spe)])
    per_epoch = values.reshape(6, spe)
    assert np.all(per_epoch == per_epoch[:, :1])
    np.testing.assert_allclose(per_epoch[:, 0], [float(schedule(e)) for e in range(6)], rtol=1e-6)
    changes = np.flatnonzero(np.diff(values)) + 1
    assert set(changes) <= {spe * e for e in range(1, 6)} and len(changes) > 0


def test_learning_rate_in_state_follows_the_schedule():
    spe, schedule = 3, O.exponential(1.0, rate=0.5)
    opt = O.sgd(schedule, momentum=0.9)
    assert opt.has_schedule and not O.sgd(0.1).has_schedule
    tx = opt.build(steps_per_epoch=spe)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    assert float(O.learning_rate(state)) == 1.0
    step = jax.jit(lambda s: tx.update({"w": jnp.ones(2)}, s, params)[1])
    read = jax.jit(O.learning_rate)
    for k in range(1, 3 * spe + 2):
        state = step(state)
        assert float(read(state)) == pytest.approx(float(schedule((k - 1) // spe)))
    with pytest.raises(ValueError, match="schedule and cannot be set"):
        O.set_learning_rate(state, 0.1)
    optax_schedule = optax.linear_schedule(1.0, 0.0, 10)
    assert O.sgd(optax_schedule).build().init(params) is not None
    with pytest.raises(ValueError, match="schedule and cannot be set"):
        O.set_learning_rate(O.sgd(optax_schedule).build().init(params), 0.1)


def test_schedule_drives_the_updates():
    tx = O.gd(O.step_decay(0.4, drop=0.5, every=1)).build(steps_per_epoch=2)
    params = jnp.zeros(())
    state, steps = tx.init(params), []
    for _ in range(6):
        updates, state = tx.update(jnp.ones(()), state, params)
        steps.append(-float(updates))
    np.testing.assert_allclose(steps, [0.4, 0.4, 0.2, 0.2, 0.1, 0.1], rtol=1e-6)


def test_set_learning_rate_changes_the_next_update_exactly(x64):
    g = jnp.array([0.3, -1.2, 2.0])
    tx = O.gd(0.1).build()
    state = O.set_learning_rate(tx.init(jnp.zeros(3)), 0.3)
    assert float(O.learning_rate(state)) == 0.3
    updates, _ = tx.update(g, state, jnp.zeros(3))
    np.testing.assert_array_equal(updates, -0.3 * np.asarray(g))

    opt = O.adam(0.01, clipnorm=1.0, weight_decay=0.1, freeze=["b"])
    params = {"a": jnp.array([0.5, -0.5, 1.0]), "b": jnp.array([1.0])}
    tx = opt.build()
    state = tx.init(params)
    grads = {"a": g, "b": jnp.array([3.0])}
    _, state = tx.update(grads, state, params)
    same, _ = tx.update(grads, state, params)
    new_state = jax.jit(O.set_learning_rate)(state, 0.03)
    assert float(jax.jit(O.learning_rate)(new_state)) == pytest.approx(0.03)
    tripled, after = tx.update(grads, new_state, params)
    np.testing.assert_allclose(tripled["a"], 3 * same["a"], rtol=1e-12)
    assert float(tripled["b"][0]) == 0.0
    assert float(O.learning_rate(after)) == pytest.approx(0.03)


def test_set_learning_rate_keeps_float32_and_rejects_bad_values():
    state = O.adam(1e-3).build().init({"w": jnp.ones(2)})
    new = O.set_learning_rate(state, 0.5)
    assert O.learning_rate(new).dtype == jnp.float32
    assert float(O.learning_rate(O.set_learning_rate(state, jnp.array(0.25)))) == 0.25
    with pytest.raises(ValueError, match="value must be >= 0"):
        O.set_learning_rate(state, -0.1)
    with pytest.raises(TypeError, match="value must be a learning rate"):
        O.set_learning_rate(state, "0.1")
    with pytest.raises(ValueError, match="value must be a scalar"):
        O.set_learning_rate(state, jnp.ones(2))


# -- clipping, weight decay, L2, freezing --------------------------------------------------------

GRADS = {"a": np.array([3.0, -4.0, 0.5]), "b": np.array([[2.0, -0.1], [6.0, 1.0]])}


def _global_norm(tree):
    return math.sqrt(sum(float(np.sum(np.square(x))) for x in tree.values()))


def test_clipnorm_clips_by_global_norm(x64):
    params = {k: jnp.zeros_like(v) for k, v in GRADS.items()}
    tx = O.sgd(0.1, clipnorm=1.0).build()
    updates, _ = tx.update(GRADS, tx.init(params), params)
    norm = _global_norm(GRADS)
    for k in GRADS:
        np.testing.assert_allclose(updates[k], -0.1 * GRADS[k] / norm, rtol=1e-12)
    small = {k: v * 0.01 for k, v in GRADS.items()}
    updates, _ = tx.update(small, tx.init(params), params)
    for k in GRADS:
        np.testing.assert_allclose(updates[k], -0.1 * small[k], rtol=1e-12)


def test_clipvalue_then_adam_matches_numpy(x64):
    grads = [GRADS["a"] * s for s in (1.0, -0.5, 0.2, 2.0, 0.05)]
    tx = O.adam(0.1, clipvalue=0.5).build()
    w = jnp.asarray(W0)
    state, got = tx.init(w), []
    for g in grads:
        updates, state = tx.update(jnp.asarray(g), state, w)
        w = optax.apply_updates(w, updates)
        got.append(np.asarray(w))
    expected = ref_adam(0.1, grads=[np.clip(g, -0.5, 0.5) for g in grads])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_clipvalue_comes_before_clipnorm_and_norm_skips_frozen(x64):
    params = {k: jnp.zeros_like(v) for k, v in GRADS.items()}
    tx = O.sgd(1.0, clipvalue=1.0, clipnorm=1.5).build()
    updates, _ = tx.update(GRADS, tx.init(params), params)
    clipped = {k: np.clip(v, -1, 1) for k, v in GRADS.items()}
    norm = _global_norm(clipped)
    for k in GRADS:
        np.testing.assert_allclose(updates[k], -clipped[k] * 1.5 / norm, rtol=1e-12)
    tx = O.sgd(1.0, clipnorm=10.0, freeze=["b"]).build()
    updates, _ = tx.update(GRADS, tx.init(params), params)
    np.testing.assert_allclose(updates["a"], -GRADS["a"], rtol=1e-12)
    np.testing.assert_array_equal(updates["b"], np.zeros((2, 2)))


def test_weight_decay_is_decoupled_from_adam_moments(x64):
    params = jnp.asarray(W0)
    grads = [jnp.asarray(GRADS["a"] * s) for s in (1.0, -0.5, 0.2)]
    plain, decayed = O.adam(0.1).build(), O.adam(0.1, weight_decay=0.2).build()
    s_plain, s_decayed = plain.init(params), decayed.init(params)
    for g in grads:
        u_plain, s_plain = plain.update(g, s_plain, params)
        u_decayed, s_decayed = decayed.update(g, s_decayed, params)
        np.testing.assert_allclose(u_decayed, u_plain - 0.1 * 0.2 * params, rtol=1e-12)

    def adam_state(state):
        return next(x for x in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
                    if isinstance(x, optax.ScaleByAdamState))

    np.testing.assert_array_equal(adam_state(s_plain).mu, adam_state(s_decayed).mu)
    np.testing.assert_array_equal(adam_state(s_plain).nu, adam_state(s_decayed).nu)
    got = jdl_trajectory(O.adam(0.05, weight_decay=0.1))
    np.testing.assert_allclose(got, ref_adam(0.05, weight_decay=0.1), rtol=0, atol=1e-10)


def test_weight_decay_for_momentum_optimizers_is_kept_out_of_the_momentum(x64):
    np.testing.assert_allclose(
        jdl_trajectory(O.sgd(0.05, momentum=0.9, weight_decay=0.1)),
        ref_sgd(0.05, 0.9, weight_decay=0.1), rtol=0, atol=1e-10,
    )
    np.testing.assert_allclose(
        jdl_trajectory(O.rmsprop(0.01, momentum=0.5, centered=True, weight_decay=0.3)),
        ref_rmsprop(0.01, momentum=0.5, centered=True, weight_decay=0.3), rtol=0, atol=1e-10,
    )


def _model_params():
    rng = np.random.default_rng(0)
    shape = {"Dense_0": {"kernel": (3, 4), "bias": (4,)}, "Dense_1": {"kernel": (4, 2), "bias": (2,)},
             "encoder": {"Dense_0": {"kernel": (2, 2), "bias": (2,)}}}
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s), jnp.float32), shape, is_leaf=lambda x: isinstance(x, tuple)
    )


def test_l2_penalty_value_and_gradient(x64):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), _model_params())
    lam, m = 0.3, 16
    kernels = [params["Dense_0"]["kernel"], params["Dense_1"]["kernel"], params["encoder"]["Dense_0"]["kernel"]]
    expected = lam / (2 * m) * sum(float(np.sum(np.asarray(k) ** 2)) for k in kernels)
    opt = O.adam(l2=lam)
    assert float(opt.penalty(params, m)) == pytest.approx(expected, rel=1e-12)
    assert float(O.l2_penalty(params, lam, m)) == pytest.approx(expected, rel=1e-12)
    grads = jax.grad(lambda p: opt.penalty(p, m))(params)
    flat = dict(zip(O.parameter_paths(params), jax.tree.leaves(grads)))
    flat_params = dict(zip(O.parameter_paths(params), jax.tree.leaves(params)))
    for path, g in flat.items():
        if path.endswith("kernel"):
            np.testing.assert_allclose(g, lam / m * np.asarray(flat_params[path]), rtol=1e-12)
        else:
            np.testing.assert_array_equal(g, np.zeros_like(g))
    assert O.adam().penalty(params, m) == 0.0
    assert float(O.l2_penalty({"bias": jnp.ones(3)}, lam, m)) == 0.0
    assert float(jax.jit(lambda p, n: O.l2_penalty(p, lam, n))(params, jnp.asarray(m))) == pytest.approx(expected)
    with pytest.raises(ValueError, match="params have none"):
        O.adam(l2=0.1).check_params({"w": jnp.ones(2)})


def test_frozen_mask_globs():
    params = _model_params()
    paths = O.parameter_paths(params)
    assert paths == ["Dense_0/bias", "Dense_0/kernel", "Dense_1/bias", "Dense_1/kernel",
                     "encoder/Dense_0/bias", "encoder/Dense_0/kernel"]

    def frozen(patterns):
        return [p for p, f in zip(paths, jax.tree.leaves(O.frozen_mask(params, patterns))) if f]

    assert frozen(["Dense_0/*"]) == ["Dense_0/bias", "Dense_0/kernel"]
    assert frozen("Dense_0") == ["Dense_0/bias", "Dense_0/kernel"]
    assert frozen(["*/bias"]) == ["Dense_0/bias", "Dense_1/bias"]
    assert frozen(["**/bias"]) == ["Dense_0/bias", "Dense_1/bias", "encoder/Dense_0/bias"]
    assert frozen(["encoder/**"]) == ["encoder/Dense_0/bias", "encoder/Dense_0/kernel"]
    assert frozen(["Dense_?/kernel", "encoder"]) == ["Dense_0/kernel", "Dense_1/kernel",
                                                      "encoder/Dense_0/bias", "encoder/Dense_0/kernel"]
    assert frozen([]) == []
    assert jax.tree.structure(O.frozen_mask(params, "x")) == jax.tree.structure(params)


def test_freeze_keeps_frozen_leaves_bit_identical():
    params = _model_params()
    opt = O.adam(0.05, weight_decay=0.1, freeze=["Dense_0/*", "**/bias"])
    opt.check_params(params)
    tx = opt.build()

    @jax.jit
    def step(p, s, key):
        grads = jax.tree.map(lambda x: jax.random.normal(key, x.shape), p)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    p, state = params, tx.init(params)
    for i in range(10):
        p, state = step(p, state, jax.random.key(i))
    mask = dict(zip(O.parameter_paths(params), jax.tree.leaves(O.frozen_mask(params, opt.freeze))))
    before = dict(zip(O.parameter_paths(params), jax.tree.leaves(params)))
    after = dict(zip(O.parameter_paths(p), jax.tree.leaves(p)))
    assert sum(mask.values()) == 4
    for path, frozen in mask.items():
        if frozen:
            np.testing.assert_array_equal(after[path], before[path])
        else:
            assert np.all(np.asarray(after[path]) != np.asarray(before[path])), path
    adam_states = [x for x in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
                   if isinstance(x, optax.ScaleByAdamState)]
    assert len(adam_states) == 1 and len(jax.tree.leaves(adam_states[0].mu)) == 2
    assert float(O.learning_rate(state)) == pytest.approx(0.05)


def test_freeze_pattern_matching_nothing_is_an_error():
    params = _model_params()
    with pytest.raises(ValueError, match=r"freeze pattern 'decoder/\*' matches no parameter.*Dense_0/kernel"):
        O.adam(freeze=["Dense_0/*", "decoder/*"]).check_params(params)
    with pytest.raises(ValueError, match="params must hold at least one array"):
        O.adam().check_params({})
    O.adam(freeze="encoder").check_params(params)


def test_everything_frozen_gives_zero_updates():
    params = _model_params()
    tx = O.sgd(0.1, momentum=0.9, freeze=["**"]).build()
    updates, _ = tx.update(params, tx.init(params), params)
    assert all(float(jnp.abs(u).max()) == 0.0 for u in jax.tree.leaves(updates))


def test_optimizer_is_a_frozen_value():
    opt = O.adam(0.1, freeze="Dense_0")
    assert opt.freeze == ("Dense_0",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.learning_rate = 0.2
    assert dataclasses.replace(opt, learning_rate=0.2).learning_rate == 0.2
    expected = "Optimizer('sgd', learning_rate=0.1, momentum=0.0, nesterov=False, clipnorm=1.0)"
    assert repr(O.sgd(0.1, clipnorm=1.0)) == expected


# -- EWMA, steps per epoch ----------------------------------------------------------------------


def test_ewma_golden_first_start():
    a = jnp.array([2.0, 6.0, -1.0])
    v = O.ewma(a, beta=0.95, start="first")
    assert float(v[0]) == 2.0
    assert float(v[1]) == pytest.approx(0.95 * 2.0 + 0.05 * 6.0, rel=1e-6)
    assert float(v[2]) == pytest.approx(0.95 * float(v[1]) + 0.05 * -1.0, rel=1e-6)


def test_ewma_bias_correction_against_a_loop(x64):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(7, 2, 3))
    beta = 0.9
    v, raw, corrected = np.zeros((2, 3)), [], []
    for t in range(1, 8):
        v = beta * v + (1 - beta) * a[t - 1]
        raw.append(v)
        corrected.append(v / (1 - beta**t))
    got = jax.jit(O.ewma)(a)
    assert got.shape == a.shape
    np.testing.assert_allclose(got, corrected, rtol=1e-12)
    np.testing.assert_allclose(O.ewma(a, beta, bias_correction=False), raw, rtol=1e-12)
    np.testing.assert_allclose(O.ewma(a[:, 0, 0], beta)[0], a[0, 0, 0], rtol=1e-12)
    assert O.ewma(np.zeros((0, 2))).shape == (0, 2)


def test_steps_per_epoch_goldens():
    assert O.steps_per_epoch(100000, 1000) == 100
    assert O.steps_per_epoch(34000, 500) == 68
    assert O.steps_per_epoch(1000, 500) == 2
    assert O.steps_per_epoch(1001, 500) == 3
    assert O.steps_per_epoch(1000, None) == 1
    assert O.steps_per_epoch(10, 1) == 10
    assert O.steps_per_epoch(np.int64(10), 20) == 1
