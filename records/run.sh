#!/usr/bin/env bash
# The record: every experiment in full mode over seeds 0, 1, 2, into records/NAME/.
# Usage: bash records/run.sh [NAME ...]   (default: all, cheapest first; each resumes per part)
# Run it on an otherwise idle machine: the wall times it records are those of two cores.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
OUT=${RECORDS:-records}   # where the records go (default: this checkout's records/)
declare -A COMMANDS=(
  [yin2019-toy]="yin2019-toy"
  [vq-toy]="vq-toy"
  [vq-ablation]="vq-ablation"
  [vq-ablation-vqtorch]="vq-ablation --set protocol=vqtorch"
  [quant-act]="quant-act"
  [vq-bottleneck]="vq-bottleneck --set sizes=256,1024"
)
# controlled experiments: stevq's protocol with one of the authors' choices switched on, the published rows
PUBLISHED="--set rows=baseline,kmeans,kmeans+sync,kmeans+sync+affine"
COMMANDS[vq-ablation-farthest]="vq-ablation --set kmeans_seeding=farthest --set kmeans_steps=100 $PUBLISHED"
COMMANDS[vq-ablation-fresh]="vq-ablation --set batches=fresh-shuffle $PUBLISHED"
for surrogate in identity relu clipped_relu leaky_clipped_relu tanh approx_sign; do
  COMMANDS[ste-check-$surrogate]="ste-check --set ste=$surrogate"
done
ORDER=(yin2019-toy vq-toy vq-ablation vq-ablation-vqtorch quant-act vq-bottleneck vq-ablation-farthest vq-ablation-fresh
       ste-check-identity ste-check-relu ste-check-clipped_relu ste-check-leaky_clipped_relu ste-check-tanh
       ste-check-approx_sign)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
for name in "${names[@]}"; do
  [ -n "${COMMANDS[$name]:-}" ] || { echo "error: unknown record $name; known: ${ORDER[*]}" >&2; exit 2; }
  echo "== $name: python -m stevq run ${COMMANDS[$name]} --seeds 0,1,2 --jobs $JOBS --out $OUT/$name ($(date -u +%H:%M:%S))"
  # shellcheck disable=SC2086
  python -m stevq run ${COMMANDS[$name]} --seeds 0,1,2 --jobs "$JOBS" --out "$OUT/$name" --no-progress \
    > "$OUT/$name.log" 2>&1
  echo "   exit $? ($(date -u +%H:%M:%S))"
done
