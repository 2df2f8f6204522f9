#!/bin/bash
# GPU smoke test of the batch-run features (about 3-5 minutes on one GPU; nothing depends on it):
#   1. bf16 vs float32 on the CNN (digits 8x8 images): test accuracy and steps/s of each
#   2. a sharded fit on every visible device: rows per device and the loss vs a 1-device fit
#   3. kill-and-resume: SIGTERM to `jdl train` mid-run, --resume, max |param difference| vs uninterrupted
#   4. the gradient monitor's overhead (benchmarks/monitor_overhead.py --quick)
# Usage: bash benchmarks/gpu_smoke.sh [OUT_DIR]   (run from the repository root; prints one figure per part)
set -euo pipefail
OUT=${1:-$(mktemp -d /tmp/jdl-gpu-smoke.XXXX)}
PY=${PYTHON:-python}
mkdir -p "$OUT"
echo "== jdl GPU smoke, results in $OUT"
$PY -m jdl.cli info | sed -n '1,12p'

echo "== 1. CNN: bfloat16 vs float32"
timeout 120 $PY - <<'PYEOF'
import time, numpy as np
from jdl import data, models, optim
from jdl.train import Trainer
d = data.load("digits", test_size=0.2, seed=0, as_images=True)
for precision in ("float32", "bfloat16"):
    trainer = Trainer(models.get("cnn")(outputs=10, padding="same"), "sparse_categorical_crossentropy", optim.adam(1e-3),
                      metrics=["accuracy"], precision=precision)
    trainer.fit(d.x_train, d.y_train, epochs=1, batch_size=64, verbose=0)  # compile
    start = time.perf_counter()
    state, history = trainer.fit(d.x_train, d.y_train, epochs=20, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    steps = 20 * -(-len(d.x_train) // 64)
    accuracy = trainer.evaluate(state, d.x_test, d.y_test)["accuracy"]
    print(f"  {precision:9s} test accuracy {accuracy:.4f}  {steps / seconds:8.1f} steps/s")
PYEOF

echo "== 2. sharded fit over every device"
timeout 90 $PY - <<'PYEOF'
import jax, numpy as np
from jdl import data, models, optim
from jdl.train import Trainer, sharding
d = data.load("digits", test_size=0.2, seed=0)
count = jax.device_count()
batch = 32 * count
placed = sharding.shard_rows(d.x_train, sharding.data_mesh())
rows = sorted({s.data.shape[0] for s in placed.addressable_shards})
trainer = Trainer(models.get("mlp")(hidden=(256,), outputs=10), "sparse_categorical_crossentropy", optim.sgd(0.1))
state, history = trainer.fit(d.x_train, d.y_train, epochs=3, batch_size=batch, verbose=0)
single = Trainer(models.get("mlp")(hidden=(256,), outputs=10), "sparse_categorical_crossentropy", optim.sgd(0.1))
single.mesh = None
_, reference = single.fit(d.x_train, d.y_train, epochs=3, batch_size=batch, verbose=0)
gap = max(abs(a - b) for a, b in zip(history.history["loss"], reference.history["loss"]))
print(f"  {count} devices, {rows} of {len(d.x_train)} training rows per device; "
      f"max |loss - 1-device loss| over 3 epochs = {gap:.2e}")
PYEOF

echo "== 3. kill-and-resume (SIGTERM mid-run, then --resume)"
CONFIG=examples/configs/digits_mlp.toml
SETS=(--set train.epochs=8 --set train.steps_per_execution=4 --set callbacks.early_stopping.patience=100)
timeout 120 $PY -m jdl.cli train "$CONFIG" "${SETS[@]}" --out "$OUT/whole" --verbose 0 > /dev/null
$PY -m jdl.cli train "$CONFIG" "${SETS[@]}" --out "$OUT/cut" --verbose 0 > /dev/null 2> "$OUT/cut.err" &
pid=$!
sleep 12
kill -TERM $pid || true
wait $pid || echo "  stopped with exit status $? ($(head -c 160 "$OUT/cut.err"))"
timeout 120 $PY -m jdl.cli train "$CONFIG" "${SETS[@]}" --out "$OUT/cut" --resume --verbose 0 > /dev/null
$PY - "$OUT" "$CONFIG" <<'PYEOF'
import sys, jax, numpy as np
from jdl import config as config_lib, runs
from jdl.train import checkpoint
out, path = sys.argv[1], sys.argv[2]
config = config_lib.load(path, ["train.epochs=8", "train.steps_per_execution=4", "callbacks.early_stopping.patience=100"])
trainer, d = runs.build(config)
template = trainer.init(d.x_train, config.seed)
a, _ = checkpoint.restore(f"{out}/whole/{runs.LATEST}", template)
b, _ = checkpoint.restore(f"{out}/cut/{runs.LATEST}", template)
gap = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
          for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)))
print(f"  max |resumed - uninterrupted| parameter = {gap:.3g} (0 is bit-identical)")
PYEOF

echo "== 4. gradient monitor overhead"
timeout 150 $PY benchmarks/monitor_overhead.py --quick | tail -n 8
echo "== done"
