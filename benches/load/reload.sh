#!/usr/bin/env bash
# The pause a reload causes on the request path (§12.1): wrk against Aegis for DURATION seconds
# without reloads, then for DURATION seconds while the config is reloaded every INTERVAL
# (alternately adding/removing a backend and reweighting one, by POST /reload), in the same run.
# Prints p50, p99 and the slowest request of each, the reloads applied and the failures seen.
# Usage: bash benches/load/reload.sh   (DURATION, INTERVAL, ROUNDS, CONNECTIONS override)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION=${DURATION:-10}
INTERVAL=${INTERVAL:-0.1}
ROUNDS=${ROUNDS:-3}

ensure_tools
build_binaries
start_backend
log "backend: $BACKEND_KIND on 127.0.0.1:$BACKEND_PORT"
# Two more backends that the reloads add, remove and reweight.
EXTRA_PORT=$((BASE_PORT + 40))
start_pinned "$LOAD_CPUS" "$TMP/extra.log" "$FAKE_BIN" --count 2 --base-port "$EXTRA_PORT"
wait_http "$EXTRA_PORT" "extra backend"
# The benchmark config with the admin token POST /reload needs (§12.2).
CONFIG=$TMP/aegis-$AEGIS_PORT.yml
ADMIN=127.0.0.1:$((AEGIS_PORT + 100))
TOKEN_FILE=$TMP/admin.token
(umask 077 && openssl rand -hex 16 >"$TOKEN_FILE")
port_free "$AEGIS_PORT" || die "port $AEGIS_PORT is taken (set BASE_PORT)"
write_aegis_config "$CONFIG" "$AEGIS_PORT" $((AEGIS_PORT + 100)) 1 "$TMP/aegis-$AEGIS_PORT.log"
sed -i "s|^  address: $ADMIN\$|&\n  token_file: $TOKEN_FILE|" "$CONFIG"
grep -q token_file "$CONFIG" || die "cannot add admin.token_file to the config"
start_pinned "$PROXY_CPUS" "$TMP/aegis-$AEGIS_PORT.out" "$AEGIS_BIN" -c "$CONFIG" --headless
AEGIS_PID=$LAST_PID
wait_http "$AEGIS_PORT" aegis
AUTH="Authorization: Bearer $(cat "$TOKEN_FILE")"

# The two configurations the reloads alternate between: the benchmark config with its backends
# replaced.
backends_a="backends:
  - url: http://127.0.0.1:$BACKEND_PORT
    weight: 2
  - url: http://127.0.0.1:$EXTRA_PORT"
backends_b="backends:
  - url: http://127.0.0.1:$BACKEND_PORT
    weight: 1
  - url: http://127.0.0.1:$((EXTRA_PORT + 1))
    weight: 3"
write_variant() {
    awk -v list="$2" '
        /^backends:/ { print list; skip = 1; next }
        skip && /^  / { next }
        { skip = 0; print }' "$CONFIG.orig" >"$1"
}
cp "$CONFIG" "$CONFIG.orig"
write_variant "$TMP/a.yml" "$backends_a"
write_variant "$TMP/b.yml" "$backends_b"
"$AEGIS_BIN" -t -c "$TMP/a.yml" >/dev/null && "$AEGIS_BIN" -t -c "$TMP/b.yml" >/dev/null ||
    die "the reload configs are invalid"

# Reloads until $TMP/stop exists; counts applied ones in $TMP/applied.
reload_loop() {
    local n=0 applied=0
    while [[ ! -e $TMP/stop ]]; do
        if ((n % 2)); then cp "$TMP/b.yml" "$CONFIG"; else cp "$TMP/a.yml" "$CONFIG"; fi
        if curl -s -X POST -H "$AUTH" "http://$ADMIN/reload" | grep -q '"applied"'; then
            applied=$((applied + 1))
        fi
        n=$((n + 1))
        sleep "$INTERVAL"
    done
    echo "$applied" >"$TMP/applied"
}

# One wrk run; prints "p50_us p99_us max_us requests failures".
run() {
    local out=$TMP/wrk.out
    taskset -c "$LOAD_CPUS" wrk -t1 -c"${CONNECTIONS:-32}" -d"${DURATION}s" --latency \
        "http://127.0.0.1:$AEGIS_PORT/" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    local p50 p99 max requests failures
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    max=$(to_us "$(awk '$1 == "Latency" {print $4}' "$out")")
    requests=$(awk '/requests in/ {print $1}' "$out")
    failures=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END { print n + 0 }' "$out")
    echo "$p50 $p99 $max $requests $failures"
}

printf '%-24s %9s %9s %9s %10s %8s %8s\n' run "p50 us" "p99 us" "max us" requests failures reloads
for round in $(seq "$ROUNDS"); do
    cp "$CONFIG.orig" "$CONFIG"
    curl -s -X POST -H "$AUTH" "http://$ADMIN/reload" >/dev/null
    read -r p50 p99 max requests failures <<<"$(run)"
    printf '%-24s %9s %9s %9s %10s %8s %8s\n' "$round without reloads" "$p50" "$p99" "$max" \
        "$requests" "$failures" 0
    rm -f "$TMP/stop" "$TMP/applied"
    reload_loop &
    loop=$!
    read -r p50 p99 max requests failures <<<"$(run)"
    touch "$TMP/stop"
    wait "$loop"
    printf '%-24s %9s %9s %9s %10s %8s %8s\n' "$round reloads every ${INTERVAL}s" "$p50" "$p99" \
        "$max" "$requests" "$failures" "$(cat "$TMP/applied")"
done
curl -s "http://$ADMIN/status" | python3 -c 'import json,sys; c=json.load(sys.stdin)["config"]; print("generation", c["generation"], "applied", c["reloads_applied"], "refused", c["reloads_refused"])'
