#!/usr/bin/env bash
# Side-by-side load benchmark (SPEC §9): Aegis, a bare Pingora proxy, nginx and HAProxy.
#
# Each proxy runs pinned to core 0 with one worker and upstream keep-alive; the backend (nginx
# serving a small static answer, else the fake backend) and wrk share core 1. wrk drives each
# proxy in interleaved rounds (A B C D A B C D …) over loopback with keep-alive, fixed
# connections and a fixed duration. Printed per system: median requests/s, p50, p99, proxy CPU
# µs per request (utime+stime from /proc/PID/stat over the requests served) and RSS after the
# run, then the ratios Aegis / bare Pingora. Compare ratios from one run, never absolute numbers
# across runs or machines.
#
# Usage: bash benches/load/run.sh            (= just bench-load)
# Environment: DURATION=5 ROUNDS=5 CONNECTIONS=32 THREADS=1 SYSTEMS="aegis bare nginx haproxy"
#   BARE_ARGS="--no-work-stealing" (extra bare-proxy flags), FAKE_BACKEND=1 (skip nginx as the
#   backend), BASE_PORT=23400, PROXY_CPUS=0 LOAD_CPUS=1, KEEP_TMP=1 (keep configs and logs),
#   SKIP_BUILD=1 (use the release binaries as they are).
# Bounded: about ROUNDS × systems × (DURATION + 1) s plus the build; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
SYSTEMS=${SYSTEMS:-"aegis bare nginx haproxy"}
read -r -a BARE_EXTRA <<<"${BARE_ARGS:-}"

ensure_tools
build_binaries
start_backend
log "backend: $BACKEND_KIND on 127.0.0.1:$BACKEND_PORT, cores $LOAD_CPUS"

declare -A PORT PID
for system in $SYSTEMS; do
    case $system in
    aegis)
        start_aegis "$THREADS"
        PORT[aegis]=$AEGIS_PORT PID[aegis]=$AEGIS_PID
        AEGIS_IDLE_RSS=$(rss_kib "$AEGIS_PID")
        ;;
    bare)
        start_bare "$THREADS" "${BARE_EXTRA[@]}"
        PORT[bare]=$BARE_PORT PID[bare]=$BARE_PID
        ;;
    nginx)
        [[ -n "$NGINX" ]] || { log "nginx not installed; skipped"; continue; }
        start_nginx_proxy
        PORT[nginx]=$NGINX_PORT PID[nginx]=$NGINX_PID
        ;;
    haproxy)
        [[ -n "$HAPROXY" ]] || { log "HAProxy not installed; skipped"; continue; }
        start_haproxy
        PORT[haproxy]=$HAPROXY_PORT PID[haproxy]=$HAPROXY_PID
        ;;
    *) die "unknown system '$system' (aegis, bare, nginx, haproxy)" ;;
    esac
done
ACTIVE=$(for s in $SYSTEMS; do [[ -n "${PORT[$s]:-}" ]] && echo "$s"; done)
[[ -n "$ACTIVE" ]] || die "nothing to measure"

# Warm-up: fills connection pools and caches; not counted.
for system in $ACTIVE; do
    drive "${PORT[$system]}" 1 >/dev/null
done

RESULTS=$TMP/results.tsv
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    for system in $ACTIVE; do
        before=$(cpu_ticks "${PID[$system]}")
        read -r rps p50 p99 requests <<<"$(drive "${PORT[$system]}" "$DURATION")"
        after=$(cpu_ticks "${PID[$system]}")
        rss=$(rss_kib "${PID[$system]}")
        cpu_us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" \
            'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$system" "$rps" "$p50" "$p99" "$cpu_us" "$rss" >>"$RESULTS"
        log "round $round $system: $rps req/s, p50 ${p50}µs, p99 ${p99}µs, ${cpu_us} CPU µs/req, RSS ${rss} KiB"
    done
done

column_median() {
    awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$RESULTS" | median
}

echo
echo "Machine: $(nproc) cores, $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), Linux $(uname -r)"
echo "Proxy on cores $PROXY_CPUS ($THREADS worker thread(s)); backend ($BACKEND_KIND) and wrk on cores $LOAD_CPUS"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency, $ROUNDS interleaved rounds; medians"
echo
printf '| %-8s | %10s | %8s | %8s | %12s | %8s |\n' system "req/s" "p50 µs" "p99 µs" "CPU µs/req" "RSS MiB"
printf '|%s|%s|%s|%s|%s|%s|\n' ---------- ------------ ---------- ---------- -------------- ----------
declare -A CPU P99
for system in $ACTIVE; do
    rps=$(column_median "$system" 3)
    p50=$(column_median "$system" 4)
    P99[$system]=$(column_median "$system" 5)
    CPU[$system]=$(column_median "$system" 6)
    rss=$(column_median "$system" 7)
    printf '| %-8s | %10.0f | %8.0f | %8.0f | %12.2f | %8.1f |\n' "$system" "$rps" "$p50" \
        "${P99[$system]}" "${CPU[$system]}" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if [[ -n "${CPU[aegis]:-}" && -n "${CPU[bare]:-}" ]]; then
    echo "Aegis / bare Pingora: CPU per request $(ratio "${CPU[aegis]}" "${CPU[bare]}")×, p99 $(ratio "${P99[aegis]}" "${P99[bare]}")× (target ≤ 1.25× each)"
fi
for other in nginx haproxy; do
    if [[ -n "${CPU[$other]:-}" ]]; then
        [[ -n "${CPU[bare]:-}" ]] && echo "bare Pingora / $other: CPU per request $(ratio "${CPU[bare]}" "${CPU[$other]}")×, p99 $(ratio "${P99[bare]}" "${P99[$other]}")×"
        [[ -n "${CPU[aegis]:-}" ]] && echo "Aegis / $other: CPU per request $(ratio "${CPU[aegis]}" "${CPU[$other]}")×, p99 $(ratio "${P99[aegis]}" "${P99[$other]}")×"
    fi
done
if [[ -n "${AEGIS_IDLE_RSS:-}" ]]; then
    echo "Aegis RSS idle (right after start): $(awk -v k="$AEGIS_IDLE_RSS" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
fi
if [[ -n "${RESULTS_OUT:-}" ]]; then
    cp "$RESULTS" "$RESULTS_OUT"
fi
