#!/bin/bash
# A multi-host `jdl train` under SLURM: one task (JAX process) per node, every GPU of the node to it.
#   sbatch examples/slurm_multihost.sh examples/configs/digits_mlp.toml
# JAX reads SLURM's variables (SLURM_JOB_NODELIST, SLURM_NTASKS, SLURM_PROCID): process 0 is the first
# node, which serves the coordinator; no --coordinator/--num-processes/--process-id needed. The run
# directory must be on a file system every node sees. After a preemption or a lost node, submit the
# same script again with RESUME=1 (sbatch --export=ALL,RESUME=1 ...) to continue from the checkpoint.
#SBATCH --job-name=jdl-multihost
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --signal=TERM@120

set -euo pipefail
CONFIG=${1:-examples/configs/digits_mlp.toml}
OUT=${OUT:-$PWD/runs/$(basename "$CONFIG" .toml)_multihost}
RESUME_FLAG=${RESUME:+--resume}

# Explicit form, equivalent to what JAX detects from SLURM (useful outside SLURM, e.g. with ssh):
#   jdl train "$CONFIG" --out "$OUT" --coordinator "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1):12345" \
#     --num-processes "$SLURM_NTASKS" --process-id "$SLURM_PROCID"
srun --kill-on-bad-exit=1 jdl train "$CONFIG" --out "$OUT" $RESUME_FLAG
