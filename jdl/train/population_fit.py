"""`Trainer.fit(..., population=P)`: P members of one model trained by one compiled step, each with its own callbacks.

Every member has its own History, FitContext and callbacks (early stopping, checkpoints, gradient
monitor records, CSV logs...), which see that member's TrainState and logs exactly as in a fit of
its own. A member whose callbacks stop training (or whose loss turns non-finite) is masked: the
step still computes it (the population's shapes are fixed) but its state no longer changes and
its logs stop; at the end its callbacks' on_train_end run on that state (EarlyStopping then
restores its best weights). Member states are sliced from, and stacked back into, the population
state once per epoch (one dispatch each); within an epoch the chunks are dispatched back to back.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jdl import _checks, optim
from jdl import losses as losses_lib
from jdl.data.batching import MAX_STEPS_PER_EXECUTION, BatchPlan
from jdl.optim.penalty import kernels
from jdl.train import compiled, inputs, loss_scale
from jdl.train import population_step as pstep
from jdl.train.callbacks.backup_and_restore import TrainingInterrupted
from jdl.train.callbacks.base import Callback, CallbackList, FitContext
from jdl.train.callbacks.progress import ProgressBar
from jdl.train.history import History
from jdl.train.population import Members, as_population, resolve
from jdl.train.state import TrainState, _initializer, input_spec
from jdl.train.step import StepSpec

_QUIET_BATCH_END = (Callback.on_train_batch_end, ProgressBar.on_train_batch_end)
_SHARED_FILES = ("ModelCheckpoint", "BackupAndRestore", "CSVLogger", "TensorBoard")


def member_callbacks(callbacks: Any, count: int) -> list[list[Callback]]:
    """One callback list per member: a list of P lists as given, or copies of one list of callbacks for every member.

    Callbacks that write files (checkpoints, backups, CSV, TensorBoard) must be given per member,
    each with its own path.
    """
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, (str, bytes)):
        raise TypeError(f"callbacks must be a list of callbacks or a list of one list per member, got "
                        f"{_checks.describe(callbacks)}")
    callbacks = list(callbacks)
    if callbacks and all(isinstance(c, Sequence) and not isinstance(c, (str, bytes)) for c in callbacks):
        if len(callbacks) != count:
            raise ValueError(f"callbacks must give one list per member ({count}), got {len(callbacks)} lists")
        lists = [list(c) for c in callbacks]
        for k, own in enumerate(lists):
            for callback in own:
                if not isinstance(callback, Callback):
                    raise TypeError(f"callbacks[{k}] must hold jdl.callbacks.Callback instances, got "
                                    f"{_checks.describe(callback)}")
        seen: dict[int, int] = {}
        for k, own in enumerate(lists):
            for callback in own:
                if seen.setdefault(id(callback), k) != k:
                    raise ValueError(f"callbacks: one {type(callback).__name__} instance is given to members "
                                     f"{seen[id(callback)]} and {k}; give each member its own")
        return lists
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be jdl.callbacks.Callback instances, got {_checks.describe(callback)}")
        if type(callback).__name__ in _SHARED_FILES:
            raise ValueError(f"callbacks: a {type(callback).__name__} writes files, and every member needs its own; "
                             f"pass callbacks as a list of {count} lists, one per member, each with its own path")
    return [copy.deepcopy(callbacks) for _ in range(count)]


def init_members(trainer: Any, members: Members, x: Any, n: int) -> list[TrainState]:
    """Each member's fresh TrainState (its seed, its injected numbers), as `create_state` makes a lone fit's."""
    x = inputs.to_host(inputs.model_inputs(trainer.model, x), "x")
    sample = jax.tree_util.tree_map(lambda a: a[:1], x)
    init = _initializer(trainer.model, members.structure)
    shapes = init.eval_shape(np.uint32(members.seeds[0]), sample, members.optimizer_values[0])
    trainer.optimizer.check_params(shapes[0])
    if np.any(members.cost_values.l2 > 0) and not kernels(shapes[0]):
        raise ValueError("population setting 'l2' penalises kernels (leaves whose path ends in 'kernel'), but the "
                         "model has none")
    spec = input_spec(sample)
    states = []
    for seed, values in zip(members.seeds, members.optimizer_values):
        params, model_state, opt_state, rng = init(np.uint32(seed), sample, values)
        states.append(TrainState(step=jax.device_put(np.int32(0)), params=params, opt_state=opt_state,
                                 model_state=model_state, rng=rng, examples=jax.device_put(np.float32(n)),
                                 model=trainer.model, optimizer=members.structure, input_spec=spec,
                                 loss_scale=loss_scale.for_precision(trainer.objective.precision)))
    return states


class MemberStates:
    """The population state and lazily sliced member states: view(k), replace(k, state), then stacked()."""

    def __init__(self, states: list[TrainState], shared_step: Any):
        self.count = len(states)
        self.views: list[TrainState] | None = list(states)
        self.changed = True
        self.state, self.own_steps = states[0], None
        self.shared_step = shared_step
        self.stacked()

    def stacked(self) -> tuple[TrainState, Any]:
        """(population state, own_steps (P,)), stacking the member states again if one was replaced."""
        if self.changed:
            arrays = pstep.stack([(s.params, s.opt_state, s.model_state, s.rng, s.loss_scale, s.step)
                                  for s in self.views])
            params, opt_state, model_state, rng, scale, self.own_steps = arrays
            self.state = self.views[0].replace(params=params, opt_state=opt_state, model_state=model_state, rng=rng,
                                               loss_scale=scale, step=self.shared_step)
            self.changed = False
        return self.state, self.own_steps

    def update(self, state: TrainState, own_steps: Any) -> None:
        """The population state after a dispatch (the member views are stale)."""
        self.state, self.own_steps, self.views = state, own_steps, None

    def view(self, k: int) -> TrainState:
        if self.views is None:
            s = self.state
            parts = pstep.unstack((s.params, s.opt_state, s.model_state, s.rng, s.loss_scale, self.own_steps),
                                  self.count)
            self.views = [s.replace(params=p, opt_state=o, model_state=m, rng=r, loss_scale=ls, step=t)
                          for p, o, m, r, ls, t in parts]
        return self.views[k]

    def replace(self, k: int, state: Any) -> None:
        """Member k's state as a callback returned it (None: unchanged)."""
        if state is not None and state is not self.view(k):
            self.views[k] = state
            self.changed = True


