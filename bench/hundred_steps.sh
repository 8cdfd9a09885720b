#!/usr/bin/env bash
# 100 independent `true` steps through `boxcar run`, against `seq 100 | xargs -P N -n 1 true`
# measured in the same run. Prints the median of RUNS runs of each, in seconds.
set -euo pipefail
BOXCAR=${BOXCAR:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/boxcar}
RUNS=${RUNS:-10}
EXECUTOR=${EXECUTOR:-host}
JOBS=${JOBS:-$(nproc)}

ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
{
  echo "version = 1"
  for i in $(seq 100); do printf '[[step]]\nname = "s%d"\nrun = "true"\n' "$i"; done
} > "$ws/.boxcar.toml"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

boxcar_times=() xargs_times=()
for _ in $(seq "$RUNS"); do
  t0=$(now); (cd "$ws" && "$BOXCAR" run --executor "$EXECUTOR" --jobs "$JOBS" >/dev/null); t1=$(now)
  boxcar_times+=($(( (t1 - t0) / 1000 )))
  t0=$(now); seq 100 | xargs -P "$JOBS" -n 1 true; t1=$(now)
  xargs_times+=($(( (t1 - t0) / 1000 )))
  rm -rf "$ws/.boxcar"
done
b=$(printf '%s\n' "${boxcar_times[@]}" | median)
x=$(printf '%s\n' "${xargs_times[@]}" | median)
awk -v b="$b" -v x="$x" -v j="$JOBS" -v e="$EXECUTOR" 'BEGIN {
  printf "100 x true, --jobs %d, executor %s: boxcar %.3f s, xargs -P %d %.3f s, ratio %.2f\n",
         j, e, b / 1e6, j, x / 1e6, b / x }'
