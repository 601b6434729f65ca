#!/bin/sh
# A Slurm job array that splits one sweep into 4 shards: one task per shard, each running
# `invk-run --shard auto`, which reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and
# SLURM_ARRAY_TASK_MIN (the array must be a range, such as 0-3 or 1-4). Every task writes into
# the same shared folder (docs/scale.md).
#
#   sbatch examples/scale/slurm-array.sh
#
# To rerun shard 2 alone after it died, run `invk-run ... --shard 2/4 jobs/hue-grid.yaml` in a
# job of its own: a lone `sbatch --array=2` task is an array of one task
# (SLURM_ARRAY_TASK_COUNT=1), and the output folder refuses it (exit 2) instead of running the
# whole sweep.
#SBATCH --job-name=hue-grid
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --output=logs/hue-grid-%a.log

set -eu
cd "${SLURM_SUBMIT_DIR:-.}"
# Each task runs its own InvokeAI server on its GPU node, then its shard of the sweep.
invokeai-web --root "$TMPDIR/invokeai" &
server=$!
trap 'kill $server' EXIT
until curl -sf http://127.0.0.1:9090/api/v1/app/version >/dev/null; do sleep 2; done
invk-run --server http://127.0.0.1:9090 --shard auto jobs/hue-grid.yaml
