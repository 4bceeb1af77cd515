#!/usr/bin/env bash
# Where the instructions go: Aegis and the bare Pingora proxy under `valgrind --tool=callgrind`
# over exactly the same fixed number of keep-alive requests (repeatable instruction counts, unlike
# timings). Counters are zeroed after a warm-up and dumped right after the last request, so only
# request handling is counted (plus whatever background ticks fall in that window).
#
# Usage: bash benches/load/callgrind.sh
# Environment: REQUESTS=20000 CONNECTIONS=4 SYSTEMS="aegis bare" KEEP_TMP=1 (keep the dumps).
# Prints, per system, instructions per request and the exclusive cost grouped into Pingora core /
# Aegis layers / logging / formatting / allocation / tokio / libc / other, then the top functions.
# Needs valgrind (apt-get install valgrind). Bounded by the request count; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQUESTS=${REQUESTS:-20000}
CONNECTIONS=${CONNECTIONS:-4}
SYSTEMS=${SYSTEMS:-"aegis bare"}
TOP=${TOP:-25}
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
        write_aegis_config 1
        port=$AEGIS_PORT
        start_pinned "$PROXY_CPUS" "$TMP/aegis.log" valgrind --tool=callgrind \
            --callgrind-out-file="$out.%p" "$AEGIS_BIN" -c "$TMP/aegis.yml" --headless
        ;;
    bare)
        port=$BARE_PORT
        start_pinned "$PROXY_CPUS" "$TMP/bare.log" valgrind --tool=callgrind \
            --callgrind-out-file="$out.%p" "$BARE_BIN" --listen "127.0.0.1:$BARE_PORT" \
            --upstream "127.0.0.1:$BACKEND_PORT" --threads 1
        ;;
    *) die "unknown system '$system' (aegis, bare)" ;;
    esac
    pid=$LAST_PID
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") == 200 ]] && break
        sleep 0.2
    done
    $CLIENTS requests "$port" 500 "$CONNECTIONS" >/dev/null
    callgrind_control --zero "$pid" >/dev/null
    log "$system: $REQUESTS requests under callgrind"
    $CLIENTS requests "$port" "$REQUESTS" "$CONNECTIONS" >&2
    callgrind_control --dump "$pid" >/dev/null
    kill -TERM "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    # The first dump (".1") is the one taken right after the requests.
    DUMP[$system]=$(ls "$out.$pid".1 2>/dev/null || ls "$out.$pid"* | head -1)
}

# Exclusive instructions per function: "count<TAB>function".
functions() {
    callgrind_annotate --inclusive=no --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9,]+ / && /:/ {
            n = $1; gsub(",", "", n)
            sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "")
            sub(/^[^:]*:/, "")
            print n "\t" $0 }'
}

# The group a function belongs to, by its (demangled) path.
group() {
    awk -F'\t' '{
        f = $2; g = "other (std, core, uuid, rand, …)"
        if (f ~ /(^|[^a-z_])(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|_int_realloc|malloc_consolidate|unlink_chunk|tcache|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|alloc::raw_vec|alloc::alloc)/) g = "allocation (malloc/free)"
        else if (f ~ /^(aegis::logging|log::|env_logger|serde_json|jiff|humantime|env_filter)/ || f ~ /aegis::proxy::AegisProxy.*logging/) g = "logging (access log)"
        else if (f ~ /^(core::fmt|alloc::fmt|<.*as core::fmt::)/) g = "formatting (core::fmt)"
        else if (f ~ /^(tokio|mio)::|<tokio::|<mio::/) g = "tokio / mio"
        else if (f ~ /aegis::|<aegis::/) g = "Aegis layers"
        else if (f ~ /pingora|httparse|^<?http::|^<?bytes::|^<?h2::|^<?http_body/) g = "Pingora core (+ http, httparse, bytes)"
        else if (f ~ /^(mem(cpy|move|set|cmp|chr)|__mem|__libc|__GI|epoll|send|recv|read|write|clock_gettime|__vdso|syscall|pthread|__lll|__strlen|strlen|__x86)/) g = "libc (memcpy, syscall wrappers, vDSO)"
        sum[g] += $1; total += $1
    } END {
        for (g in sum) printf "%14d  %5.1f%%  %s\n", sum[g], 100 * sum[g] / total, g
    }' | sort -rn
}

declare -A DUMP
for system in $SYSTEMS; do
    profile "$system"
done

for system in $SYSTEMS; do
    dump=${DUMP[$system]}
    total=$(functions "$dump" | awk -F'\t' '{ s += $1 } END { print s }')
    echo
    echo "== $system: $REQUESTS requests, $total instructions, $((total / REQUESTS)) per request"
    echo "-- by group (exclusive Ir, per request | share)"
    functions "$dump" | group | awk -v n="$REQUESTS" '{ c = $1; $1 = ""; printf "%10d /req %s\n", c / n, $0 }'
    echo "-- top $TOP functions (exclusive Ir per request)"
    functions "$dump" | sort -t$'\t' -k1,1 -rn | head -n "$TOP" |
        awk -F'\t' -v n="$REQUESTS" '{ printf "%10d  %s\n", $1 / n, substr($2, 1, 150) }'
done
