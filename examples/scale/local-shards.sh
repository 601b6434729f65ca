#!/bin/sh
# N runner processes on one host, one per shard, writing into one output folder at once
# (docs/scale.md). Each takes the same servers; the union of the shards is the whole sweep.
# A shard that dies is started again alone with the same line: it resumes from its own journal.
#
#   sh examples/scale/local-shards.sh
set -eu
N=4
k=0
while [ "$k" -lt "$N" ]; do
  invk-run --quiet --server http://127.0.0.1:9090 --server http://127.0.0.1:9091 --shard "$k/$N" jobs/hue-grid.yaml &
  k=$((k + 1))
done
wait
invk-run status out/hue-grid
