"""Recurrent cells and layers against a plain Python loop of the same equations, written here."""

import jax
import jax.extend
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn.recurrent import (
    Bidirectional,
    GRUCell,
    LSTMCell,
    Recurrent,
    SimpleRNNCell,
    StackedRecurrent,
    cell,
)
from tests.numeric import central_difference, random_variables

KINDS = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
B, T, F, U = 3, 6, 2, 4


def reference(kind, p, x, lengths=None, initial=None, xp=np):
    """Per-sequence Python loop (NumPy, or jnp for gradients): (outputs (B, T, U) zero after each length, final carry)."""
    w, b, u = p["input"]["kernel"], p["input"]["bias"], p["recurrent_kernel"]
    n = u.shape[0]

    def sigmoid(v):
        return 1 / (1 + xp.exp(-v))

    outputs, finals_h, finals_c = [], [], []
    for s in range(x.shape[0]):
        length = x.shape[1] if lengths is None else int(lengths[s])
        if initial is None:
            h, c = xp.zeros(n), xp.zeros(n)
        elif kind == "lstm":
            c, h = initial[0][s], initial[1][s]
        else:
            h, c = initial[s], None
        seq = []
        for t in range(length):
            xt = x[s, t]
            if kind == "simple_rnn":
                h = xp.tanh(xt @ w + b + h @ u)
            elif kind == "lstm":
                z = xt @ w + b + h @ u
                i, f, g, o = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
                c = sigmoid(f) * c + sigmoid(i) * xp.tanh(g)
                h = sigmoid(o) * xp.tanh(c)
            else:
                xz = xt @ w + b
                hz = h @ u + p["recurrent_bias"]
                z = sigmoid(xz[:n] + hz[:n])
                r = sigmoid(xz[n:2 * n] + hz[n:2 * n])
                cand = xp.tanh(xz[2 * n:] + r * hz[2 * n:])
                h = z * h + (1 - z) * cand
            seq.append(h)
        seq += [xp.zeros(n)] * (x.shape[1] - length)
        outputs.append(xp.stack(seq))
        finals_h.append(h)
        finals_c.append(c)
    final = (xp.stack(finals_c), xp.stack(finals_h)) if kind == "lstm" else xp.stack(finals_h)
    return xp.stack(outputs), final


def reverse_prefix(x, lengths):
    out = np.array(x)
    for s, length in enumerate(lengths):
        out[s, :length] = np.asarray(x)[s, :length][::-1]
    return out


def to64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


def host(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def init64(layer, x):
    """float64 variables of the layer's shapes, N(0, 0.5²) draws: the references hold for any weights."""
    return random_variables(layer, jnp.asarray(x, jnp.float32), seed=1, dtype=np.float64)


def close(got, want):
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(B, T, F)), "lengths": np.array([6, 3, 1]), "r": rng.normal(size=(B, T, U)),
            "r2": rng.normal(size=(B, U))}


