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
#   (more systems, for the Pingora settings: aegis-2t, bare-2t = 2 worker threads; bare-nows = no
#   work stealing; bare-noka = no upstream keep-alive; aegis-patched = AEGIS_PATCHED_BIN, a build
#   to compare; aegis-nolog = diagnostic only, the access log off, to price it; aegis-cluster =
#   cluster mode (§13) against a redis-server started here, priced against `aegis`;
#   aegis-routes = two pools behind two routes (§17), priced against `aegis`;
#   aegis-jemalloc, aegis-mimalloc, bare-jemalloc, bare-mimalloc = the allocator preloaded from
#   Debian's libjemalloc2 / libmimalloc2.0, priced against `aegis` / `bare`), BARE_ARGS="..."
#   (extra flags for `bare`), FAKE_BACKEND=1 (skip nginx as the backend), BASE_PORT=23400,
#   PROXY_CPUS=0 LOAD_CPUS=1, KEEP_TMP=1 (keep configs and logs), SKIP_BUILD=1 (use the release
#   binaries as they are), RESULTS_OUT=FILE (copy the per-round results there), CHARTS=1 (redraw
#   docs/perf/cpu-per-request.svg and docs/perf/latency.svg from this run with charts.py; needs
#   python3; off by default so that runs of variants leave the committed charts alone).
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
check_charts
build_binaries
start_backend
log "backend: $BACKEND_KIND on 127.0.0.1:$BACKEND_PORT, cores $LOAD_CPUS"

