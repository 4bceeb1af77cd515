#!/usr/bin/env bash
# Where the instructions go: Aegis and the bare Pingora proxy under `valgrind --tool=callgrind`
# over exactly the same fixed number of keep-alive requests (repeatable instruction counts, unlike
# timings). Counters are zeroed after a warm-up and dumped right after the last request, so only
# request handling is counted (plus whatever background ticks fall in that window).
#
# Usage: bash benches/load/callgrind.sh
# Environment: REQUESTS=20000 CONNECTIONS=4 SYSTEMS="aegis bare" KEEP_TMP=1 (keep the dumps),
#   BARE_ARGS="--no-work-stealing" (extra bare-proxy flags), AEGIS_BIN=... (another build).
# Prints, per system, instructions per request and the exclusive cost grouped into Pingora core /
# Aegis layers / logging / formatting / allocation / tokio / libc / other, the top functions, and
# the inclusive cost of each proxy phase (benches/load/callgrind_groups.py reads the dumps).
# Kernel time (syscalls) is not counted by callgrind: see the CPU µs/request of run.sh for that.
# Needs valgrind (apt-get install valgrind). Bounded by the request count; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQUESTS=${REQUESTS:-20000}
CONNECTIONS=${CONNECTIONS:-4}
SYSTEMS=${SYSTEMS:-"aegis bare"}
read -r -a BARE_EXTRA <<<"${BARE_ARGS:-}"
TOP=${TOP:-30}
CLIENTS="python3 $ROOT/benches/load/clients.py"

command -v valgrind >/dev/null || die "valgrind is required (apt-get install valgrind)"
ensure_tools
build_binaries
start_backend

# Valgrind runs everything on one core anyway; no pinning needed here.
profile() {
    local system=$1 port pid out=$TMP/callgrind.$1
    case $system in
    aegis)
        port=$AEGIS_PORT
        write_aegis_config "$TMP/aegis.yml" "$port" $((port + 100)) 1 "$TMP/aegis.log"
        start_pinned "$PROXY_CPUS" "$TMP/aegis.log" valgrind --tool=callgrind \
            --callgrind-out-file="$out.%p" "$AEGIS_BIN" -c "$TMP/aegis.yml" --headless
        ;;
    bare)
        port=$BARE_PORT
        start_pinned "$PROXY_CPUS" "$TMP/bare.log" valgrind --tool=callgrind \
            --callgrind-out-file="$out.%p" "$BARE_BIN" --listen "127.0.0.1:$BARE_PORT" \
            --upstream "127.0.0.1:$BACKEND_PORT" --threads 1 "${BARE_EXTRA[@]}"
        ;;
    *) die "unknown system '$system' (aegis, bare)" ;;
    esac
    pid=$LAST_PID
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") == 200 ]] && break
        sleep 0.2
    done
    $CLIENTS requests "$port" 500 "$CONNECTIONS" >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    log "$system: $REQUESTS requests under callgrind"
    $CLIENTS requests "$port" "$REQUESTS" "$CONNECTIONS" >&2
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill -TERM "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    # The first dump (".1") is the one taken right after the requests.
    DUMP[$system]=$(ls "$out.$pid".1 2>/dev/null || ls "$out.$pid"* | head -1)
}

declare -A DUMP
for system in $SYSTEMS; do
    profile "$system"
done

for system in $SYSTEMS; do
    echo
    echo "== $system: $REQUESTS requests"
    python3 "$ROOT/benches/load/callgrind_groups.py" "${DUMP[$system]}" "$REQUESTS" "$TOP" \
        'AegisProxy as pingora_proxy::proxy_trait::ProxyHttp>::|ServerApp>::process_new::|HttpServerApp>::process_new_http::|<log::__private_api::GlobalLogger'
done