@pytest.mark.parametrize("kind", list(KINDS))
def test_forward_and_gradients_equal_python_loop(kind, data, x64):
    """Outputs, final state and the gradients w.r.t. every parameter and the input, in float64.

    Reference gradients: central differences of the NumPy loop, entry by entry.
    """
    layer = Recurrent(KINDS[kind](U), return_sequences=True, return_state=True)
    variables = init64(layer, data["x"])
    params = host(variables["params"])

    def cost(out, state, xp):
        h = state[1] if kind == "lstm" else state
        return xp.sum(out * data["r"]) + xp.sum(h * data["r2"])

    def loss(params, x):
        out, state = layer.apply({"params": params}, x)
        return cost(out, state, jnp), (out, state)

    (_, (out, state)), (grads, x_grad) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
        variables["params"], jnp.asarray(data["x"]))
    close((out, state), reference(kind, params["cell"], data["x"]))

    flat, unflatten = jax.flatten_util.ravel_pytree(params)
    ref_loss = lambda v, x: cost(*reference(kind, host(unflatten(v))["cell"], x), np)
    want = central_difference(lambda v: ref_loss(v, data["x"]), np.asarray(flat))
    got = np.asarray(jax.flatten_util.ravel_pytree(grads)[0])
    assert np.abs(want).max() > 1e-2
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    want_x = central_difference(lambda x: ref_loss(flat, x), data["x"])
    np.testing.assert_allclose(x_grad, want_x, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masking_reverse_and_initial_state(kind, data, x64):
    x, lengths = data["x"], data["lengths"]
    cls = KINDS[kind]
    layers = {
        "fwd": Recurrent(cls(U), return_sequences=True, return_state=True),
        "last": Recurrent(cls(U)),
        "bwd": Recurrent(cls(U), return_sequences=True, reverse=True),
        "unrolled": Recurrent(cls(U), return_sequences=True, unroll=4),
    }
    variables = init64(layers["fwd"], x)
    p = host(variables["params"]["cell"])
    garbage = np.array(x)
    for s, length in enumerate(lengths):
        garbage[s, length:] = 1e3
    init = jax.tree_util.tree_map(lambda c: np.random.default_rng(3).normal(size=c.shape),
                                  reference(kind, p, x)[1])

    @jax.jit
    def run(variables, x, garbage, lengths, init):
        return {"fwd": layers["fwd"].apply(variables, x, seq_lengths=lengths),
                "garbage": layers["fwd"].apply(variables, garbage, seq_lengths=lengths),
                "last": layers["last"].apply(variables, x, seq_lengths=lengths),
                "bwd": layers["bwd"].apply(variables, x, seq_lengths=lengths),
                "bwd_full": layers["bwd"].apply(variables, x),
                "unrolled": layers["unrolled"].apply(variables, x, seq_lengths=lengths, initial_state=init)}

    got = host(run(variables, x, garbage, lengths, init))
    ref_out, ref_carry = reference(kind, p, x, lengths)
    close(got["fwd"], (ref_out, ref_carry))
    # garbage after each length changes nothing; padded outputs are exactly zero
    for a, b in zip(jax.tree_util.tree_leaves(got["garbage"]), jax.tree_util.tree_leaves(got["fwd"])):
        np.testing.assert_array_equal(a, b)
    pad = np.arange(T)[None, :] >= lengths[:, None]
    assert pad.any() and np.all(got["fwd"][0][pad] == 0)
    # many-to-one gives the last valid output
    close(got["last"], ref_out[np.arange(B), lengths - 1])
    # reverse: the reference on each valid prefix read backwards, outputs back in the original order
    flipped_out, _ = reference(kind, p, reverse_prefix(x, lengths), lengths)
    close(got["bwd"], reverse_prefix(flipped_out, lengths))
    close(got["bwd_full"], reference(kind, p, x[:, ::-1])[0][:, ::-1])
    # an initial state is used, and unroll changes nothing
    close(got["unrolled"], reference(kind, p, x, lengths, initial=init)[0])


def test_bidirectional_equals_forward_and_flipped_references(data, x64):
    x, lengths = data["x"], data["lengths"]
    layers = {(merge, seq): Bidirectional(LSTMCell(U), GRUCell(U), merge=merge, return_sequences=seq)
              for merge in ("concat", "sum") for seq in (True, False)}
    variables = init64(layers["concat", True], x)
    got = jax.jit(lambda v, x, n: {key: layer.apply(v, x, seq_lengths=n) for key, layer in layers.items()})(
        variables, x, lengths)
    pf, pb = host(variables["params"]["forward"]["cell"]), host(variables["params"]["backward"]["cell"])
    out_f, _ = reference("lstm", pf, x, lengths)
    out_b = reverse_prefix(reference("gru", pb, reverse_prefix(x, lengths), lengths)[0], lengths)
    for merge in ("concat", "sum"):
        merged = (lambda a, b: np.concatenate([a, b], -1)) if merge == "concat" else np.add
        close(got[merge, True], merged(out_f, out_b))
        close(got[merge, False], merged(out_f[np.arange(B), lengths - 1], out_b[:, 0]))


def test_stacked_equals_layers_applied_in_turn(data, x64):
    x, lengths = data["x"], data["lengths"]
    stack = StackedRecurrent([LSTMCell(U), SimpleRNNCell(3)], return_sequences=True)
    variables = init64(stack, x)
    p = host(variables["params"])
    first, _ = reference("lstm", p["layer_0"]["cell"], x, lengths)
    second, _ = reference("simple_rnn", p["layer_1"]["cell"], first, lengths)
    close(jax.jit(stack.apply)(variables, x, seq_lengths=lengths), second)
    bi = StackedRecurrent([GRUCell(U), GRUCell(2)], bidirectional=True)
    assert jax.eval_shape(lambda x: bi.init_with_output(jax.random.key(0), x), x)[0].shape == (B, 4)


@pytest.mark.parametrize("kind", list(KINDS))
def test_single_step_cell_api(kind, data, x64):
    c = KINDS[kind](U)
    assert c.num_feature_axes == 1
    carry = c.initialize_carry(jax.random.key(0), (B, F))
    for leaf in jax.tree_util.tree_leaves(carry):
        assert leaf.shape == (B, U) and not np.any(leaf)
    x = jnp.asarray(data["x"])
    variables = random_variables(c, carry, x[:, 0].astype(jnp.float32), seed=1, dtype=np.float64)
    carry = to64(carry)
    step = jax.jit(c.apply)
    for t in range(2):
        carry, h = step(variables, carry, x[:, t])
    p = host(variables["params"])
    close(h, reference(kind, p, data["x"][:, :2])[0][:, 1])
    projected = c.apply(variables, x, method="project_inputs")
    assert projected.shape == (B, T, c.gates * U)
    close(projected, data["x"] @ p["input"]["kernel"] + p["input"]["bias"])


def test_lstm_forget_bias_and_initializers():
    params = LSTMCell(3).init(jax.random.key(0), LSTMCell(3).initialize_carry(None, (1, 2)), jnp.ones((1, 2)))["params"]
    np.testing.assert_array_equal(params["input"]["bias"], [0, 0, 0, 1, 1, 1] + [0] * 6)
    u = params["recurrent_kernel"]
    np.testing.assert_allclose(u @ u.T, np.eye(3), atol=1e-5)
    plain = LSTMCell(3, unit_forget_bias=False).init(jax.random.key(0), LSTMCell(3).initialize_carry(None, (1, 2)),
                                                     jnp.ones((1, 2)))["params"]
    assert not np.any(plain["input"]["bias"])


def _equation_count(jaxpr):
    count = 0
    for eqn in jaxpr.eqns:
        count += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            count += _equation_count(sub)
    return count


def test_compile_size_does_not_grow_with_time():
    layer = Recurrent(LSTMCell(8), return_sequences=True)
    variables = random_variables(layer, jnp.ones((2, 10, 3)))

    def size(time):
        x = jnp.ones((2, time, 3))
        loss = lambda v: jnp.sum(layer.apply(v, x, seq_lengths=jnp.full((2,), time)))
        return _equation_count(jax.make_jaxpr(jax.value_and_grad(loss))(variables).jaxpr)

    assert size(10) == size(200)


@pytest.mark.slow
def test_torch_lstm_and_gru_agree(data, x64):
    """Same weights in torch.nn.LSTM / torch.nn.GRU give the same outputs (gate order and GRU form)."""
    torch = pytest.importorskip("torch")
    x = jnp.asarray(data["x"])
    for kind, module in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        layer = Recurrent(KINDS[kind](U), return_sequences=True)
        variables = init64(layer, x)
        p = host(variables["params"]["cell"])
        net = module(F, U, batch_first=True).double()
        order = [0, 1, 2, 3] if kind == "lstm" else [1, 0, 2]  # torch GRU rows: r, z, n
        def rows(m):
            blocks = np.split(np.asarray(m), len(order), axis=-1)
            return np.concatenate([blocks[i] for i in order], axis=-1).T
        with torch.no_grad():
            net.weight_ih_l0.copy_(torch.from_numpy(rows(p["input"]["kernel"])))
            net.weight_hh_l0.copy_(torch.from_numpy(rows(p["recurrent_kernel"])))
            net.bias_ih_l0.copy_(torch.from_numpy(rows(p["input"]["bias"][None])[:, 0]))
            rec_bias = p["recurrent_bias"] if kind == "gru" else np.zeros_like(p["input"]["bias"])
            net.bias_hh_l0.copy_(torch.from_numpy(rows(rec_bias[None])[:, 0]))
            want = net(torch.from_numpy(np.array(x)))[0].numpy()
        np.testing.assert_allclose(layer.apply(variables, x), want, atol=1e-10)


def test_cell_by_name():
    assert isinstance(cell("lstm", 5), LSTMCell) and cell("gru", 2).units == 2
    assert isinstance(cell("SimpleRNN", 3), SimpleRNNCell)
    with pytest.raises(ValueError, match="cell"):
        cell("lstn", 3)


def test_bad_inputs_are_named():
    layer = Recurrent(LSTMCell(4))
    shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), jnp.ones((2, 5, 3))))
    variables = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\).*\(2, 5\)"):
        layer.apply(variables, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="seq_lengths must be <= the sequence length 5"):
        layer.apply(variables, jnp.ones((2, 5, 3)), seq_lengths=[5, 6])
    with pytest.raises(ValueError, match="seq_lengths must be >= 0"):
        layer.apply(variables, jnp.ones((2, 5, 3)), seq_lengths=[-1, 2])
    with pytest.raises(ValueError, match=r"seq_lengths must have shape \(batch,\) = \(2,\)"):
        layer.apply(variables, jnp.ones((2, 5, 3)), seq_lengths=[[1, 2]])
    with pytest.raises(ValueError, match="initial_state"):
        layer.apply(variables, jnp.ones((2, 5, 3)), initial_state=jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="initial_state"):
        layer.apply(variables, jnp.ones((2, 5, 3)), initial_state=(jnp.zeros((2, 4)), jnp.zeros((2, 5))))
    with pytest.raises(TypeError, match="cell must be a jdl recurrent cell"):
        Recurrent("lstm")
    with pytest.raises(ValueError, match="units must be > 0"):
        LSTMCell(0)
    with pytest.raises(TypeError, match="units must be an integer"):
        GRUCell(2.5)
    with pytest.raises(ValueError, match="unknown activation"):
        SimpleRNNCell(3, activation="tanhh")
    with pytest.raises(ValueError, match="unroll must be > 0"):
        Recurrent(GRUCell(2), unroll=0)
    with pytest.raises(ValueError, match="merge must be one of"):
        Bidirectional(GRUCell(2), GRUCell(2), merge="avg")
    with pytest.raises(ValueError, match='merge="sum" needs equal units'):
        Bidirectional(GRUCell(2), GRUCell(3), merge="sum")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, features\)"):
        c = GRUCell(2)
        jax.eval_shape(lambda: c.init(jax.random.key(0), c.initialize_carry(None, (1, 3)), jnp.ones((1, 4, 3))))


