"""The epoch loop of `Trainer.fit`: dispatch compiled chunks, read the logs once per epoch, run the callbacks.

The host blocks once per epoch (to read the epoch's logs for the callbacks); within an epoch the
chunks are dispatched back to back, each one `lax.scan` over its steps, with the permutation drawn
on the device. Where no callback keeps a reference to a state, each dispatch donates the previous
state's buffers to the next.

The non-finite guard costs nothing per step: the chunks run unguarded, each step only adding the
finiteness of its cost to an on-device halted flag, and each chunk its parameters' finiteness after
its last step (a non-finite gradient makes the parameters, and so the next cost, non-finite), which
the host reads with the epoch's logs. When it is set, the epoch is run again from a copy of its
starting state by the guarded chunks (compiled on first failure), which stop updating at the first
non-finite step; that state and those logs are the epoch's. Callbacks whose `on_train_batch_end` may replace the state make every epoch guarded.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import numpy as np

from jdl import optim
from jdl.data.batching import BatchPlan
from jdl.train import compiled, loss_scale, sharding
from jdl.train.callbacks.backup_and_restore import BackupAndRestore
from jdl.train.callbacks.base import Callback, CallbackList, FitContext
from jdl.train.callbacks.progress import ProgressBar
from jdl.train.objective import CostValues
from jdl.train.state import TrainState
from jdl.train.step import StepSpec


@dataclasses.dataclass
class EpochLoop:
    """Everything one fit's epochs share: the step, the batch plan, the on-device data and the callbacks.

    hooked: the callbacks whose step hooks are in spec.hooks, in the same order.
    evaluate: validation(state) -> {name: device scalar}, or None without validation data.
    """

    spec: StepSpec
    plan: BatchPlan
    data: tuple[Any, Any, Any]
    values: CostValues
    seed: int
    callbacks: CallbackList
    context: FitContext
    hooked: tuple[Any, ...] = ()
    evaluate: Any = None

    def run(self, state: TrainState) -> TrainState:
        """Train from context.initial_epoch until context.epochs or a stop; returns the final state."""
        context, history = self.context, self.context.history
        donate = not self.callbacks.holds_state
        seed = jax.device_put(np.uint32(self.seed))
        weighting = self.spec.objective.log_weighting()
        state = self.callbacks.on_train_begin(state, {})
        step = int(jax.device_get(state.step))
        epoch = context.initial_epoch
        guarded = self.always_guarded or replaces_batch_states(self.callbacks.callbacks)
        if epoch < context.epochs and not context.stop_training:
            self.precompile(state, seed, donate, guarded, weighting)
        while epoch < context.epochs and not context.stop_training:
            done, done_logs = context.take_partial()  # steps a mid-epoch checkpoint already ran, and their logs
            if done:
                step -= done
            else:
                state = self.callbacks.on_epoch_begin(epoch, state, {})
            order = self.epoch_order(seed, epoch)
            start = state if guarded or not donate else compiled.copy(state)
            state, halted, chunk_logs = self.epoch(state, order, donate, guarded, True, done, done_logs)
            host = self.read(state, halted, chunk_logs, weighting)
            if host["halted"] and not guarded:
                state, halted, chunk_logs = self.epoch(start, order, donate, True, False, done, done_logs)
                host = self.read(state, halted, chunk_logs, weighting)
            del start
            logs = {k: float(v) for k, v in host["logs"].items()}
            if host["lr"] is not None:
                logs["lr"] = float(host["lr"])
            logs.update(loss_scale.epoch_logs(host))
            if host["halted"]:
                history.stop_reason = self.nonfinite_report(state, epoch, step, host)
                warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=4)
                context.stop_training = True
                context.nonfinite = history.stop_reason
            step = int(host["step"])
            state = self.callbacks.on_epoch_end(epoch, state, logs)
            epoch += 1
        return self.callbacks.on_train_end(state, {})

    always_guarded = False  # a feed that cannot be read twice (an iterable) runs every epoch guarded
    compiles_ahead = True  # the in-memory chunks compile before the first step (see precompile)

    def epoch_order(self, seed: Any, epoch: int) -> Any:
        """The epoch's permutation of the training rows, on the devices (BatchPlan.order)."""
        return compiled.epoch_order(self.plan.n, self.plan.shuffle, self.spec.mesh)(seed, np.int32(epoch))

    def host_batch(self, epoch: int, batch: int) -> tuple[Any, Any, Any] | None:
        """(x, y, w) of batch `batch` of `epoch` as trained on (padding rows weight 0), or None if it is gone."""
        indices, mask = self.plan.batch(self.seed, epoch, batch)
        x, y, w = jax.tree_util.tree_map(lambda a: a[indices], self.data)
        return x, y, w * mask

    def precompile(self, state: TrainState, seed: Any, donate: bool, guarded: bool,
                   weighting: tuple[tuple[str, str], ...]) -> None:
        """Compile the programs of an epoch (its chunk shapes, permutation, start copy, means) concurrently.

        For the in-memory data of this loop; loops that feed batches from the host (jdl.train.streaming)
        compile on their first dispatch instead.
        """
        if not self.compiles_ahead:
            return
        order = compiled.epoch_order(self.plan.n, self.plan.shuffle, self.spec.mesh)
        halted = sharding.replicate(np.bool_(False), self.spec.mesh)
        shapes = sorted({compiled.chunk_key(c) for c in self.plan.chunks()}, key=lambda c: -c.steps * c.width)
        jobs = [(order, (seed, np.int32(0)))]
        for chunk in shapes:
            run_chunk = compiled.train_chunk(self.spec, self.plan, chunk, donate, guarded)
            jobs.append((run_chunk, lambda out: (state, halted, self.data, out[0], np.int32(0), self.values)))
        if donate and not guarded:
            jobs.append((compiled.copier(), (state,)))

        whole = sharding.replicated(self.spec.mesh)

        def chunk_logs(out: list) -> tuple:
            by_shape = {chunk: out[1 + i][2] for i, chunk in enumerate(shapes)}
            logs = [by_shape[compiled.chunk_key(c)] for c in self.plan.chunks()]
            placed = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=whole), logs)
            return ([{k: v for k, v in log.items() if k != "hooks"} for log in placed],)

        jobs.append((compiled.epoch_means(weighting), chunk_logs))
        compiled.concurrently(jobs)

    def epoch(self, state: TrainState, order: Any, donate: bool, guarded: bool, callbacks: bool,
              done: int = 0, done_logs: list[dict] = ()) -> tuple[TrainState, Any, list[dict]]:
        """Dispatch the epoch's chunks from step `done` on: (state, halted flag, every chunk's logs).

        done, done_logs: the steps a mid-epoch checkpoint already ran and their chunks' logs;
        callbacks: run the step hooks' and on_train_batch_end (not when an epoch is re-run guarded).
        """
        chunk_logs = list(done_logs)
        halted = sharding.replicate(np.bool_(any(np.any(c["nonfinite"]) for c in chunk_logs)), self.spec.mesh)
        for chunk in self.plan.chunks():
            if chunk.start < done:
                continue
            run_chunk = compiled.train_chunk(self.spec, self.plan, compiled.chunk_key(chunk), donate, guarded)
            state, halted, logs = run_chunk(state, halted, self.data, order, np.int32(chunk.start), self.values)
            state = self.dispatched(chunk, state, logs, chunk_logs, callbacks)
        return state, halted, chunk_logs

    def dispatched(self, chunk: Any, state: TrainState, logs: dict, chunk_logs: list[dict], callbacks: bool) -> TrainState:
        """After a chunk's dispatch: keep its logs, hand the step hooks their records, run on_train_batch_end."""
        records = logs.pop("hooks")
        chunk_logs.append(logs)
        if callbacks:
            for callback, record in zip(self.hooked, records):
                callback.on_step_records(record)
            state = self.callbacks.on_train_batch_end(chunk.steps, state, logs)
        return state

    def read(self, state: TrainState, halted: Any, chunk_logs: list[dict], weighting: tuple[tuple[str, str], ...]) -> dict:
        """The epoch's means (and validation), halted flag, step, learning rate, non-finite flags and loss scale, on the host."""
        epoch_logs = compiled.epoch_means(weighting)(chunk_logs)
        if self.evaluate is not None:
            epoch_logs.update({f"val_{k}": v for k, v in self.evaluate(state).items()})
        return jax.device_get({"logs": epoch_logs, "halted": halted, "step": state.step,
                               "lr": optim.learning_rate(state.opt_state),
                               "chunks": [c["nonfinite"] for c in chunk_logs],
                               **loss_scale.device_logs(state, chunk_logs)})

    def nonfinite_report(self, state: TrainState, epoch: int, start_step: int, host: dict) -> str:
        """Where the first non-finite loss or gradient appeared: epoch, step, batch and first layer."""
        flags = np.concatenate([np.asarray(c).reshape(-1) for c in host["chunks"]])
        batch = int(np.argmax(flags))
        step = start_step + batch
        recomputed = self.host_batch(epoch, batch)
        if recomputed is None:
            return (f"Non-finite loss or gradient at epoch {epoch} (0-based), global step {step}, batch {batch} of the "
                    "epoch (an iterable's batches are not kept, so it is not recomputed). Training stopped; the "
                    "returned state is the one after the last finite step.")
        x, y, w = recomputed
        loss, grads = compiled.cost_and_grad(self.spec.objective, self.spec.augment)(state, x, y, w, self.values,
                                                                                   state.examples)
        loss = float(loss)
        where = "the loss itself" if not np.isfinite(loss) else "no layer (the loss and gradients are finite when recomputed)"
        for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]:
            if not np.all(np.isfinite(np.asarray(leaf))):
                where = f"the gradient of {'/'.join(str(getattr(k, 'key', k)) for k in path)}"
                if not np.isfinite(loss):
                    where = f"the loss (value {loss}) and " + where
                break
        return (
            f"Non-finite loss or gradient at epoch {epoch} (0-based), global step {step}, batch {batch} of the epoch; "
            f"first non-finite: {where}. Training stopped; the returned state is the one after the last finite step."
        )


_QUIET_BATCH_END = (Callback.on_train_batch_end, ProgressBar.on_train_batch_end, BackupAndRestore.on_train_batch_end)


def replaces_batch_states(callbacks: Any) -> bool:
    """True when a callback's on_train_batch_end may return a new state (the epoch then cannot be re-run alone)."""
    return any(getattr(c.on_train_batch_end, "__func__", c.on_train_batch_end) not in _QUIET_BATCH_END
               for c in callbacks)