def run_hook(lists: list[CallbackList], states: MemberStates, members: list[int], hook: str, *args: Any) -> None:
    """hook(*args, state) of each listed member's callbacks, replacing its state; TrainingInterrupted after all ran."""
    interrupted = None
    for k in members:
        try:
            states.replace(k, getattr(lists[k], hook)(*args[:-1], states.view(k), args[-1]))
        except TrainingInterrupted as err:
            interrupted = interrupted or err
    if interrupted is not None:
        raise interrupted


def fit(trainer: Any, x: Any, y: Any, population: Any, *, epochs: int, batch_size: int | None,
        validation_split: float, validation_data: Any, shuffle: bool, class_weight: Any, sample_weight: Any,
        initial_epoch: int, callbacks: Any, verbose: int, seed: int, state: Any,
        augment: Any) -> tuple[list[TrainState], list[History]]:
    """`Trainer.fit` for a population (see `Trainer.fit`); returns ([member states], [member Histories])."""
    if state is not None:
        raise ValueError("state must be None for a population fit (each member starts fresh from its seed), "
                         f"got {_checks.describe(state)}")
    from jdl.train.trainer import _check_fit_arguments

    _check_fit_arguments(epochs, initial_epoch, validation_split, seed, verbose, shuffle, augment, (), None)
    population = as_population(population, seed)
    count = len(population)
    lists_given = member_callbacks(callbacks, count)
    if class_weight is not None:
        if not trainer.objective.single:
            raise ValueError("class_weight is only supported for single-output models; use sample_weight per head")
        losses_lib.check_class_weight(class_weight)
    data = inputs.data(trainer.objective, inputs.model_inputs(trainer.model, x), y, sample_weight)
    data, validation = trainer._split(data, validation_data, validation_split)
    n = data.size
    batch_size = inputs.batch_size_for(batch_size, n)
    plan = BatchPlan(n, batch_size, shuffle, trainer.steps_per_execution or MAX_STEPS_PER_EXECUTION, 1)
    members = resolve(trainer, population, seed, plan.steps)
    states = init_members(trainer, members, data.x, n)
    objective = members.objective
    data = inputs.check_against_model(objective, states[0], data)
    if class_weight is not None:
        data.w = data.w * inputs.class_weights(objective, states[0], data, class_weight)
    if validation is not None:
        validation = inputs.check_against_model(objective, states[0], validation, name="validation_data ")
    trainer._warn_multi_hot(data)

    histories, lists, hooked = [], [], []
    for own in lists_given:
        history = History(params={"epochs": epochs, "batch_size": batch_size, "steps": plan.steps, "samples": n,
                                  "verbose": verbose})
        context = FitContext(trainer=trainer, epochs=epochs, initial_epoch=initial_epoch,
                             steps_per_epoch=plan.steps, batch_size=batch_size, history=history)
        lists.append(CallbackList([history, *own], context))
        histories.append(history)
        hooked.append([(c, c.step_hook(trainer.model)) for c in own])
    hooked = [[(c, h) for c, h in pairs if h is not None] for pairs in hooked]
    hooks = [tuple(h for _, h in pairs) for pairs in hooked]
    if any(h != hooks[0] for h in hooks):
        raise ValueError("callbacks: every member's callbacks must add the same step hooks (e.g. the same "
                         "GradientMonitor settings), since the members share one compiled step")
    spec = StepSpec(objective, hooks[0], augment, None)
    loop = PopulationLoop(trainer, members, spec, plan, jax.device_put((data.x, data.y, data.w)), lists,
                          [[c for c, _ in pairs] for pairs in hooked], validation, verbose)
    try:
        return loop.run(states), histories
    finally:
        for callback_list in lists:
            callback_list.close()