# Each system (and each settings variant) gets its own port; all stay up, idle between turns.
declare -A PORT PID
for system in $SYSTEMS; do
    case $system in
    aegis-routes)
        # §17: the same backend behind two pools and two routes (a host route the load does not
        # match, then a path route it does), priced against `aegis` (one pool, no routes).
        AEGIS_EXTRA_YAML="$(printf 'pools:\n  api: {backends: [{url: "http://127.0.0.1:%s"}]}\n  web: {backends: [{url: "http://127.0.0.1:%s"}]}\nroutes:\n  - {host: api.example.com, pool: api}\n  - {path_prefix: /, pool: web}\n' "$BACKEND_PORT" "$BACKEND_PORT")" \
            start_aegis "$THREADS" $((AEGIS_PORT + 7))
        PORT[$system]=$((AEGIS_PORT + 7)) PID[$system]=$AEGIS_PID
        ;;
    aegis | aegis-2t | aegis-patched | aegis-nolog | aegis-cluster)
        threads=$THREADS binary=$AEGIS_BIN port=$AEGIS_PORT level=info
        [[ $system == aegis-2t ]] && threads=2 port=$((AEGIS_PORT + 1))
        [[ $system == aegis-nolog ]] && level=warn port=$((AEGIS_PORT + 3))
        CLUSTER_REDIS_URL=""
        if [[ $system == aegis-cluster ]]; then
            port=$((AEGIS_PORT + 4))
            start_redis
            CLUSTER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
        fi
        if [[ $system == aegis-patched ]]; then
            [[ -n "${AEGIS_PATCHED_BIN:-}" ]] || { log "AEGIS_PATCHED_BIN not set; aegis-patched skipped"; continue; }
            binary=$AEGIS_PATCHED_BIN port=$((AEGIS_PORT + 2))
        fi
        start_aegis "$threads" "$port" "$binary" "$level"
        PORT[$system]=$port PID[$system]=$AEGIS_PID
        [[ $system == aegis ]] && AEGIS_IDLE_RSS=$(rss_kib "$AEGIS_PID")
        ;;
    aegis-jemalloc | aegis-mimalloc | bare-jemalloc | bare-mimalloc)
        # The allocator question (§16) without a rebuild: Rust's system allocator is malloc, so
        # the library preloaded replaces it for everything the process allocates.
        preload=$(allocator_library "${system#*-}") || { log "$system: library not installed; skipped"; continue; }
        if [[ $system == aegis-* ]]; then
            port=$((AEGIS_PORT + 5)) && [[ $system == *mimalloc ]] && port=$((AEGIS_PORT + 6))
            LD_PRELOAD=$preload start_aegis "$THREADS" "$port"
            PORT[$system]=$port PID[$system]=$AEGIS_PID
        else
            port=$((BARE_PORT + 4)) && [[ $system == *mimalloc ]] && port=$((BARE_PORT + 5))
            LD_PRELOAD=$preload start_bare "$THREADS" "$port" "${BARE_EXTRA[@]}"
            PORT[$system]=$port PID[$system]=$BARE_PID
        fi
        ;;
    bare | bare-2t | bare-nows | bare-noka)
        threads=$THREADS port=$BARE_PORT flags=("${BARE_EXTRA[@]}")
        case $system in
        bare-2t) threads=2 port=$((BARE_PORT + 1)) ;;
        bare-nows) port=$((BARE_PORT + 2)) flags=(--no-work-stealing) ;;
        bare-noka) port=$((BARE_PORT + 3)) flags=(--no-upstream-keepalive) ;;
        esac
        start_bare "$threads" "$port" "${flags[@]}"
        PORT[$system]=$port PID[$system]=$BARE_PID
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
    *) die "unknown system '$system' (aegis aegis-routes aegis-2t aegis-patched aegis-nolog aegis-cluster aegis-jemalloc aegis-mimalloc bare bare-2t bare-nows bare-noka bare-jemalloc bare-mimalloc nginx haproxy)" ;;
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
        read -r user0 sys0 <<<"$(cpu_ticks "${PID[$system]}")"
        read -r rps p50 p99 requests <<<"$(drive "${PORT[$system]}" "$DURATION")"
        read -r user1 sys1 <<<"$(cpu_ticks "${PID[$system]}")"
        rss=$(rss_kib "${PID[$system]}")
        cpu_us=$(awk -v t=$((user1 + sys1 - user0 - sys0)) -v hz="$CLK_TCK" -v n="$requests" \
            'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
        sys_share=$(awk -v s=$((sys1 - sys0)) -v t=$((user1 + sys1 - user0 - sys0)) \
            'BEGIN { printf "%.0f", (t > 0 ? 100 * s / t : 0) }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$system" "$rps" "$p50" "$p99" \
            "$cpu_us" "$rss" "$sys_share" >>"$RESULTS"
        log "round $round $system: $rps req/s, p50 ${p50}µs, p99 ${p99}µs, ${cpu_us} CPU µs/req (${sys_share}% kernel), RSS ${rss} KiB"
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
printf '| %-13s | %8s | %7s | %7s | %10s | %6s | %7s |\n' system "req/s" "p50 µs" "p99 µs" "CPU µs/req" kernel "RSS MiB"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' --------------- ---------- --------- --------- ------------ -------- ---------
declare -A CPU P99
for system in $ACTIVE; do
    rps=$(column_median "$system" 3)
    p50=$(column_median "$system" 4)
    P99[$system]=$(column_median "$system" 5)
    CPU[$system]=$(column_median "$system" 6)
    rss=$(column_median "$system" 7)
    kernel=$(column_median "$system" 8)
    printf '| %-13s | %8.0f | %7.0f | %7.0f | %10.2f | %5.0f%% | %7.1f |\n' "$system" "$rps" "$p50" \
        "${P99[$system]}" "${CPU[$system]}" "$kernel" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if [[ -n "${CPU[aegis]:-}" && -n "${CPU[bare]:-}" ]]; then
    echo "Aegis / bare Pingora: CPU per request $(ratio "${CPU[aegis]}" "${CPU[bare]}")×, p99 $(ratio "${P99[aegis]}" "${P99[bare]}")× (target ≤ 1.25× each)"
    # The same ratios taken round by round (each pair measured back to back, so a slow spell
    # on the shared machine hits both), then their median.
    paired() {
        awk -F'\t' -v c="$1" '$2 == "aegis" { a[$1] = $c } $2 == "bare" { b[$1] = $c }
            END { for (r in a) if (b[r] > 0) printf "%.3f\n", a[r] / b[r] }' "$RESULTS" | median
    }
    echo "Aegis / bare Pingora, median of per-round ratios: CPU per request $(printf '%.2f' "$(paired 6)")×, p99 $(printf '%.2f' "$(paired 5)")×"
fi
if [[ -n "${CPU[aegis-cluster]:-}" && -n "${CPU[aegis]:-}" ]]; then
    cluster_paired() {
        awk -F'\t' -v c="$1" '$2 == "aegis-cluster" { a[$1] = $c } $2 == "aegis" { b[$1] = $c }
            END { for (r in a) if (b[r] > 0) printf "%.3f\n", a[r] / b[r] }' "$RESULTS" | median
    }
    echo "aegis-cluster / aegis, median of per-round ratios: CPU per request $(printf '%.3f' "$(cluster_paired 6)")×, p99 $(printf '%.2f' "$(cluster_paired 5)")× (§16: CPU ≤ 1.05×)"
    redis_stats
fi
for variant in aegis-patched aegis-2t aegis-nolog; do
    if [[ -n "${CPU[$variant]:-}" && -n "${CPU[bare]:-}" ]]; then
        echo "$variant / bare Pingora: CPU per request $(ratio "${CPU[$variant]}" "${CPU[bare]}")×, p99 $(ratio "${P99[$variant]}" "${P99[bare]}")×"
    fi
done
for variant in aegis-routes aegis-jemalloc aegis-mimalloc; do
    if [[ -n "${CPU[$variant]:-}" && -n "${CPU[aegis]:-}" ]]; then
        echo "$variant / aegis: CPU per request $(ratio "${CPU[$variant]}" "${CPU[aegis]}")×, p99 $(ratio "${P99[$variant]}" "${P99[aegis]}")×"
    fi
done
for variant in bare-2t bare-nows bare-noka bare-jemalloc bare-mimalloc; do
    if [[ -n "${CPU[$variant]:-}" && -n "${CPU[bare]:-}" ]]; then
        echo "$variant / bare: CPU per request $(ratio "${CPU[$variant]}" "${CPU[bare]}")×, p99 $(ratio "${P99[$variant]}" "${P99[bare]}")×"
    fi
done
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
write_charts run "$RESULTS"
