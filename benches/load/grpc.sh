#!/usr/bin/env bash
# gRPC unary calls per second through Aegis against the same backend direct, in one run
# (issue 14): the fake h2c gRPC backend (`fake-backends --grpc`), Aegis with an h2c listener in
# front of it (`protocol: h2c`), h2load driving both in alternating rounds. Compare the ratio
# from one run, never absolute numbers across runs or machines.
#
# Usage: bash benches/load/grpc.sh    (needs h2load: Debian's nghttp2-client)
# Environment: ROUNDS=3 REQUESTS=30000 CLIENTS=10 STREAMS=10 BASE_PORT=19050
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3} REQUESTS=${REQUESTS:-30000} CLIENTS=${CLIENTS:-10} STREAMS=${STREAMS:-10}
BASE_PORT=${BASE_PORT:-19050}
backend_port=$((BASE_PORT + 1)) aegis_port=$((BASE_PORT + 2)) admin_port=$((BASE_PORT + 3))
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
cargo build --release >/dev/null && (cd fake-backends && cargo build --release >/dev/null)
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
target/release/fake-backends --grpc --count 1 --base-port "$backend_port" >"$dir/backend.log" &
echo $! >"$dir/backend.pid"
RUST_LOG=warn,aegis::access=off target/release/aegis -c "$dir/aegis.yml" >"$dir/aegis.log" 2>&1 &
echo $! >"$dir/aegis.pid"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null && break; sleep 0.1; done
rate() {
  h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" -t 1 -d "$dir/request.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$1/echo.Echo/Unary" | awk '/finished in/ {print $4}'
}
for round in $(seq "$ROUNDS"); do
  direct=$(rate "$backend_port"); through=$(rate "$aegis_port")
  echo "round $round: direct $direct req/s, through Aegis $through req/s," \
    "ratio $(awk -v a="$through" -v d="$direct" 'BEGIN {printf "%.2f", a / d}')"
done
