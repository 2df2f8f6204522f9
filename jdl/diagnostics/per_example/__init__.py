"""Per-example gradients: `vmap(grad)` for any model, and exact per-example norms without materializing them.

`loss_fn(params, *example)` is the loss of ONE example (arrays without the batch axis), or
`loss_fn(params, x, y)` the per-example losses (n,) of a batch (see `contract`); `batch` is a
tuple of arrays (or pytrees) with a leading example axis n, e.g. `(x, y)`.

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

Modules: `api` (the validated, jitted functions below), `core` (the same computations, traceable:
call them inside your own jitted step), `plan` (the covered calls), `rules` (one rule per layer
kind), `moments`, `shared` (norms from a training step's own backward pass), `cache`.
"""

from jdl._tree import layer_name
from jdl.diagnostics.per_example import cache, contract, core, plan, rules
from jdl.diagnostics.per_example.api import (
    METHODS,
    fast_path_coverage,
    layer_names,
    model_call_order,
    per_example_grad_norms,
    per_example_grads,
    per_example_moments,
)
from jdl.diagnostics.per_example.moments import MOMENTS_CHUNK
from jdl.diagnostics.per_example.shared import SharedPass, shared_pass

__all__ = [
    "METHODS",
    "MOMENTS_CHUNK",
    "SharedPass",
    "cache",
    "contract",
    "core",
    "fast_path_coverage",
    "layer_name",
    "layer_names",
    "model_call_order",
    "per_example_grad_norms",
    "per_example_grads",
    "per_example_moments",
    "plan",
    "rules",
    "shared_pass",
]
