#!/usr/bin/env bash
# Fixed-load latency (SPEC §16, issue 19): every proxy offered the same constant request rate,
# half of nginx's saturation rate measured first in the same run, and its latency percentiles
# reported. Saturation benchmarks (run.sh) compare CPU; this compares what a user waits at a load
# a production proxy actually runs at.
#
# Each proxy runs pinned to core 0 with one worker; the backend (nginx, static answer) and h2load
# share core 1. The load is `h2load --h1 -c CONNECTIONS --rps RATE/CONNECTIONS -D DURATION` with
# `--log-file`: h2load paces each connection, and the per-request log (start, status, µs to the
# end of the response) gives p50/p99/p99.9 over every request of the round. h2load paces per
# connection and waits for a response before the next request of that connection, so a stall
# delays that connection's later sends (coordinated omission); with many connections each at a low
# rate the effect stays small, and it is the same for every system.
#
# Usage: bash benches/load/fixed_rate.sh   (= just bench-fixed-rate)
# Environment: DURATION=10 ROUNDS=3 CONNECTIONS=64 SYSTEMS="aegis bare nginx haproxy"
#   RATE=N (offer N req/s instead of half of nginx's saturation), SKIP_BUILD=1, BASE_PORT=23400,
#   RESULTS_OUT=FILE (copy the per-round results there; columns: round, system, achieved req/s,
#   p50 µs, p99 µs, p99.9 µs, answers not 2xx, proxy CPU µs per request), CHARTS=1 (redraw
#   docs/perf/fixed-load.svg from this run with charts.py; needs python3; off by default so that
#   ad-hoc runs leave the committed chart alone).
# Bounded: about ROUNDS × systems × DURATION s plus the build; loopback only.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
SYSTEMS=${SYSTEMS:-"aegis bare nginx haproxy"}

command -v h2load >/dev/null || die "h2load is required (apt-get install nghttp2-client)"
ensure_tools
check_charts
[[ -n "$NGINX" ]] || die "nginx is required (its saturation rate sets the offered load)"
build_binaries
start_backend

declare -A PORT PID
for system in $SYSTEMS nginx; do
    [[ -n "${PORT[$system]:-}" ]] && continue
    case $system in
    aegis) start_aegis 1 "$AEGIS_PORT" && PORT[aegis]=$AEGIS_PORT PID[aegis]=$AEGIS_PID ;;
    bare) start_bare 1 "$BARE_PORT" && PORT[bare]=$BARE_PORT PID[bare]=$BARE_PID ;;
    nginx) start_nginx_proxy && PORT[nginx]=$NGINX_PORT PID[nginx]=$NGINX_PID ;;
    haproxy)
        [[ -n "$HAPROXY" ]] || { log "HAProxy not installed; skipped"; continue; }
        start_haproxy && PORT[haproxy]=$HAPROXY_PORT PID[haproxy]=$HAPROXY_PID
        ;;
    *) die "unknown system '$system' (aegis bare nginx haproxy)" ;;
    esac
done
ACTIVE=$(for s in $SYSTEMS; do if [[ -n "${PORT[$s]:-}" ]]; then echo "$s"; fi; done | xargs)

for system in $ACTIVE; do
    drive "${PORT[$system]}" 1 >/dev/null
done
if [[ -z "${RATE:-}" ]]; then
    read -r saturation _ <<<"$(drive "${PORT[nginx]}" 5)"
    RATE=$(awk -v r="$saturation" 'BEGIN { printf "%d", r / 2 }')
    log "nginx saturates at $saturation req/s; offering $RATE req/s"
fi
PER_CONNECTION=$(awk -v r="$RATE" -v c="$CONNECTIONS" 'BEGIN { printf "%d", (r / c < 1 ? 1 : r / c) }')

# One paced run; prints "achieved_rps p50_us p99_us p999_us non2xx cpu_us_per_request".
paced() {
    local system=$1 log_file=$TMP/paced-$1.log out
    rm -f "$log_file"
    read -r u0 s0 <<<"$(cpu_ticks "${PID[$system]}")"
    out=$(taskset -c "$LOAD_CPUS" h2load --h1 -c "$CONNECTIONS" --rps "$PER_CONNECTION" \
        -D "$DURATION" --log-file "$log_file" "http://127.0.0.1:${PORT[$system]}/" 2>&1) ||
        die "h2load failed against $system: $(tail -3 <<<"$out")"
    read -r u1 s1 <<<"$(cpu_ticks "${PID[$system]}")"
    awk -F'\t' '{ print $3 }' "$log_file" | sort -n | awk \
        -v total=$((u1 + s1 - u0 - s0)) -v hz="$CLK_TCK" -v d="$DURATION" \
        -v bad="$(awk -F'\t' '$2 < 200 || $2 > 299' "$log_file" | wc -l)" '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "0 0 0 0 0 0"; exit }
            i50 = int(NR * 0.50); i99 = int(NR * 0.99); i999 = int(NR * 0.999)
            if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1
            printf "%.0f %d %d %d %d %.1f\n", NR / d, v[i50], v[i99], v[i999], bad,
                total / hz * 1e6 / NR
        }'
}

RESULTS=$TMP/fixed.tsv
: >"$RESULTS"
log "$ROUNDS rounds of ${DURATION}s at $RATE req/s ($CONNECTIONS connections × $PER_CONNECTION req/s)"
for round in $(seq "$ROUNDS"); do
    for system in $ACTIVE; do
        read -r rps p50 p99 p999 bad cpu <<<"$(paced "$system")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$system" "$rps" "$p50" "$p99" "$p999" \
            "$bad" "$cpu" >>"$RESULTS"
        log "round $round $system: $rps req/s, p50 ${p50}µs, p99 ${p99}µs, p99.9 ${p999}µs, $bad not 2xx, ${cpu} CPU µs/req"
    done
done

column_median() { awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$RESULTS" | median; }
echo
echo "Offered $RATE req/s (h2load --h1 -c $CONNECTIONS --rps $PER_CONNECTION -D $DURATION), $ROUNDS rounds; medians"
printf '| %-8s | %8s | %7s | %7s | %9s | %10s |\n' system "req/s" "p50 µs" "p99 µs" "p99.9 µs" "CPU µs/req"
printf '|%s|%s|%s|%s|%s|%s|\n' ---------- ---------- --------- --------- ----------- ------------
for system in $ACTIVE; do
    printf '| %-8s | %8.0f | %7.0f | %7.0f | %9.0f | %10.1f |\n' "$system" "$(column_median "$system" 3)" \
        "$(column_median "$system" 4)" "$(column_median "$system" 5)" "$(column_median "$system" 6)" \
        "$(column_median "$system" 8)"
done
paired() {
    awk -F'\t' -v a="$1" -v b="$2" -v c="$3" '$2 == a { x[$1] = $c } $2 == b { y[$1] = $c }
        END { for (r in x) if (y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$RESULTS" | median
}
for other in nginx bare haproxy; do
    if [[ -n "${PORT[$other]:-}" && " $ACTIVE " == *" aegis "* && " $ACTIVE " == *" $other "* ]]; then
        echo "Aegis / $other, median of per-round ratios: p99 $(printf '%.2f' "$(paired aegis "$other" 5)")×, p99.9 $(printf '%.2f' "$(paired aegis "$other" 6)")×, p50 $(printf '%.2f' "$(paired aegis "$other" 4)")×"
    fi
done
if [[ -n "${RESULTS_OUT:-}" ]]; then
    cp "$RESULTS" "$RESULTS_OUT"
fi
write_charts fixed "$RESULTS" --rate "$RATE"