def compress(x, keep):
    """Each sequence's kept steps only, then zeros: what a masked scan reads (Keras skips masked steps)."""
    out = np.zeros_like(x)
    for s in range(x.shape[0]):
        kept = x[s][keep[s]]
        out[s, :len(kept)] = kept
    return out, keep.sum(1)


def test_mask_skips_steps_as_keras(data, x64):
    """A mask with holes: the final state is the reference on the kept steps; outputs are zero at masked steps."""
    x = data["x"]
    keep = np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    layer = Recurrent(LSTMCell(U), return_sequences=True, return_state=True)
    variables = init64(layer, x)
    out, state = jax.jit(lambda v, x, m: layer.apply(v, x, mask=m))(variables, x, keep)
    short, lengths = compress(x, keep)
    ref_out, ref_state = reference("lstm", host(variables["params"]["cell"]), short, lengths)
    close(state, ref_state)
    for s in range(B):
        close(np.asarray(out)[s][keep[s]], ref_out[s, :lengths[s]])
    assert np.all(np.asarray(out)[~keep] == 0)


def _fast_and_plain(kind, **options):
    return (Recurrent(KINDS[kind](U), fast_grad=True, **options), Recurrent(KINDS[kind](U), fast_grad=False, **options))


FAST_GRAD_SETTINGS = {  # every option of the layer in one of the three cells' settings
    "simple_rnn": (dict(return_sequences=True), {}),
    "lstm": (dict(reverse=True, return_sequences=True, return_state=True), {"mask": True, "initial_state": True}),
    "gru": (dict(reverse=True, unroll=2), {"seq_lengths": True}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_gradient_equals_jax_grad_of_the_plain_scan(kind, data, x64):
    """fast_grad's custom VJP against JAX's own gradient of the same scan (fast_grad=False), for params, x and the
    initial state: SimpleRNN without options, LSTM reversed with a mask with holes, an initial state and sequence
    and state outputs, GRU (not additive: ∂/∂p ≠ ∂/∂r) reversed with seq_lengths, the last output and unroll 2."""
    x, r = data["x"], data["r"]
    options, uses = FAST_GRAD_SETTINGS[kind]
    keep = np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
    inputs = {"mask": keep} if uses.get("mask") else {}
    if uses.get("seq_lengths"):
        inputs["seq_lengths"] = data["lengths"]
    fast, plain = _fast_and_plain(kind, **options)
    variables = init64(fast, x)
    rng = np.random.default_rng(5)
    init = (jax.tree_util.tree_map(lambda c: rng.normal(size=c.shape), fast.cell.initialize_carry(None, (B, F)))
            if uses.get("initial_state") else None)

    def loss(layer, params, x, init):
        out = layer.apply({"params": params}, x, initial_state=init, **inputs)
        leaves = jax.tree_util.tree_leaves(out)
        return jnp.sum(leaves[0] * (r if leaves[0].ndim == 3 else r[:, 0])) + sum(jnp.sum(a ** 2) for a in leaves[1:])

    both = jax.jit(lambda *a: [jax.grad(lambda *b: loss(layer, *b), argnums=(0, 1, 2))(*a) for layer in (fast, plain)])
    got, want = both(variables["params"], x, init)
    assert np.abs(jax.flatten_util.ravel_pytree(want)[0]).max() > 1e-2
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_fast_grad_false_keeps_forward_mode(data, x64):
    """fast_grad=False: jax.jvp and a Hessian-vector product (jvp of grad) work and agree with finite differences
    of the fast layer's gradient; the fast layer's custom VJP refuses jvp, as JAX documents."""
    x = jnp.asarray(data["x"])
    fast, plain = _fast_and_plain("simple_rnn", return_sequences=True)
    variables = init64(fast, x)
    flat, unflatten = jax.flatten_util.ravel_pytree(variables["params"])
    v = np.random.default_rng(2).normal(size=flat.shape)

    def loss(layer):
        return lambda w: jnp.sum(jnp.tanh(layer.apply({"params": unflatten(w)}, x)) * data["r"])

    fast_grad = jax.jit(jax.vmap(jax.grad(loss(fast))))
    eps = 1e-5
    g0, g_plus, g_minus = fast_grad(jnp.stack([flat, flat + eps * v, flat - eps * v]))
    tangent, hvp = jax.jit(lambda w, v: (jax.jvp(loss(plain), (w,), (v,))[1],
                                         jax.jvp(jax.grad(loss(plain)), (w,), (v,))[1]))(flat, jnp.asarray(v))
    np.testing.assert_allclose(tangent, g0 @ v, rtol=1e-10)
    want = (g_plus - g_minus) / (2 * eps)
    np.testing.assert_allclose(hvp, want, rtol=1e-5, atol=1e-8)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(loss(fast), (flat,), (jnp.asarray(v),))


def test_bad_mask_and_fast_grad_are_named():
    layer = Recurrent(GRUCell(2))
    variables = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype),
                                       jax.eval_shape(lambda: layer.init(jax.random.key(0), jnp.ones((2, 5, 3)))))
    with pytest.raises(TypeError, match="mask must be a bool array"):
        layer.apply(variables, jnp.ones((2, 5, 3)), mask=jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\) = \(2, 5\)"):
        layer.apply(variables, jnp.ones((2, 5, 3)), mask=jnp.ones((2, 4), bool))
    with pytest.raises(TypeError, match="fast_grad must be a bool"):
        Recurrent(GRUCell(2), fast_grad=1)
