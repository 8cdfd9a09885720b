#!/usr/bin/env bash
# Whole-process sandbox start-up, side by side in one run (hyperfine): boxcar running a one-step
# `true` pipeline in a native sandbox, `runc run` and `bwrap --unshare-all` of `true` on a busybox
# root, and a bare `true` as the floor. boxcar's step sees the host's system directories
# (image = "host"), the others a busybox root: each tool's usual way of starting one command
# in a fresh container.
set -euo pipefail
BOXCAR=${BOXCAR:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/boxcar}
RUNS=${RUNS:-30}

work=$(mktemp -d)
trap 'runc delete -f bench-true >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# A busybox root for runc and bwrap.
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for t in sh true; do ln -s busybox "$work/bundle/rootfs/bin/$t"; done
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)

# A one-step pipeline for boxcar.
mkdir -p "$work/ws"
printf 'version = 1\n[[step]]\nname = "t"\nrun = "true"\n' > "$work/ws/.boxcar.toml"

hyperfine --runs "$RUNS" --warmup 3 -N --export-markdown "$work/results.md" \
  -n 'true (bare)' '/bin/true' \
  -n 'boxcar run (native sandbox)' "$BOXCAR run --quiet --workspace $work/ws" \
  -n 'bwrap --unshare-all' "bwrap --unshare-all --ro-bind $work/bundle/rootfs / --proc /proc --dev /dev /bin/true" \
  -n 'runc run' "runc run --bundle $work/bundle bench-true" >&2
cat "$work/results.md"
