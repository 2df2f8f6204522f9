"""Per-example gradients: `vmap(grad)` for any model, and exact per-example norms without materializing them.

`loss_fn(params, *example)` is the loss of ONE example (arrays without the batch axis); `batch` is
a tuple of arrays (or pytrees) with a leading example axis n, e.g. `(x, y)`.

The fast path ("fast", picked by "auto") intercepts the parameterised Flax layers whose gradient
is a product of what they see and what comes back: with a_t a layer's inputs and δ_t = ∂ℓ_i/∂z_t
the gradient of example i's loss w.r.t. the layer's outputs at position t,

    Dense / DenseGeneral   g_W = Σ_t a_t δ_tᵀ,  ‖g_W‖² = Σ_t,t' (a_t·a_t')(δ_t·δ_t')   (‖a‖²‖δ‖² for one position)
    Conv                   the same with a_t the input patch under the kernel at output position t
    Embed, jdl Embedding   ‖g_E‖² = Σ_t,t' [id_t = id_t'] (δ_t·δ_t')
    LayerNorm              g_γ = Σ_t δ_t ⊙ x̂_t,  g_β = Σ_t δ_t
    jdl Recurrent          g_U = Σ_t h_{t-1} ρ_tᵀ (GRU: g_b_rec = Σ_t ρ_t), ρ_t the gradient w.r.t. the
                           step's recurrent product h_{t-1} U (+ b_rec); the input kernel is a Dense

a_t and δ_t come from one batched backward pass (δ as the gradient w.r.t. a zero perturbation added
to the layer's output through `flax.linen.intercept_methods`), so user models need no change.
A jdl `Recurrent` layer (SimpleRNN, LSTM or GRU cell, without seq_lengths, initial state or reverse)
is run by an equivalent `lax.scan` that perturbs each step's recurrent product. Every other
parameter (custom `self.param`s, layers called inside `nn.scan` or `nn.remat`, layers
used through another method such as `Embed.attend`) gets its exact per-example gradient from the
same pass by `vmap(grad)`: the result is exact for any model. BatchNorm models: call the model in
inference mode inside `loss_fn` (running statistics), since a batch statistic mixes examples.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks

METHODS = ("auto", "fast", "vmap")
_FAST_TYPES = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.Embed, nn.LayerNorm)


# -- validation -----------------------------------------------------------------------------------


def _check(loss_fn: Any, params: Any, batch: Any, chunk_size: Any = None) -> tuple[tuple[Any, ...], int]:
    """(batch as a tuple, n) after checking every argument; raises before anything is traced."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(params, *example) -> scalar, got {_checks.describe(loss_fn)}")
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(f"params must hold at least one array, got {_checks.describe(params)}")
    if not isinstance(batch, (tuple, list)):
        raise TypeError(f"batch must be a tuple of per-example arguments such as (x, y), got {_checks.describe(batch)}")
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves:
        raise ValueError("batch must hold at least one array with a leading example axis, got none")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if -1 in sizes:
        raise ValueError("every array in batch must have a leading example axis (n, ...), got a scalar")
    if len(sizes) > 1:
        raise ValueError(f"every array in batch must have the same number of examples, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("batch must hold at least one example, got 0")
    if chunk_size is not None:
        _checks.check_number(chunk_size, "chunk_size", integer=True, positive=True)
    return tuple(batch), n


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


# -- mapping over examples ------------------------------------------------------------------------


def _map_examples(fn: Callable[..., Any], batch: tuple[Any, ...], n: int, chunk_size: int | None) -> Any:
    """vmap(fn) over the examples of batch; with chunk_size, `lax.map` over chunks of that many (bounded memory)."""
    if chunk_size is None or chunk_size >= n:
        return jax.vmap(fn)(*batch)
    chunks = math.ceil(n / chunk_size)
    pad = chunks * chunk_size - n

    def split(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
        return a.reshape((chunks, chunk_size) + a.shape[1:])

    out = jax.lax.map(lambda b: jax.vmap(fn)(*b), jax.tree_util.tree_map(split, batch))
    return jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)


def per_example_grads(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                      chunk_size: int | None = None) -> Any:
    """∇_θ ℓ(θ; example_i) for every example: a pytree like params with a leading (n,) axis.

    vmap(grad(loss_fn)) over the leading axis of every array in batch; chunk_size bounds memory.
    """
    batch, n = _check(loss_fn, params, batch, chunk_size)
    return _jit_per_example_grads(loss_fn, chunk_size)(params, batch)


@functools.lru_cache(maxsize=64)
def _jit_per_example_grads(loss_fn: Callable, chunk_size: int | None) -> Callable:
    def run(params, batch):
        n = jax.tree_util.tree_leaves(batch)[0].shape[0]
        return _map_examples(lambda *ex: jax.grad(loss_fn)(params, *ex), batch, n, chunk_size)

    return jax.jit(run)


# -- layer groups ---------------------------------------------------------------------------------


def layer_name(path: tuple[Any, ...]) -> str:
    """"Dense_0" for params path (Dense_0, kernel): the '/'-joined path of the leaf's module."""
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    return "/".join(keys[:-1]) or keys[0]


def layer_names(params: Any) -> list[str]:
    """The layers of params in order: the modules that own parameter leaves."""
    names: list[str] = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = layer_name(path)
        if name not in names:
            names.append(name)
    return names


def _by_layer(params: Any, leaf_values: Sequence[jax.Array]) -> dict[str, jax.Array]:
    """Sum per-leaf values (n,) into per-layer values {layer: (n,)}."""
    out: dict[str, jax.Array] = {}
    for (path, _), value in zip(jax.tree_util.tree_flatten_with_path(params)[0], leaf_values):
        name = layer_name(path)
        out[name] = out[name] + value if name in out else value
    return out


# -- the fast path: a plan of intercepted calls ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Call:
    """One intercepted layer call: its kind, the param leaves it owns (by role), and its static config."""

    kind: str
    leaves: tuple[tuple[str, int], ...]
    config: tuple[Any, ...] = ()


def _current_trace() -> Any:
    from jax._src import core

    return core.trace_ctx.trace


def _fast_supported(module: nn.Module) -> str | None:
    """The kind of layer the fast path handles exactly, or None."""
    kind = type(module)
    if kind is nn.Dense:
        return "dense"
    if kind is nn.DenseGeneral:
        axis = (module.axis,) if isinstance(module.axis, int) else tuple(module.axis)
        return "dense_general" if not module.batch_dims and len(axis) >= 1 else None
    if kind is nn.Conv:
        ok = module.feature_group_count == 1 and module.mask is None and module.input_dilation in (None, 1) and (
            not isinstance(module.padding, str) or module.padding.upper() in ("SAME", "VALID"))
        return "conv" if ok else None
    if kind is nn.Embed or kind is _jdl_embedding():
        return "embed"
    if kind is nn.LayerNorm:
        ok = module.reduction_axes in (-1, (-1,)) and module.feature_axes in (-1, (-1,)) and module.axis_name is None
        return "layer_norm" if ok else None
    return None


def _is_wrapper(module: nn.Module, method_name: str) -> bool:
    """Methods that only call a covered layer: jdl's Conv1D/Conv2D (a flax Conv), a jdl cell's project_inputs (a Dense)."""
    from jdl.nn.conv import _Conv
    from jdl.nn.recurrent import _Cell

    return isinstance(module, _Conv) or (isinstance(module, _Cell) and method_name == "project_inputs")


def _recurrent_params(module: nn.Module, args: tuple, kwargs: dict, index_of: dict[int, int]) -> dict[str, int | None] | None:
    """{"recurrent_kernel": leaf[, "recurrent_bias": leaf]} of a jdl Recurrent call the recurrent rule covers, else None."""
    from jdl.nn import recurrent

    if type(module) is not recurrent.Recurrent or module.reverse or not args:
        return None
    if type(module.cell) not in (recurrent.SimpleRNNCell, recurrent.LSTMCell, recurrent.GRUCell):
        return None
    if any(a is not None for a in args[1:]) or any(v is not None for v in kwargs.values()):
        return None
    cell_params = module.cell.variables.get("params", {})
    names = ("recurrent_kernel", "recurrent_bias") if isinstance(module.cell, recurrent.GRUCell) else ("recurrent_kernel",)
    return {name: index_of.get(id(cell_params.get(name))) for name in names}


def _recurrent_perturbation(module: nn.Module, x: jax.Array) -> jax.ShapeDtypeStruct:
    """(batch, time, G·units): one perturbation of the recurrent product per example and step."""
    cell = module.cell
    dtype = jnp.promote_types(jnp.result_type(x), cell.param_dtype)
    return jax.ShapeDtypeStruct((x.shape[0], x.shape[1], cell.gates * cell.units), dtype)


def _recurrent_forward(module: nn.Module, x: jax.Array, perturbation: jax.Array) -> tuple[Any, jax.Array]:
    """jdl Recurrent's outputs with perturbation (batch, time, G·units) added to each h_{t-1}U (+ b): (outputs, h_{t-1} (batch, time, units)).

    The same computation as `Recurrent.__call__` without seq_lengths, initial state or reverse,
    as a `lax.scan` over pure functions (the input projection stays a Dense call).
    """
    from jdl.nn import recurrent

    cell = module.cell
    x = recurrent.check_sequence(x)
    xs = cell.project_inputs(jnp.swapaxes(x, 0, 1))
    carry = cell.initialize_carry(None, (x.shape[0], x.shape[2]))
    carry = jax.tree_util.tree_map(lambda c: c.astype(xs.dtype), carry)
    kernel = cell.recurrent_kernel
    bias = cell.recurrent_bias if isinstance(cell, recurrent.GRUCell) else None

    def body(carry, inputs):
        projected, e = inputs
        h = cell.output(carry)
        product = h @ kernel if bias is None else h @ kernel + bias
        carry, out = cell.combine(carry, projected, product + e.astype(product.dtype))
        return carry, (out, h)

    carry, (ys, h_prev) = jax.lax.scan(body, carry, (xs, jnp.swapaxes(perturbation, 0, 1)), unroll=module.unroll)
    outputs = jnp.swapaxes(ys, 0, 1) if module.return_sequences else cell.output(carry)
    return ((outputs, carry) if module.return_state else outputs), jnp.swapaxes(h_prev, 0, 1)


def _jdl_embedding() -> type:
    from jdl.nn.embedding import Embedding

    return Embedding


def _conv_config(module: nn.Conv, ndim: int) -> tuple[Any, ...]:
    spatial = ndim - 2
    kernel = tuple(module.kernel_size) if not isinstance(module.kernel_size, int) else (module.kernel_size,) * spatial
    strides = module.strides or 1
    strides = (strides,) * spatial if isinstance(strides, int) else tuple(strides)
    dilation = module.kernel_dilation or 1
    dilation = (dilation,) * spatial if isinstance(dilation, int) else tuple(dilation)
    padding = module.padding
    if isinstance(padding, str):
        padding = padding.upper()
    elif isinstance(padding, int):
        padding = ((padding, padding),) * spatial
    else:
        padding = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
    return kernel, strides, dilation, padding


def _classify(module: nn.Module, method_name: str, args: tuple, kwargs: dict,
              index_of: dict[int, int]) -> tuple[str | None, dict[str, int | None]]:
    """(kind the fast path covers or None, {param name: leaf index}) of one intercepted method call."""
    if method_name == "__call__":
        recurrent_own = _recurrent_params(module, args, kwargs, index_of)
        if recurrent_own is not None:
            return ("recurrent" if None not in recurrent_own.values() else None), recurrent_own
    own = {name: index_of.get(id(value)) for name, value in _module_params(module).items()}
    kind = _fast_supported(module)
    if kind is None or method_name != "__call__" or None in own.values() or kwargs or len(args) != 1:
        return None, own
    if kind == "dense_general":
        ndim = jnp.ndim(args[0])
        axis = (module.axis,) if isinstance(module.axis, int) else tuple(module.axis)
        axis = tuple(sorted(a % ndim for a in axis))
        if axis != tuple(range(ndim - len(axis), ndim)):
            return None, own
    return kind, own


def _config(kind: str, module: nn.Module, x: Any) -> tuple[Any, ...]:
    if kind == "conv":
        return _conv_config(module, jnp.ndim(x))
    if kind == "dense_general":
        return (1 if isinstance(module.axis, int) else len(module.axis),)
    if kind == "layer_norm":
        return (module.epsilon, module.use_scale, module.use_bias)
    return ()


class _Plan:
    """Which layer calls the fast path covers, found by tracing loss_fn on one example (no FLOPs)."""

    def __init__(self, loss_fn: Callable, params: Any, example: tuple[Any, ...]):
        self.n_leaves = len(jax.tree_util.tree_leaves(params))
        self.calls: list[_Call] = []
        self.names: list[str] = []
        self.perturb_shapes: list[jax.ShapeDtypeStruct] = []
        excluded: set[int] = set()
        kinds: dict[int, set[str]] = {}

        def trace(params_t, *example_t):
            index_of = {id(leaf): i for i, leaf in enumerate(jax.tree_util.tree_leaves(params_t))}
            top = _current_trace()

            def interceptor(next_fun, args, kwargs, context):
                if context.method_name == "setup":
                    return next_fun(*args, **kwargs)
                kind, own = _classify(context.module, context.method_name, args, kwargs, index_of)
                indices = {i for i in own.values() if i is not None}
                if not indices:
                    return next_fun(*args, **kwargs)
                if kind is None and _is_wrapper(context.module, context.method_name):
                    return next_fun(*args, **kwargs)
                if kind is None or _current_trace() is not top:
                    excluded.update(indices)
                    return next_fun(*args, **kwargs)
                for i in indices:
                    kinds.setdefault(i, set()).add(kind)
                slot = len(self.calls)
                self.calls.append(_Call(kind, tuple(sorted(own.items())), _config(kind, context.module, args[0])))
                self.names.append("/".join(context.module.path))
                self.perturb_shapes.append(None)
                if kind == "recurrent":
                    shape = _recurrent_perturbation(context.module, args[0])
                    out, _ = _recurrent_forward(context.module, args[0], jnp.zeros(shape.shape, shape.dtype))
                else:
                    out = next_fun(*args, **kwargs)
                    shape = jax.ShapeDtypeStruct(jnp.shape(out), jnp.result_type(out))
                self.perturb_shapes[slot] = shape
                return out

            with nn.intercept_methods(interceptor):
                return loss_fn(params_t, *example_t)

        jax.eval_shape(trace, params, *example)
        mixed = {i for i, k in kinds.items() if len(k) > 1}
        self.leftover = sorted(excluded | mixed | (set(range(self.n_leaves)) - set(kinds)))
        bad = set(self.leftover)
        self.keep = tuple(k for k, call in enumerate(self.calls) if not bad & {i for _, i in call.leaves})
        self.calls = [self.calls[k] for k in self.keep]
        self.names = [self.names[k] for k in self.keep]
        self.perturb_shapes = [self.perturb_shapes[k] for k in self.keep]


def _module_params(module: nn.Module) -> dict[str, Any]:
    try:
        return dict(module.variables.get("params", {}))
    except Exception:  # a module outside a bound scope owns no variables
        return {}


def _run_captured(plan: _Plan, params: Any, perturbations: Sequence[jax.Array], run: Callable[[], Any]) -> tuple:
    """(run()'s result, inputs, extras, outputs): plan's covered calls record input and output, and get their perturbation added."""
    keep = {k: position for position, k in enumerate(plan.keep)}
    index_of = {id(leaf): i for i, leaf in enumerate(jax.tree_util.tree_leaves(params))}
    top = _current_trace()
    seen = [0]
    captured: list[Any] = []
    outputs: list[Any] = []

    def interceptor(next_fun, args, kwargs, context):
        kind, own = _classify(context.module, context.method_name, args, kwargs, index_of)
        if kind is None or not own or _current_trace() is not top:
            return next_fun(*args, **kwargs)
        index = seen[0]
        seen[0] += 1
        if index not in keep:
            return next_fun(*args, **kwargs)
        slot = len(captured)
        captured.append(None)
        outputs.append(None)
        if kind == "recurrent":
            out, h_prev = _recurrent_forward(context.module, args[0], perturbations[keep[index]])
            captured[slot], outputs[slot] = h_prev, out
            return out
        out = next_fun(*args, **kwargs)
        captured[slot], outputs[slot] = args[0], out
        return out + perturbations[keep[index]].astype(jnp.result_type(out))

    with nn.intercept_methods(interceptor):
        result = run()
    if len(captured) != len(plan.calls):
        raise RuntimeError("the model called its layers differently on a second trace; use method='vmap'")
    extras = [_layer_norm_stats(a, call) if call.kind == "layer_norm" else None
              for a, call in zip(captured, plan.calls)]
    return result, captured, extras, outputs


def _capture(loss_fn: Callable, plan: _Plan, params_full: Callable[[Any], Any]) -> Callable:
    """g(leftover, perturbations, *example) -> (loss, (inputs, x̂)) of each covered call, for grad and vmap."""

    def g(leftover, perturbations, *example):
        params = params_full(leftover)
        loss, captured, extras, _ = _run_captured(plan, params, perturbations, lambda: loss_fn(params, *example))
        return loss, (captured, extras)

    return g


def _layer_norm_stats(x: jax.Array, call: _Call) -> jax.Array:
    """x̂ = (x - mean) / sqrt(var + ε) over the last axis (what LayerNorm's scale multiplies)."""
    epsilon = call.config[0]
    x = _wide(x)
    mean = x.mean(-1, keepdims=True)
    var = jnp.maximum((x * x).mean(-1, keepdims=True) - mean * mean, 0.0)
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


# -- per-layer algebra for one example ------------------------------------------------------------


def _kernel_slices(x: jax.Array, config: tuple[Any, ...]) -> list[jax.Array]:
    """For each kernel offset (in the kernel's (kh, kw) order), the input entries it multiplies: (n, *out, c_in) each.

    kh·kw strided slices of the padded input (memory moves, no multiply-adds).
    """
    kernel, strides, dilation, padding = config
    spatial = len(kernel)
    x = x.reshape((-1,) + x.shape[-spatial - 1:])
    sizes = x.shape[1:-1]
    window = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    pads = jax.lax.padtype_to_pads(sizes, window, strides, padding) if isinstance(padding, str) else padding
    x = jnp.pad(x, ((0, 0), *[tuple(p) for p in pads], (0, 0)))
    out = tuple((n + lo + hi - w) // s + 1 for n, (lo, hi), w, s in zip(sizes, pads, window, strides))
    slices = []
    for offset in np.ndindex(*kernel):
        start = (0,) + tuple(o * d for o, d in zip(offset, dilation)) + (0,)
        limit = (x.shape[0],) + tuple(b + (m - 1) * s + 1 for b, m, s in zip(start[1:-1], out, strides)) + (x.shape[-1],)
        slices.append(jax.lax.slice(x, start, limit, (1,) + tuple(strides) + (1,)))
    return slices


def _patches(x: jax.Array, config: tuple[Any, ...]) -> jax.Array:
    """Input patches under a Conv kernel: (positions, kh·kw·c_in) in the kernel's (kh, kw, c_in) order.

    One input channel: `conv_general_dilated_patches` (an identity-kernel convolution). Several:
    stacked kernel slices, since XLA:CPU runs the grouped identity convolution slowly (LeNet's
    14×14×6 → 10×10×150 patches: 7.4 ms by slices, 14.3 ms by convolution, batch 128).
    """
    kernel, strides, dilation, padding = config
    spatial = len(kernel)
    x = x.reshape((-1,) + x.shape[-spatial - 1:])
    if x.shape[-1] == 1:
        specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[spatial]
        p = jax.lax.conv_general_dilated_patches(x, kernel, strides, padding, rhs_dilation=dilation,
                                                 dimension_numbers=specs)
        return p.reshape(-1, math.prod(kernel))
    p = jnp.stack(_kernel_slices(x, config), axis=-2)
    return p.reshape(-1, p.shape[-2] * p.shape[-1])


def _conv_kernel_gradient(x: jax.Array, delta: jax.Array, config: tuple[Any, ...]) -> jax.Array:
    """One example's Conv kernel gradient (*kernel, c_in, c_out): for each offset k, Σ_t x_(t+k)ᵀ δ_t.

    Products of each kernel slice with δ, without forming the (positions, kh·kw·c_in) patches
    (LeNet, batch 128: conv2 2.4 vs 6.1 ms, conv1 9.9 vs 12.3 ms).
    """
    d = delta.reshape(-1, delta.shape[-1])
    blocks = [s.reshape(-1, s.shape[-1]).T @ d for s in _kernel_slices(x, config)]
    return jnp.stack(blocks).reshape(tuple(config[0]) + blocks[0].shape)


def _wide(x: jax.Array) -> jax.Array:
    """x in at least float32 (float64 stays float64): sums of squares need the range."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _outer_sq_norm(a: jax.Array, d: jax.Array) -> jax.Array:
    """‖Σ_t a_t d_tᵀ‖²_F for a (T, p), d (T, q), by the cheaper of the Gram form and the direct product."""
    t, p = a.shape
    q = d.shape[1]
    if t == 1:
        return jnp.sum(a * a) * jnp.sum(d * d)
    if t * t * (p + q) <= t * p * q + p * q:
        return jnp.sum((a @ a.T) * (d @ d.T))
    g = a.T @ d
    return jnp.sum(g * g)


def _gram_is_cheaper(config: tuple[Any, ...], x: jax.Array, delta: jax.Array) -> bool:
    """Whether Σ_t,t' (a_t·a_t')(δ_t·δ_t') over T output positions costs less than forming the p×q kernel gradient."""
    t = math.prod(delta.shape[:-1])
    p, q = math.prod(config[0]) * x.shape[-1], delta.shape[-1]
    return t * t * (p + q) <= t * p * q + p * q


def _covered_terms(call: _Call, a: jax.Array, delta: jax.Array, extra: Any) -> dict[int, tuple]:
    """{leaf index: (A (T, p), D (T, q)) or ("vector", g)} describing each owned leaf's gradient for one call."""
    roles = dict(call.leaves)
    out = {}
    if call.kind == "conv" and not _gram_is_cheaper(call.config, a, delta):
        out[roles["kernel"]] = ("vector", _conv_kernel_gradient(_wide(a), _wide(delta), call.config).reshape(-1))
        if "bias" in roles:
            out[roles["bias"]] = ("sum", _wide(delta.reshape(-1, delta.shape[-1])))
    elif call.kind in ("dense", "dense_general", "conv"):
        if call.kind == "conv":
            rows = _patches(a, call.config)
            d = delta.reshape(-1, delta.shape[-1])
        elif call.kind == "dense":
            rows = a.reshape(-1, a.shape[-1])
            d = delta.reshape(-1, delta.shape[-1])
        else:
            n_in = call.config[0]
            rows = a.reshape((-1, math.prod(a.shape[a.ndim - n_in:])))
            d = delta.reshape((rows.shape[0], -1))
        out[roles["kernel"]] = ("outer", _wide(rows), _wide(d))
        if "bias" in roles:
            out[roles["bias"]] = ("sum", _wide(d))
    elif call.kind == "recurrent":
        d = _wide(delta.reshape(-1, delta.shape[-1]))
        out[roles["recurrent_kernel"]] = ("outer", _wide(a.reshape(-1, a.shape[-1])), d)
        if "recurrent_bias" in roles:
            out[roles["recurrent_bias"]] = ("sum", d)
    elif call.kind == "embed":
        d = _wide(delta.reshape(-1, delta.shape[-1]))
        out[roles.get("embedding", roles.get("embeddings"))] = ("embed", a.reshape(-1), d)
    elif call.kind == "layer_norm":
        d = _wide(delta.reshape(-1, delta.shape[-1]))
        xhat = extra.reshape(d.shape)
        _, use_scale, use_bias = call.config
        if use_scale:
            out[roles["scale"]] = ("vector", jnp.sum(d * xhat, axis=0))
        if use_bias:
            out[roles["bias"]] = ("vector", jnp.sum(d, axis=0))
    return out


def _merge(terms: list[dict[int, tuple]]) -> dict[int, tuple]:
    """Combine the terms of a leaf used by several calls (shared weights): concatenate positions, add vectors."""
    merged: dict[int, tuple] = {}
    for term in terms:
        for leaf, value in term.items():
            if leaf not in merged:
                merged[leaf] = value
            elif value[0] == "vector":
                merged[leaf] = ("vector", merged[leaf][1] + value[1])
            else:
                merged[leaf] = (value[0],) + tuple(jnp.concatenate([o, v]) for o, v in zip(merged[leaf][1:], value[1:]))
    return merged


def _sq_norm(term: tuple) -> jax.Array:
    kind = term[0]
    if kind == "outer":
        return _outer_sq_norm(term[1], term[2])
    if kind == "sum":
        s = term[1].sum(0)
        return jnp.sum(s * s)
    if kind == "vector":
        return jnp.sum(term[1] * term[1])
    ids, d = term[1], term[2]
    same = ids[:, None] == ids[None, :]
    return jnp.sum(jnp.where(same, d @ d.T, 0.0))


def _gradient(term: tuple, shape: tuple[int, ...]) -> jax.Array:
    """The leaf's per-example gradient itself (for sums of squares), shape `shape`."""
    kind = term[0]
    if kind == "outer":
        return (term[1].T @ term[2]).reshape(shape)
    if kind == "sum":
        return term[1].sum(0).reshape(shape)
    if kind == "vector":
        return term[1].reshape(shape)
    ids, d = term[1], term[2]
    return jax.ops.segment_sum(d, ids, num_segments=shape[0]).reshape(shape)


# -- the fast pass --------------------------------------------------------------------------------


def _fast_example_fn(loss_fn: Callable, params: Any, plan: _Plan,
                     per_leaf: Callable[[dict[int, tuple], dict[int, jax.Array]], Any]) -> Callable:
    """one(*example) -> per_leaf(terms of the covered leaves, gradients of the leftover leaves)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leftover_index = plan.leftover
    leftover = [leaves[i] for i in leftover_index]

    def params_full(left):
        full = list(leaves)
        for i, value in zip(leftover_index, left):
            full[i] = value
        return jax.tree_util.tree_unflatten(treedef, full)

    g = _capture(loss_fn, plan, params_full)

    def one(*example):
        zeros = [jnp.zeros(s.shape, s.dtype) for s in plan.perturb_shapes]
        (left_grads, deltas), (inputs, extras) = jax.grad(g, argnums=(0, 1), has_aux=True)(leftover, zeros, *example)
        terms = _merge([_covered_terms(call, a, d, e) for call, a, d, e in zip(plan.calls, inputs, deltas, extras)])
        return per_leaf(terms, dict(zip(leftover_index, left_grads)))

    return one


def _leaf_sq_norms_fast(loss_fn, params, batch, plan, chunk_size) -> list[jax.Array]:
    """‖g_i‖² of every parameter leaf: a list (in tree order) of (n,) arrays."""

    def per_leaf(terms, left):
        return [jnp.sum(jnp.square(_wide(left[i]))) if i in left else _sq_norm(terms[i])
                for i in range(plan.n_leaves)]

    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    return _map_examples(_fast_example_fn(loss_fn, params, plan, per_leaf), batch, n, chunk_size)


def _leaf_sq_norms_vmap(loss_fn, params, batch, chunk_size) -> list[jax.Array]:
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]

    def one(*example):
        grads = jax.grad(loss_fn)(params, *example)
        return [jnp.sum(jnp.square(_wide(g))) for g in jax.tree_util.tree_leaves(grads)]

    return _map_examples(one, batch, n, chunk_size)


def _signature(tree: Any) -> tuple[Any, ...]:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)


_PLAN_CACHE: dict[Any, _Plan | None] = {}


def _resolve_plan(loss_fn, params, batch, method: str) -> _Plan | None:
    """The fast plan for method "fast"/"auto" (None means: use vmap), cached per function and shapes."""
    if method == "vmap":
        return None
    key = (loss_fn, method, _signature(params), _signature(batch))
    if key not in _PLAN_CACHE:
        if len(_PLAN_CACHE) > 64:
            _PLAN_CACHE.clear()
        _PLAN_CACHE[key] = _new_plan(loss_fn, params, batch, method)
    return _PLAN_CACHE[key]


def _new_plan(loss_fn, params, batch, method: str) -> _Plan | None:
    example = jax.tree_util.tree_map(lambda a: a[0], batch)
    try:
        plan = _Plan(loss_fn, params, example)
    except Exception as err:  # the trace itself failed: only vmap can say more
        if method == "fast":
            raise
        del err
        return None
    if method == "auto" and not plan.calls:
        return None
    return plan


def per_example_grad_norms(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                           by_layer: bool = False, method: str = "auto",
                           chunk_size: int | None = None) -> jax.Array | dict[str, jax.Array]:
    """Exact ‖∇_θ ℓ(θ; example_i)‖₂ for every example: (n,), or {layer: (n,)} with by_layer.

    method: "vmap" (norms of vmap(grad)), "fast" (layer algebra, see the module docstring; other
    parameters by vmap in the same pass), "auto" (fast when the model has a layer it covers).
    """
    batch, n = _check(loss_fn, params, batch, chunk_size)
    method = _check_method(method)
    if not isinstance(by_layer, bool):
        raise TypeError(f"by_layer must be True or False, got {_checks.describe(by_layer)}")
    plan = _resolve_plan(loss_fn, params, batch, method)
    leaf_sq = _jit_sq_norms(loss_fn, plan, chunk_size)(params, batch)
    if by_layer:
        return {name: jnp.sqrt(v) for name, v in _by_layer(params, leaf_sq).items()}
    return jnp.sqrt(sum(leaf_sq[1:], leaf_sq[0]))


_PLANS: dict[Any, Any] = {}


def _jit_sq_norms(loss_fn: Callable, plan: _Plan | None, chunk_size: int | None) -> Callable:
    key = (loss_fn, id(plan) if plan is not None else None, chunk_size, "norms")
    if key not in _PLANS:
        if plan is None:
            fn = jax.jit(lambda params, batch: _leaf_sq_norms_vmap(loss_fn, params, batch, chunk_size))
        else:
            fn = jax.jit(lambda params, batch: _leaf_sq_norms_fast(loss_fn, params, batch, plan, chunk_size))
        _remember(key, fn, plan)
    return _PLANS[key][0]


def _remember(key: Any, fn: Callable, plan: _Plan | None) -> None:
    """Cache a compiled function with its plan (kept alive so its id stays unique); at most 64 entries."""
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[key] = (fn, plan)


def per_example_moments(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                        method: str = "auto", chunk_size: int | None = None) -> tuple[Any, Any]:
    """(Σ_i g_i, Σ_i g_i²) per parameter entry, pytrees like params: what gradient variance and GSNR need.

    Var[g] = Σg²/n - (Σg/n)² per entry. The fast path forms each covered leaf's per-example
    gradient one example at a time from (a, δ) inside the pass, never holding n copies of it.
    """
    batch, n = _check(loss_fn, params, batch, chunk_size)
    method = _check_method(method)
    plan = _resolve_plan(loss_fn, params, batch, method)
    key = (loss_fn, id(plan) if plan is not None else None, chunk_size, "moments")
    if key not in _PLANS:
        _remember(key, jax.jit(functools.partial(_moments, loss_fn, plan=plan, chunk_size=chunk_size)), plan)
    return _PLANS[key][0](params, batch)


MOMENTS_CHUNK = 128


def _moments(loss_fn, params, batch, *, plan, chunk_size, mask=None):
    """(Σ_i g_i, Σ_i g_i²) over the examples where mask (n,) is True (all by default), chunk by chunk.

    A Dense kernel seeing one position per example never forms g_i = a_i δ_iᵀ: Σ_i g_i = AᵀΔ and
    Σ_i g_i² = (A⊙A)ᵀ(Δ⊙Δ) over the chunk (two matrix products); other leaves form g_i per example.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [leaf.shape for leaf in leaves]
    if plan is None:
        def one(*example):
            return [(_wide(g),) for g in jax.tree_util.tree_leaves(jax.grad(loss_fn)(params, *example))]
    else:
        def term_of(i, terms, left):
            """(a, δ) for a one-position Dense kernel, else (g_i,)."""
            if i in left:
                return (_wide(left[i]),)
            term = terms[i]
            if term[0] == "outer" and term[1].shape[0] == 1:
                return (term[1][0], term[2][0])
            return (_gradient(term, shapes[i]),)

        one = _fast_example_fn(loss_fn, params, plan,
                               lambda terms, left: [term_of(i, terms, left) for i in range(len(shapes))])

    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    size = min(n, chunk_size or MOMENTS_CHUNK)
    chunks = math.ceil(n / size)
    pad = chunks * size - n
    valid = jnp.arange(chunks * size) < n
    if mask is not None:
        valid = valid & jnp.concatenate([mask, jnp.zeros((pad,), bool)])
    mask = valid.reshape(chunks, size)

    def split(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
        return a.reshape((chunks, size) + a.shape[1:])

    def body(carry, chunk):
        total, squares = carry
        examples, m = chunk
        new_total, new_squares = [], []
        for term, t, q, shape in zip(jax.vmap(one)(*examples), total, squares, shapes):
            if len(term) == 2:
                rows = jnp.where(m[:, None], term[0], 0).astype(t.dtype)
                deltas = term[1].astype(t.dtype)
                new_total.append(t + (rows.T @ deltas).reshape(shape))
                new_squares.append(q + ((rows * rows).T @ (deltas * deltas)).reshape(shape))
            else:
                g = jnp.where(m.reshape((-1,) + (1,) * (term[0].ndim - 1)), term[0], 0).astype(t.dtype)
                new_total.append(t + g.sum(0))
                new_squares.append(q + (g * g).sum(0))
        return (new_total, new_squares), None

    zeros = [jnp.zeros(leaf.shape, jnp.promote_types(leaf.dtype, jnp.float32)) for leaf in leaves]
    (total, squares), _ = jax.lax.scan(body, (zeros, list(zeros)), (jax.tree_util.tree_map(split, batch), mask))
    return jax.tree_util.tree_unflatten(treedef, total), jax.tree_util.tree_unflatten(treedef, squares)


# -- the shared pass: per-example norms from a training step's own backward pass --------------------


class SharedPass:
    """Per-example gradient norms from the batched backward pass a training step already makes.

    With a_i and δ_i^cost = ∂cost/∂z_i of a batch cost Σ_i w_i ℓ_i / Σ_i w_i (plus terms that do
    not pass through the layers' outputs, such as an L2 penalty), example i's gradient of ℓ_i is
    (Σw / w_i) · the layer algebra of (a_i, δ_i^cost). Exact when the examples do not interact
    (nothing checks parameter-free mixing such as x - x.mean(0)), up to float32 underflow of
    δ_i^cost for weights spanning dozens of orders of magnitude.
    """

    def __init__(self, plan: _Plan, n: int, axes: Sequence[int]):
        self.plan, self.n, self.axes = plan, n, tuple(axes)

    def value_and_grad(self, cost_fn: Callable[[Any], tuple[jax.Array, Any]], params: Any) -> tuple:
        """((cost, aux), grads, captures) of cost_fn(params) -> (cost, aux): one forward and one backward pass.

        captures: (inputs, output gradients, LayerNorm x̂, outputs) of the covered layer calls.
        """

        def g(p, perturbations):
            (cost, aux), inputs, extras, outputs = _run_captured(self.plan, p, perturbations, lambda: cost_fn(p))
            return cost, (aux, inputs, extras, outputs)

        zeros = [jnp.zeros(s.shape, s.dtype) for s in self.plan.perturb_shapes]
        (cost, (aux, inputs, extras, outputs)), (grads, deltas) = jax.value_and_grad(
            g, argnums=(0, 1), has_aux=True)(params, zeros)
        return (cost, aux), grads, (inputs, deltas, extras, outputs)

    def preactivations(self, captures: tuple) -> dict[str, jax.Array]:
        """`stats.preactivations` of this forward pass: the Dense/Conv outputs by layer, the last (the head) dropped."""
        found: dict[str, jax.Array] = {}
        for call, name, out in zip(self.plan.calls, self.plan.names, captures[3]):
            if call.kind in ("dense", "conv"):
                found[name] = out
        return dict(list(found.items())[:-1])

    def example_norms(self, captures: tuple, w: jax.Array) -> jax.Array:
        """‖∇ℓ_i‖ (n,) from the captures of `value_and_grad`, for cost weights w (n,); 0 where w_i = 0."""
        plan = self.plan
        captures = [[None if a is None else jnp.moveaxis(a, axis, 0) for a, axis in zip(part, self.axes)]
                    for part in captures[:3]]

        def one(inputs, deltas, extras):
            terms = _merge([_covered_terms(call, a, d, e) for call, a, d, e in zip(plan.calls, inputs, deltas, extras)])
            values = [_sq_norm(term) for term in terms.values()]
            return sum(values[1:], values[0])

        cost_norms = jnp.sqrt(jax.vmap(one)(*captures))
        w = w.astype(cost_norms.dtype)
        return jnp.where(w > 0, cost_norms * jnp.sum(w) / jnp.where(w > 0, w, 1.0), 0.0)


def shared_pass(cost_fn: Callable[[Any], Any], params: Any, example_plan: _Plan | None, n: int) -> SharedPass | None:
    """A SharedPass for cost_fn(params) -> (cost, aux), or None when its covered calls are not example_plan's.

    example_plan: the plan of the loss of a batch of ONE example. Eligible when every parameter is
    covered (and no jdl Recurrent: re-running its scan would change training in the last bits)
    and cost_fn makes the same covered calls, each output differing from the one-example
    output in one axis only, of size 1 there and n here (the batch axis, e.g. 1 for a time-major
    projection): no covered layer sees more than its own example.
    """
    if example_plan is None or example_plan.leftover:
        return None
    try:
        plan = _Plan(lambda p: cost_fn(p)[0], params, ())
    except Exception:  # the batch cost does not trace like the per-example loss: no shared pass
        return None
    if plan.leftover or len(plan.calls) != len(example_plan.calls):
        return None
    if any(call.kind == "recurrent" for call in plan.calls):
        return None  # its scan would replace the layer's own: training would change in the last bits
    axes = []
    for call, one, batched, single in zip(plan.calls, example_plan.calls, plan.perturb_shapes,
                                          example_plan.perturb_shapes):
        if call.kind != one.kind or call.leaves != one.leaves or call.config != one.config:
            return None
        axis = _batch_axis(tuple(single.shape), tuple(batched.shape), n)
        if axis is None:
            return None
        axes.append(axis)
    return SharedPass(plan, n, axes)


def _batch_axis(single: tuple[int, ...], batched: tuple[int, ...], n: int) -> int | None:
    """The one axis where a one-example shape has 1 and the batch's has n, all others equal; else None."""
    if len(single) != len(batched):
        return None
    differ = [k for k, (a, b) in enumerate(zip(single, batched)) if a != b]
    if n == 1 and not differ:
        return 0 if single[:1] == (1,) else None
    if len(differ) != 1 or single[differ[0]] != 1 or batched[differ[0]] != n:
        return None
    return differ[0]


def fast_path_coverage(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any]) -> dict[str, list[str]]:
    """{"fast": layers whose per-example norms come from layer algebra, "vmap": layers that need vmap(grad)}."""
    batch, _ = _check(loss_fn, params, batch)
    plan = _resolve_plan(loss_fn, params, batch, "fast")
    paths = [layer_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    slow = {paths[i] for i in plan.leftover}
    names = layer_names(params)
    return {"fast": [n for n in names if n not in slow], "vmap": [n for n in names if n in slow]}
