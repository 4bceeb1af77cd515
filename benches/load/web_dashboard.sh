#!/usr/bin/env bash
# What an open web dashboard costs Aegis (§14.1): the page's weight, and Aegis's CPU time over
# WINDOW seconds with no dashboard open, then with headless Chromium showing the page (which
# polls /status once a second). With RATE > 0 Aegis also serves a light steady load (RATE req/s
# from curl) in both windows; RATE=0 (the default) leaves it idle, so that the difference is the
# dashboard's alone.
#
# Usage: bash benches/load/web_dashboard.sh      (= just bench-web-dashboard)
# Environment: WINDOW=60 RATE=0 SKIP_BUILD=1 BASE_PORT=23400 KEEP_TMP=1
# Bounded: about 2 × WINDOW seconds plus the build; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WINDOW=${WINDOW:-60}
RATE=${RATE:-0}
CHROMIUM=$(command -v chromium || die "chromium is not installed (Debian package chromium)")

NO_NGINX=1 NO_HAPROXY=1 ensure_tools
build_binaries
FAKE_BACKEND=1 start_backend
start_aegis 1 "$AEGIS_PORT" "$AEGIS_BIN" info
ADMIN="127.0.0.1:$((AEGIS_PORT + 100))"

weight=0
for path in / /dashboard.js /dashboard.css /favicon.svg; do
    weight=$((weight + $(curl -s "http://$ADMIN$path" | wc -c)))
done
status=$(curl -s "http://$ADMIN/status" | wc -c)
log "page weight: $weight bytes (page, script, style sheet, icon); one /status: $status bytes"

# A steady trickle of requests, so the charts have something to show.
if ((RATE > 0)); then
    (
        while :; do
            curl -s -o /dev/null "http://127.0.0.1:$AEGIS_PORT/"
            sleep "$(awk "BEGIN{print 1/$RATE}")"
        done
    ) &
    STARTED_PIDS+=($!)
fi

# Aegis's utime+stime ticks over one window, in milliseconds.
measure() {
    local before after
    before=$(cpu_ticks "$AEGIS_PID")
    sleep "$WINDOW"
    after=$(cpu_ticks "$AEGIS_PID")
    read -r u0 s0 <<<"$before"
    read -r u1 s1 <<<"$after"
    echo $(((u1 + s1 - u0 - s0) * 1000 / CLK_TCK))
}

log "window 1: ${WINDOW}s without a dashboard"
without=$(measure)
# As root on a machine without network: no sandbox, nothing that reaches out.
"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$TMP/chromium" --remote-debugging-port=0 "http://$ADMIN/" \
    >"$TMP/chromium.log" 2>&1 &
CHROMIUM_PID=$!
STARTED_PIDS+=("$CHROMIUM_PID")
sleep 3 # the page loads and starts polling
log "window 2: ${WINDOW}s with the web dashboard open in headless Chromium"
with=$(measure)
printf '%-28s %8s\n' "page weight (bytes)" "$weight" "/status (bytes)" "$status" \
    "Aegis CPU ms, no dashboard" "$without" "Aegis CPU ms, page open" "$with"
log "per second of dashboard: $(((with - without) / WINDOW)) ms of Aegis CPU (${WINDOW}s windows)"
