#!/usr/bin/env bash
# Issue 14: restoring a 1 GiB [[step.cache]] (20,000 files of 4 KiB and four of 236 MiB) through
# `boxcar run` (native executor: the entry is mounted as a lower layer of /workspace) beside
# `tar -x` of the same files into a fresh directory, in one run of this script. The restore is
# the step's duration (taken from before its caches are looked up to its end) minus that of a
# step without a cache in the same run; tar -x is timed alone, then `sync`ed apart. Medians of
# RUNS. Warm page cache for both. Needs root (the native executor).
set -euo pipefail
BOXCAR=${BOXCAR:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/boxcar}
RUNS=${RUNS:-5}

tmp=$(mktemp -d /var/tmp/boxcar-cache-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ws=$tmp/repo
mkdir -p "$ws"
cat > "$ws/.boxcar.toml" <<'TOML'
version = 1
[[step]]
name = "restore"
run = """
if [ ! -e deps/big3 ]; then
  mkdir -p deps/small
  head -c 81920000 /dev/urandom | split -b 4096 -a 5 - deps/small/f
  for b in 0 1 2 3; do head -c 247463936 /dev/urandom > deps/big$b; done
fi
"""
[[step.cache]]
key = "deps-1"
paths = ["deps"]

[[step]]
name = "plain"
run = "true"
TOML
export XDG_CACHE_HOME=$tmp/xdg
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
duration() { grep '"event":"step_finished"' | grep "\"step\":\"$1\"" | sed 's/.*"duration_ms":\([0-9]*\).*/\1/'; }
now() { date +%s%N; }

echo "saving the entry (first run)..." >&2
(cd "$ws" && "$BOXCAR" run --json --jobs 1 --executor native > "$tmp/first.json")
grep -q 'saved (' "$tmp/first.json" || { echo "the first run saved nothing:"; cat "$tmp/first.json"; exit 1; }
entry=$(dirname "$(find "$XDG_CACHE_HOME/boxcar/caches" -name key -path '*/entry/key')")
size=$(du -sb "$entry/workspace" | cut -f1)
tar -C "$entry/workspace" -cf "$tmp/deps.tar" deps

restore=() plain=() untar=()
for _ in $(seq "$RUNS"); do
  (cd "$ws" && "$BOXCAR" run --json --jobs 1 --executor native > "$tmp/run.json")
  grep -q 'restored (exact)' "$tmp/run.json" || { echo "not restored:"; cat "$tmp/run.json"; exit 1; }
  restore+=("$(duration restore < "$tmp/run.json")")
  plain+=("$(duration plain < "$tmp/run.json")")
  rm -rf "$ws/.boxcar"
  mkdir "$tmp/x"; sync
  t0=$(now); tar -C "$tmp/x" -xf "$tmp/deps.tar"; t1=$(now)
  untar+=($(( (t1 - t0) / 1000000 )))
  rm -rf "$tmp/x"
done
r=$(printf '%s\n' "${restore[@]}" | median)
p=$(printf '%s\n' "${plain[@]}" | median)
u=$(printf '%s\n' "${untar[@]}" | median)
echo "entry: $(( size / 1048576 )) MiB in $(find "$entry/workspace" -type f | wc -l) files"
echo "step restoring it: ${r} ms; step without a cache: ${p} ms; restore cost: $(( r - p )) ms"
echo "tar -x of the same files: ${u} ms"
