#!/usr/bin/env bash
# gRPC unary calls per second through Aegis against the same backend direct and through nginx,
# in one run (issues 14 and 19): the fake h2c gRPC backend (`fake-backends --grpc`), Aegis with an
# h2c listener in front of it (`protocol: h2c`, two worker threads), nginx with `grpc_pass` (two
# workers, when installed), h2load driving each in alternating rounds. Printed per round: calls/s
# and each proxy's CPU time per call (utime+stime from /proc). Compare ratios from one run, never
# absolute numbers across runs or machines.
#
# Usage: bash benches/load/grpc.sh    (needs h2load: Debian's nghttp2-client)
# Environment: ROUNDS=3 REQUESTS=30000 CLIENTS=10 STREAMS=10 BASE_PORT=19050 SKIP_BUILD=1
# AEGIS_BIN (default target/release/aegis), FAKE_BIN (default target/ci/fake-backends), as in
# common.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3} REQUESTS=${REQUESTS:-30000} CLIENTS=${CLIENTS:-10} STREAMS=${STREAMS:-10}
BASE_PORT=${BASE_PORT:-19050}
AEGIS_BIN=${AEGIS_BIN:-target/release/aegis} FAKE_BIN=${FAKE_BIN:-target/ci/fake-backends}
backend_port=$((BASE_PORT + 1)) aegis_port=$((BASE_PORT + 2)) admin_port=$((BASE_PORT + 3))
nginx_port=$((BASE_PORT + 4))
NGINX=$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
# Aegis with the profile users get (`release`), the fake backend with the test suite's (`ci`).
if [[ -z "${SKIP_BUILD:-}" ]]; then
  cargo build --release --quiet -p aegis --bin aegis
  cargo build --profile ci --quiet -p fake-backends --bin fake-backends
fi
dir=$(mktemp -d)
trap 'kill $(cat "$dir"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
printf '\x00\x00\x00\x00\x05hello' >"$dir/request.bin"   # one gRPC message, "hello"
cat >"$dir/aegis.yml" <<YAML
server: {threads: 2, pid_file: $dir/aegis.pid.file, upgrade_sock: $dir/upgrade.sock}
listeners: [{address: "127.0.0.1:$aegis_port", h2c: true}]
backends: [{url: "http://127.0.0.1:$backend_port", protocol: h2c}]
rate_limit: {requests_per_second: 1000000, burst: 1000000}
adaptive: {enabled: false, max_rate: 2000000}
admin: {address: "127.0.0.1:$admin_port"}
logging: {level: warn}
tui: {enabled: false}
development: {allow_loopback_backends: true}
YAML
"$FAKE_BIN" --grpc --count 1 --base-port "$backend_port" >"$dir/backend.log" &
echo $! >"$dir/backend.pid"
RUST_LOG=warn,aegis::access=off "$AEGIS_BIN" -c "$dir/aegis.yml" >"$dir/aegis.log" 2>&1 &
echo $! >"$dir/aegis.pid"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null && break; sleep 0.1; done
if [[ -n "$NGINX" ]]; then
  mkdir -p "$dir/nginx" && chmod 755 "$dir"
  cat >"$dir/nginx/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  upstream grpc_backend { server 127.0.0.1:$backend_port; keepalive 32; }
  server {
    listen 127.0.0.1:$nginx_port http2;
    location / { grpc_pass grpc://grpc_backend; }
  }
}
NGINX
  "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/nginx/stdout" 2>&1 &
  echo $! >"$dir/nginx.pid"
  for _ in $(seq 50); do [[ -s "$dir/nginx/nginx.pid" ]] && break; sleep 0.1; done
fi
# utime+stime in clock ticks of a process and its children (nginx's workers).
ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
rate() {
  h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" -t 1 -d "$dir/request.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$1/echo.Echo/Unary" | awk '/finished in/ {print $4} /^requests:/ {ok = $8} END {print ok}'
}
# "calls/s µs-of-proxy-CPU-per-call" for one h2load run through PORT, the proxy being PID.
measure() {
  local before after out
  before=$(ticks "$2")
  out=$(rate "$1")
  after=$(ticks "$2")
  echo "$out" | awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$REQUESTS" \
    'NR == 1 { r = $1 } END { printf "%.0f %.1f\n", r, t / hz * 1e6 / n }'
}
for round in $(seq "$ROUNDS"); do
  direct=$(rate "$backend_port" | head -1)
  read -r through aegis_cpu < <(measure "$aegis_port" "$(cat "$dir/aegis.pid")")
  line="round $round: direct $direct calls/s; Aegis $through calls/s (ratio $(awk -v a="$through" -v d="$direct" 'BEGIN {printf "%.2f", a / d}')), $aegis_cpu µs CPU/call"
  if [[ -n "$NGINX" ]]; then
    read -r via_nginx nginx_cpu < <(measure "$nginx_port" "$(cat "$dir/nginx.pid")")
    line+="; nginx $via_nginx calls/s, $nginx_cpu µs CPU/call; Aegis/nginx CPU per call $(awk -v a="$aegis_cpu" -v b="$nginx_cpu" 'BEGIN {printf "%.2f", a / b}')"
  fi
  echo "$line"
done
