#!/usr/bin/env bash
# HTTP/2 load: h2load (Debian's nghttp2-client) against Aegis over h2c, h2 over TLS and HTTP/1.1,
# and against the backend directly over HTTP/1.1: requests per second and Aegis's CPU per request.
# Usage: bash benches/load/h2load.sh   (REQUESTS, CONNECTIONS, STREAMS, ROUNDS override)
#
# The backend (nginx, a static answer) and h2load share one core, Aegis has the other; Aegis
# runs with every layer on (benchmark config of common.sh), one plain listener with h2c on and one
# TLS listener offering h2 (a self-signed certificate made here with openssl).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQUESTS=${REQUESTS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
STREAMS=${STREAMS:-10}
ROUNDS=${ROUNDS:-3}

ensure_tools
command -v h2load >/dev/null || die "h2load is required (apt-get install nghttp2-client)"
build_binaries
start_backend
log "backend: $BACKEND_KIND on 127.0.0.1:$BACKEND_PORT"
TLS_PORT=$((AEGIS_PORT + 5))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
AEGIS_EXTRA_YAML="listeners:
  - address: 127.0.0.1:$AEGIS_PORT
    h2c: true
  - address: 127.0.0.1:$TLS_PORT
    tls:
      certificates:
        - cert: $TMP/tls.crt
          key: $TMP/tls.key
    http2: true" start_aegis 1 "$AEGIS_PORT"

# One h2load run; prints "requests/s cpu_us_per_request" (CPU of $2's process tree, or 0).
measure() {
    local url=$1 pid=$2
    shift 2
    local before="0 0" after="0 0" out rps
    [[ $pid == 0 ]] || before=$(cpu_ticks "$pid")
    out=$(taskset -c "$LOAD_CPUS" h2load -n "$REQUESTS" -c "$CONNECTIONS" "$@" "$url" 2>&1)
    [[ $pid == 0 ]] || after=$(cpu_ticks "$pid")
    grep -q "succeeded, 0 errored" <<<"$out" || grep -q "$REQUESTS succeeded" <<<"$out" ||
        die "h2load failed: $(grep -E 'requests:' <<<"$out")"
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
    read -r u0 s0 <<<"$before"
    read -r u1 s1 <<<"$after"
    awk -v r="$rps" -v t=$((u1 + s1 - u0 - s0)) -v hz="$CLK_TCK" -v n="$REQUESTS" \
        'BEGIN { printf "%.0f %.1f\n", r, (n > 0 && t > 0) ? t / hz * 1e6 / n : 0 }'
}

printf '%-34s %12s %16s\n' "run" "requests/s" "aegis CPU us/req"
for round in $(seq "$ROUNDS"); do
    read -r rps _ <<<"$(measure "http://127.0.0.1:$BACKEND_PORT/" 0 --h1)"
    printf '%-34s %12s %16s\n' "$round backend direct, HTTP/1.1" "$rps" "-"
    read -r rps cpu <<<"$(measure "http://127.0.0.1:$AEGIS_PORT/" "$AEGIS_PID" --h1)"
    printf '%-34s %12s %16s\n' "$round aegis, HTTP/1.1" "$rps" "$cpu"
    read -r rps cpu <<<"$(measure "http://127.0.0.1:$AEGIS_PORT/" "$AEGIS_PID" -m "$STREAMS")"
    printf '%-34s %12s %16s\n' "$round aegis, h2c ($STREAMS streams/conn)" "$rps" "$cpu"
    read -r rps cpu <<<"$(measure "https://127.0.0.1:$TLS_PORT/" "$AEGIS_PID" -m "$STREAMS")"
    printf '%-34s %12s %16s\n' "$round aegis, h2 over TLS" "$rps" "$cpu"
    read -r rps cpu <<<"$(measure "https://127.0.0.1:$TLS_PORT/" "$AEGIS_PID" --h1)"
    printf '%-34s %12s %16s\n' "$round aegis, HTTP/1.1 over TLS" "$rps" "$cpu"
done
