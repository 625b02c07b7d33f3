#!/bin/bash
# The maintainability check: the README's CI run on fresh clones, N times in a row
# (default 3), with two CPU-bound processes beside it. Prints one line per run.
#   bash scripts/loaded_runs.sh [N]
set -u
runs=${1:-3}
repo=$(git rev-parse --show-toplevel)
python3 -c "while True: pass" & hog1=$!
python3 -c "while True: pass" & hog2=$!
trap 'kill $hog1 $hog2 2>/dev/null' EXIT
for i in $(seq 1 "$runs"); do
  clone=$(mktemp -d /tmp/confab-loaded-XXXX)
  git clone -q "$repo" "$clone"
  start=$(date +%s)
  (cd "$clone" && CI=true bash .ci/run > "$clone.log" 2>&1)
  echo "run $i: exit $? in $(( $(date +%s) - start )) s, log $clone.log: $(grep -E '[0-9]+ (passed|failed)' "$clone.log" | tail -1)"
done
