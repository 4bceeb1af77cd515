#!/usr/bin/env bash
# Aegis's memory (SPEC §9): RSS idle, under load, while clients from ever more distinct source
# addresses (127.a.b.c) come and go, and with 10,000 idle keep-alive client connections (then the
# same for the bare Pingora proxy). The rate limiter's state is a count-min sketch allocated once,
# so RSS should stay flat as clients grow.
#
# Usage: bash benches/load/memory.sh
# Environment: IDLE_CONNECTIONS=10000 DISTINCT_SECONDS=120 DISTINCT_MAX=1000000 LOAD_SECONDS=10.
# Bounded: about LOAD_SECONDS + DISTINCT_SECONDS + 60 s plus the build; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
DISTINCT_SECONDS=${DISTINCT_SECONDS:-120}
DISTINCT_MAX=${DISTINCT_MAX:-1000000}
LOAD_SECONDS=${LOAD_SECONDS:-10}
CLIENTS="python3 $ROOT/benches/load/clients.py"

# 10,000 sockets on each side, plus the upstream ones.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
ensure_tools
build_binaries
start_backend
start_aegis 1
sleep 1
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

echo "Aegis RSS idle (1 s after start): $(mib "$(rss_kib "$AEGIS_PID")")"

drive "$AEGIS_PORT" "$LOAD_SECONDS" >/dev/null
echo "Aegis RSS after ${LOAD_SECONDS} s of wrk -c${CONNECTIONS:-32}: $(mib "$(rss_kib "$AEGIS_PID")")"

# Distinct clients before the idle connections: memory freed when those close stays in the
# allocator and would hide any growth here.
echo "Distinct client addresses (one short connection each, ${DISTINCT_SECONDS} s at most):"
taskset -c "$LOAD_CPUS" $CLIENTS distinct "$AEGIS_PORT" "$DISTINCT_SECONDS" "$DISTINCT_MAX" "$AEGIS_PID" |
    awk '{ print "  " $0 }'

# Holds IDLE_CONNECTIONS idle keep-alive connections to PORT and prints the RSS growth of PID.
idle_connections() {
    local name=$1 port=$2 pid=$3 before held idle_pid
    before=$(rss_kib "$pid")
    taskset -c "$LOAD_CPUS" $CLIENTS idle "$port" "$IDLE_CONNECTIONS" 20 >"$TMP/idle.out" 2>&1 &
    idle_pid=$!
    STARTED_PIDS+=("$idle_pid")
    for _ in $(seq 600); do
        grep -q ready "$TMP/idle.out" && break
        kill -0 "$idle_pid" 2>/dev/null || die "the idle client failed: $(cat "$TMP/idle.out")"
        sleep 0.1
    done
    grep -q ready "$TMP/idle.out" || die "the idle client never got ready: $(cat "$TMP/idle.out")"
    sleep 2
    held=$(rss_kib "$pid")
    echo "$name RSS with $IDLE_CONNECTIONS idle keep-alive connections: $(mib "$held")" \
        "(+$(mib $((held - before))), $(awk -v d=$((held - before)) -v n="$IDLE_CONNECTIONS" \
            'BEGIN { printf "%.1f", d / n }') KiB per connection)"
    wait "$idle_pid" || true
    sleep 2
    echo "$name RSS after they closed: $(mib "$(rss_kib "$pid")") (the allocator keeps the pages for reuse)"
}

idle_connections Aegis "$AEGIS_PORT" "$AEGIS_PID"
# The same for the bare Pingora proxy: what Pingora itself keeps per connection.
start_bare 1
idle_connections "bare Pingora" "$BARE_PORT" "$BARE_PID"
