"""The depth study as it was before it was vmapped and scanned, kept as the reference its numbers must equal."""

import jax
import numpy as np
import optax

from jdl.diagnostics import studies


def reference_depth_study(activations, inits, depths, batch_norm, residual, *, width, steps, learning_rate,
                           clipnorm, examples, seed=0):
    """The depth study as it was before it was vmapped and scanned: one flax DeepMLP and one jit per configuration."""
    x, y = studies._digits(examples, seed)
    tx = optax.sgd(learning_rate)
    if clipnorm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clipnorm), tx)
    records = []
    for act in activations:
        for init in inits:
            for depth in depths:
                for bn in batch_norm:
                    for res in residual:
                        model = studies.DeepMLP(width=width, depth=depth, activation=act, kernel_init=init,
                                                batch_norm=bn, residual=res)
                        variables = model.init(jax.random.PRNGKey(seed), x[:2])

                        def grads_of(params, state, model=model):
                            def loss_fn(p):
                                logits, updates = model.apply({"params": p, **state}, x, train=True,
                                                              mutable=list(state))
                                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates
                            (loss, updates), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
                            return loss, updates, g

                        def run(variables, grads_of=grads_of):
                            params = variables["params"]
                            state = {k: v for k, v in variables.items() if k != "params"}
                            _, _, g0 = grads_of(params, state)

                            def step(carry, _):
                                params, state, opt = carry
                                loss, updates, g = grads_of(params, state)
                                change, opt = tx.update(g, opt, params)
                                return (optax.apply_updates(params, change), {**state, **updates}, opt), loss

                            (params, state, _), losses = jax.lax.scan(step, (params, state, tx.init(params)), None,
                                                                      length=steps)
                            return g0, grads_of(params, state)[2], losses

                        g0, g1, losses = jax.jit(run)(variables)
                        norms = studies.kernel_norms(g0)
                        losses = np.asarray(losses)
                        records.append({"init_norms": norms.tolist(), "first_to_last": float(norms[0] / norms[-1]),
                                        "trained_norms": studies.kernel_norms(g1).tolist(), "losses": losses.tolist()})
    return records