class PopulationLoop:
    """The epochs of a population fit: dispatch the vmapped chunks, then run each active member's callbacks."""

    def __init__(self, trainer: Any, members: Members, spec: StepSpec, plan: BatchPlan, data: Any,
                 lists: list[CallbackList], hooked: list[list[Callback]], validation: Any, verbose: int):
        self.trainer, self.members, self.spec, self.plan, self.data = trainer, members, spec, plan, data
        self.lists, self.hooked, self.verbose = lists, hooked, verbose
        self.count = len(members)
        self.values = jax.device_put(members.cost_values)
        self.validate = None if validation is None else self.validator(validation)
        self.batch_end = any(getattr(c.on_train_batch_end, "__func__", c.on_train_batch_end) not in _QUIET_BATCH_END
                             for callback_list in lists for c in callback_list.callbacks)

    def validator(self, data: inputs.Data) -> Any:
        """state -> every member's validation logs {name: (P,)} on the device, with the padded data placed once."""
        batches, batch = self.trainer._layout(data.size, None)
        padded = data.padded(batches * batch)
        device = jax.device_put((padded.x, padded.y, padded.w))
        run = pstep.evaluate(self.spec.objective, batches)
        count = np.float32(data.size)
        return lambda state: run(state, device, count, self.values)

    def run(self, states: list[TrainState]) -> list[TrainState]:
        contexts = [callback_list.context for callback_list in self.lists]
        everyone = list(range(self.count))
        for k in everyone:
            states[k] = self.lists[k].on_train_begin(states[k], {})
        active = [k for k in everyone if not contexts[k].stop_training]
        epoch, done = self.starting_point(contexts, active, states)
        shared = max((int(jax.device_get(states[k].step)) for k in active), default=0)
        views = MemberStates(states, jax.device_put(np.int32(shared)))
        seeds = np.asarray(self.members.seeds, np.uint32)
        weighting = self.spec.objective.log_weighting()
        while epoch < contexts[0].epochs and active:
            partials = {k: contexts[k].take_partial()[1] for k in active} if done else {}
            if not done:
                run_hook(self.lists, views, active, "on_epoch_begin", epoch, {})
            orders = pstep.epoch_orders(self.plan.n, self.plan.shuffle)(seeds, np.full(self.count, epoch, np.int32))
            state, own_steps = views.stacked()
            mask = jax.device_put(np.isin(np.arange(self.count), active))
            chunk_logs = self.partial_logs(partials) if done else []
            for chunk in self.plan.chunks():
                if chunk.start < done:
                    continue
                run_chunk = pstep.train_chunk(self.spec, self.plan, compiled.chunk_key(chunk), True)
                state, mask, own_steps, logs = run_chunk(state, mask, own_steps, self.data, orders,
                                                         np.int32(chunk.start), self.values)
                views.update(state, own_steps)
                records = logs.pop("hooks")
                chunk_logs.append(logs)
                self.deliver(records, active)
                if self.batch_end:
                    member_logs = pstep.unstack(jax.tree_util.tree_map(lambda a: a.swapaxes(0, 1), logs), self.count)
                    interrupted = None
                    for k in active:
                        try:
                            views.replace(k, self.lists[k].on_train_batch_end(chunk.steps, views.view(k), member_logs[k]))
                        except TrainingInterrupted as err:
                            interrupted = interrupted or err
                    if interrupted is not None:
                        raise interrupted
                    state, own_steps = views.stacked()
            done = 0
            host = self.read(views.state, mask, chunk_logs, weighting)
            for k in active:
                logs = {name: float(v[k]) for name, v in host["logs"].items()}
                if host["lr"] is not None:
                    logs["lr"] = float(host["lr"][k])
                logs.update(loss_scale.epoch_logs(host, k))
                if not host["active"][k]:
                    self.halt(contexts[k], k, epoch)
                views.replace(k, self.lists[k].on_epoch_end(epoch, views.view(k), logs))
            views.stacked()
            if self.verbose:
                self.progress(epoch, host, active)
            active = [k for k in active if not contexts[k].stop_training]
            epoch += 1
        results = []
        for k in everyone:
            member = views.view(k)
            results.append(self.lists[k].on_train_end(member, {}) or member)
        return results

    def starting_point(self, contexts: list[FitContext], active: list[int], states: list[TrainState]) -> tuple[int, int]:
        """(first epoch, steps of it already run) shared by the active members (restored backups must agree)."""
        if not active:
            return contexts[0].epochs, 0
        starts = {contexts[k].initial_epoch for k in active}
        partial = {(contexts[k].partial.steps if contexts[k].partial is not None else 0) for k in active}
        steps = {int(jax.device_get(states[k].step)) for k in active}
        if len(starts) > 1 or len(partial) > 1 or len(steps) > 1:
            raise ValueError("the population's members were restored from backups taken at different points "
                             f"(epochs {sorted(starts)}, steps {sorted(steps)}); members that still train must "
                             "resume together")
        return starts.pop(), partial.pop()

    def partial_logs(self, partials: dict[int, list[dict]]) -> list[dict]:
        """The chunk logs {name: (steps,)} of a restored partial epoch, per active member, as {name: (steps, P)}."""
        first = next(iter(partials.values()))
        stacked = []
        for j, chunk in enumerate(first):
            stacked.append({name: np.stack([np.asarray(partials[k][j][name]) if k in partials
                                            else np.zeros_like(np.asarray(value)) for k in range(self.count)], axis=1)
                            for name, value in chunk.items()})
        return stacked

    def deliver(self, records: Any, active: list[int]) -> None:
        """Each active member's slice of the step hooks' records, to its hooked callbacks."""
        if not any(self.hooked[k] for k in active):
            return
        moved = jax.tree_util.tree_map(lambda a: a.swapaxes(0, 1), records)
        per_member = pstep.unstack(moved, self.count)
        for k in active:
            for callback, record in zip(self.hooked[k], per_member[k]):
                callback.on_step_records(record)

    def read(self, state: TrainState, mask: Any, chunk_logs: list[dict], weighting: Any) -> dict:
        """Every member's epoch means (and validation), active flags, learning rates and loss scales, on the host."""
        means = pstep.epoch_means(weighting)(chunk_logs)
        if self.validate is not None:
            means.update({f"val_{k}": v for k, v in self.validate(state).items()})
        return jax.device_get({"logs": means, "active": mask, "lr": optim.learning_rate(state.opt_state),
                               **loss_scale.device_logs(state, chunk_logs)})

    def halt(self, context: FitContext, k: int, epoch: int) -> None:
        """Member k's loss or gradient was not finite in `epoch`: it stops, as a lone fit does."""
        reason = (f"Non-finite loss or gradient in epoch {epoch} (0-based) of population member {k}. Training of "
                  "this member stopped; its state is the one after its last finite step.")
        context.history.stop_reason = reason
        context.stop_training, context.nonfinite = True, reason
        warnings.warn(reason, RuntimeWarning, stacklevel=5)

    def progress(self, epoch: int, host: dict, active: list[int]) -> None:
        monitor = "val_loss" if "val_loss" in host["logs"] else "loss"
        values = np.asarray(host["logs"][monitor])
        best = min(active, key=lambda k: values[k] if np.isfinite(values[k]) else np.inf)
        print(f"Epoch {epoch + 1}/{self.lists[0].context.epochs} - {len(active)} of {self.count} members trained - "
              f"best {monitor} {values[best]:.4g} (member {best})", flush=True)
