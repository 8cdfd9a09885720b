#!/usr/bin/env bash
# Log capture of one step printing 1 GiB of `yes` (2-byte lines: the worst case) into its
# stored log, against `yes | head -c 1G | cat > file` in the same run. Reports MB/s and the
# peak RSS of boxcar (GNU time).
set -euo pipefail
BOXCAR=${BOXCAR:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/boxcar}
EXECUTOR=${EXECUTOR:-host}
SIZE=${SIZE:-1G}
bytes=$(numfmt --from=iec "$SIZE")

ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
printf 'version = 1\n[[step]]\nname = "yes"\nrun = "yes | head -c %s"\n' "$SIZE" > "$ws/.boxcar.toml"

now() { date +%s%N; }
t0=$(now); { yes || true; } | head -c "$SIZE" | cat > "$ws/baseline"; t1=$(now)
base=$(( t1 - t0 )); rm -f "$ws/baseline"

for mode in quiet print; do
  flags=(--executor "$EXECUTOR" --log-limit 2GiB)
  [ "$mode" = quiet ] && flags+=(--quiet)
  t0=$(now)
  (cd "$ws" && /usr/bin/time -f '%M' -o "$ws/rss" "$BOXCAR" run "${flags[@]}" > /dev/null)
  t1=$(now)
  log=$(ls "$ws"/.boxcar/runs/*/logs/yes.log)
  stored=$(stat -c %s "$log")
  [ "$stored" -eq "$bytes" ] || { echo "stored log has $stored bytes, expected $bytes" >&2; exit 1; }
  awk -v t=$(( t1 - t0 )) -v base="$base" -v n="$bytes" -v rss="$(cat "$ws/rss")" -v m="$mode" 'BEGIN {
    printf "1 GiB of yes (%s, stdout to /dev/null): boxcar %.0f MB/s, peak RSS %.1f MiB; cat > file %.0f MB/s; ratio %.2f\n",
           m, n / (t / 1e9) / 1e6, rss / 1024, n / (base / 1e9) / 1e6, base / t }'
  rm -rf "$ws/.boxcar"
done
