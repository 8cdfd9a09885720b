#!/usr/bin/env bash
# Preview proxy overhead (wrk): the same python3 http.server, in the same run, once straight at
# its port and once through `boxcar run`'s preview proxy (Host form). The host executor puts the
# server on the host's loopback so both are reachable; with EXECUTOR=native only the proxied
# figure is measured (the server's port lives in the job's network namespace).
set -euo pipefail
BOXCAR=${BOXCAR:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/boxcar}
EXECUTOR=${EXECUTOR:-host}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
PORT=${PORT:-18690}
LISTEN_PORT=${LISTEN_PORT:-18691}
BACKLOG=${BACKLOG:-128}   # the server's listen backlog; python's own default is 5

work=$(mktemp -d)
boxcar_pid=
cleanup() {
  if [ -n "$boxcar_pid" ]; then kill -INT "$boxcar_pid" 2>/dev/null || true; wait "$boxcar_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/ws/site"
head -c 4096 /dev/zero | tr '\0' 'x' > "$work/ws/site/index.html"
# python3 -m http.server, with a listen backlog of 128 instead of 5 by default: with 5, wrk's
# connections overflow the accept queue and the kernel's one-second SYN retry dominates both
# figures (BACKLOG=5 measures exactly that case).
cat > "$work/ws/serve.py" <<'PY'
import http.server, sys
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = int(sys.argv[2])
Server(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
PY
cat > "$work/ws/.boxcar.toml" <<TOML
version = 1
[[step]]
name = "web"
run = "cd site && exec python3 ../serve.py $PORT $BACKLOG"
[[step.expose]]
port = $PORT
name = "web"
TOML

(cd "$work/ws" && exec "$BOXCAR" run --json --executor "$EXECUTOR" \
  --preview-listen "127.0.0.1:$LISTEN_PORT" > "$work/events" 2> "$work/stderr") &
boxcar_pid=$!
for _ in $(seq 1 300); do
  grep -q '"event":"preview".*"until":"' "$work/events" 2>/dev/null && break
  sleep 0.1
done
url=$(grep '"event":"preview".*"until":"' "$work/events" | head -1 | sed 's/.*"url":"\([^"]*\)".*/\1/')
[ -n "$url" ] || { echo "no preview URL" >&2; cat "$work/events" "$work/stderr" >&2; exit 1; }
host=$(echo "$url" | sed 's|http://\([^/]*\)/|\1|')

# wrk's summary: requests/s and the 99th percentile latency.
measure() {
  local name=$1; shift
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  echo "$name|$rps|$p99"
  echo "$out" >&2
}

echo "| target | requests/s | p99 latency |"
echo "|---|---|---|"
direct=""
if [ "$EXECUTOR" = host ]; then
  direct=$(measure "direct 127.0.0.1:$PORT" "http://127.0.0.1:$PORT/index.html")
  echo "| ${direct//|/ | } |" | sed 's/^| \(.*\) |$/| \1 |/'
fi
proxied=$(measure "preview proxy (Host form)" -H "Host: $host" "http://127.0.0.1:$LISTEN_PORT/index.html")
echo "| ${proxied//|/ | } |"
if [ -n "$direct" ]; then
  awk -F'|' -v d="$direct" -v p="$proxied" 'BEGIN {
    split(d, a, "|"); split(p, b, "|");
    printf "\nproxied / direct requests/s: %.2f\n", b[2] / a[2] }'
fi
