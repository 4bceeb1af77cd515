# Shared helpers for the load benchmark scripts in benches/load/ (sourced, not run).
#
# Starts and stops the systems under test on loopback, pins them to cores, reads their CPU time
# and RSS from /proc, and cleans up everything it started when the calling script exits. Every
# helper only touches processes whose ids it recorded itself.

# Ports (loopback only). BASE_PORT moves them all, e.g. when 23400-23450 and 23510-23530 are taken.
BASE_PORT=${BASE_PORT:-23400}
BACKEND_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
AEGIS_PORT=$((BASE_PORT + 10)) # variants take the ports after it; admin listeners PORT + 100
BARE_PORT=$((BASE_PORT + 30))  # variants take the ports after it
REDIS_PORT=$((BASE_PORT + 5))  # the redis-server of aegis-cluster

# Cores: the proxy under test on one, the backend and the load generator on the other.
PROXY_CPUS=${PROXY_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d /tmp/aegis-bench.XXXXXX)
# nginx workers run as `nobody` when started as root; let them read their config.
chmod 755 "$TMP"
CLK_TCK=$(getconf CLK_TCK)
STARTED_PIDS=()

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -z "${KEEP_TMP:-}" ]]; then
        rm -rf "$TMP"
    else
        echo "kept $TMP" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Installs the tools when missing (Debian packages; root only).
ensure_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    if [[ -z "${NO_NGINX:-}" ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        missing+=(nginx)
    fi
    if [[ -z "${NO_HAPROXY:-}" ]] && ! command -v haproxy >/dev/null && [[ ! -x /usr/sbin/haproxy ]]; then
        missing+=(haproxy)
    fi
    if ((${#missing[@]})) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y "${missing[@]}" >/dev/null 2>&1; } ||
            log "could not install ${missing[*]}; going on without"
    fi
    command -v wrk >/dev/null || die "wrk is required (apt-get install wrk)"
    NGINX=$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
    HAPROXY=$(command -v haproxy || { [[ -x /usr/sbin/haproxy ]] && echo /usr/sbin/haproxy; } || true)
    [[ -n "${NO_NGINX:-}" ]] && NGINX=""
    [[ -n "${NO_HAPROXY:-}" ]] && HAPROXY=""
    return 0
}

# The binaries under test, built with the `release` profile users get (fat LTO, one codegen unit;
# SPEC §16, docs/decisions/release-profile.md): Aegis and the bare proxy alike. The fake backend
# (a test tool, used when nginx is missing) comes from the test suite's `ci` profile.
# AEGIS_BIN / BARE_BIN override the binaries (e.g. a patched build to compare); SKIP_BUILD=1
# skips cargo.
build_binaries() {
    AEGIS_BIN=${AEGIS_BIN:-$ROOT/target/release/aegis}
    BARE_BIN=${BARE_BIN:-$ROOT/target/release/bare-proxy}
    FAKE_BIN=${FAKE_BIN:-$ROOT/target/ci/fake-backends}
    if [[ -n "${SKIP_BUILD:-}" ]]; then
        log "SKIP_BUILD set: using the binaries as they are"
    else
        log "building Aegis and the bare proxy (release profile: several minutes when cold)"
        (cd "$ROOT" && cargo build --release --quiet -p aegis -p bare-proxy --bin aegis --bin bare-proxy &&
            cargo build --profile ci --quiet -p fake-backends --bin fake-backends)
    fi
    check_allocators
}

# The allocator linked into a binary: "mimalloc", "jemalloc" or "system" (glibc's malloc).
linked_allocator() {
    local symbols
    symbols=$(nm "$1" 2>/dev/null | grep -o -m1 -E ' (mi_malloc_aligned|_rjem_malloc|je_malloc)$' || true)
    case $symbols in
    " mi_malloc_aligned") echo mimalloc ;;
    " _rjem_malloc" | " je_malloc") echo jemalloc ;;
    *) echo system ;;
    esac
}

# Aegis and the bare proxy must be compared with the same allocator (a stale bare-proxy built
# during an allocator experiment once made every ratio look 10-20 % worse for Aegis): refuses to
# go on when the two binaries link different ones, and logs when each binary was built.
check_allocators() {
    command -v nm >/dev/null || return 0
    local aegis bare
    aegis=$(linked_allocator "$AEGIS_BIN")
    bare=$(linked_allocator "$BARE_BIN")
    log "aegis built $(date -r "$AEGIS_BIN" +%FT%T) (allocator: $aegis); bare-proxy built $(date -r "$BARE_BIN" +%FT%T) (allocator: $bare)"
    [[ $aegis == "$bare" ]] || die "aegis links $aegis but bare-proxy links $bare: rebuild (cargo build --release -p aegis -p bare-proxy --bin aegis --bin bare-proxy) or set AEGIS_BIN/BARE_BIN"
}

# Starts a command in the background on the given cores; its pid lands in $LAST_PID.
start_pinned() {
    local cpus=$1 out=$2
    shift 2
    taskset -c "$cpus" "$@" >"$out" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# Waits until 127.0.0.1:PORT answers HTTP 200 on `/` (at most ~10 s).
wait_http() {
    local port=$1 name=$2
    for _ in $(seq 100); do
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null) == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$name on port $port does not answer 200"
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The backend: nginx serving a small static answer, otherwise the fake backend.
start_backend() {
    port_free "$BACKEND_PORT" || die "port $BACKEND_PORT is taken (set BASE_PORT)"
    if [[ -n "$NGINX" && -z "${FAKE_BACKEND:-}" ]]; then
        mkdir -p "$TMP/backend"
        cat >"$TMP/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $TMP/backend/body;
    proxy_temp_path $TMP/backend/proxy;
    fastcgi_temp_path $TMP/backend/fastcgi;
    uwsgi_temp_path $TMP/backend/uwsgi;
    scgi_temp_path $TMP/backend/scgi;
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        default_type text/plain;
        location / { return 200 "hello from the backend\n"; }
    }
}
EOF
        start_pinned "$LOAD_CPUS" "$TMP/backend/stdout" "$NGINX" -p "$TMP/backend" -c "$TMP/backend/nginx.conf"
        BACKEND_KIND="nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
    else
        start_pinned "$LOAD_CPUS" "$TMP/backend.log" "$FAKE_BIN" --count 1 --base-port "$BACKEND_PORT"
        BACKEND_KIND="fake-backends"
    fi
    BACKEND_PID=$LAST_PID
    wait_http "$BACKEND_PORT" backend
}

# Aegis with every layer on: rate limit (set high), validation, metrics, health checks, breaker,
# adaptive loop (max_rate high) and the access log at info, written to a file.
# Usage: write_aegis_config FILE PORT ADMIN_PORT THREADS LOG_FILE [LEVEL]; AEGIS_EXTRA_YAML (top-level
# sections) is appended.
write_aegis_config() {
    local file=$1 port=$2 admin=$3 threads=$4 log_file=$5 level=${6:-info}
    cat >"$file" <<EOF
server:
  address: 127.0.0.1
  port: $port
  threads: $threads
  pid_file: $TMP/aegis-$port.pid
  upgrade_sock: $TMP/aegis-$port-upgrade.sock
  # memory.sh holds 10,000 idle clients; the default cap (two descriptors per client) is below
  # that when the hard open-file limit is 20,000.
  max_connections: 16000
backends:
  - url: http://127.0.0.1:$BACKEND_PORT
health_check:
  interval: 2s
  path: /health
rate_limit:
  requests_per_second: 1000000
  burst: 1000000
adaptive:
  enabled: true
  max_rate: 1000000
logging:
  level: $level
  format: json
  file: $log_file
tui:
  enabled: false
admin:
  enabled: true
  address: 127.0.0.1:$admin
development:
  allow_loopback_backends: true
${AEGIS_EXTRA_YAML:-}
EOF
    if [[ -n "${CLUSTER_REDIS_URL:-}" ]]; then
        printf 'cluster:\n  redis_url: "%s"\n  sync_interval: 100ms\n' "$CLUSTER_REDIS_URL" >>"$file"
    fi
}

# A redis-server for cluster mode on the load cores, no persistence; its pid in $REDIS_PID.
start_redis() {
    [[ -n "${REDIS_PID:-}" ]] && return
    command -v redis-server >/dev/null || die "redis-server is needed for aegis-cluster"
    port_free "$REDIS_PORT" || die "port $REDIS_PORT is taken (set BASE_PORT)"
    start_pinned "$LOAD_CPUS" "$TMP/redis.log" redis-server --port "$REDIS_PORT" \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP"
    REDIS_PID=$LAST_PID
    for _ in $(seq 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "redis-server did not start"
}

# Sync traffic the redis-server saw since it started: commands and bytes per second.
redis_stats() {
    [[ -n "${REDIS_PID:-}" ]] || return 0
    local up
    up=$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^uptime_in_seconds/ { print $2 }')
    redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | awk -F: -v up="$up" '
        /^total_commands_processed/ { c = $2 } /^total_net_input_bytes/ { i = $2 }
        /^total_net_output_bytes/ { o = $2 }
        END { if (up < 1) up = 1; printf "redis-server (one cluster instance, %d s): %.1f commands/s, %.0f B/s in, %.0f B/s out\n", up, c / up, i / up, o / up }'
}

# Aegis headless, pinned; its logs (stdout in headless mode) go to $TMP/aegis-PORT.log.
# Usage: start_aegis [THREADS [PORT [BINARY [LOG_LEVEL]]]]; the pid lands in $AEGIS_PID.
start_aegis() {
    local threads=${1:-1} port=${2:-$AEGIS_PORT} binary=${3:-$AEGIS_BIN} level=${4:-info}
    port_free "$port" || die "port $port is taken (set BASE_PORT)"
    write_aegis_config "$TMP/aegis-$port.yml" "$port" $((port + 100)) "$threads" \
        "$TMP/aegis-$port.log" "$level"
    "$binary" -t -c "$TMP/aegis-$port.yml" >/dev/null || die "the Aegis benchmark config is invalid"
    start_pinned "$PROXY_CPUS" "$TMP/aegis-$port.log" "$binary" -c "$TMP/aegis-$port.yml" --headless
    AEGIS_PID=$LAST_PID
    wait_http "$port" aegis
}

# The bare Pingora proxy. Usage: start_bare [THREADS [PORT [FLAGS...]]]; the pid lands in $BARE_PID.
start_bare() {
    local threads=${1:-1} port=${2:-$BARE_PORT}
    shift 2 || shift $#
    port_free "$port" || die "port $port is taken (set BASE_PORT)"
    start_pinned "$PROXY_CPUS" "$TMP/bare-$port.log" "$BARE_BIN" --listen "127.0.0.1:$port" \
        --upstream "127.0.0.1:$BACKEND_PORT" --threads "$threads" "$@"
    BARE_PID=$LAST_PID
    wait_http "$port" bare-proxy
}

start_nginx_proxy() {
    port_free "$NGINX_PORT" || die "port $NGINX_PORT is taken (set BASE_PORT)"
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 32;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    start_pinned "$PROXY_CPUS" "$TMP/nginx/stdout" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
    NGINX_PID=$LAST_PID
    wait_http "$NGINX_PORT" "nginx (proxy)"
}

start_haproxy() {
    port_free "$HAPROXY_PORT" || die "port $HAPROXY_PORT is taken (set BASE_PORT)"
    cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend backend
backend backend
    server b1 127.0.0.1:$BACKEND_PORT
EOF
    start_pinned "$PROXY_CPUS" "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    HAPROXY_PID=$LAST_PID
    wait_http "$HAPROXY_PORT" haproxy
}

# A process and its direct children (nginx's master and worker).
process_tree() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" || true
}

# "utime stime" in clock ticks of a process tree (all threads).
cpu_ticks() {
    local user=0 sys=0 p fields
    for p in $(process_tree "$1"); do
        [[ -r /proc/$p/stat ]] || continue
        # Fields 14 and 15 (utime, stime), counted after the command name, which may hold spaces.
        fields=$(sed 's/^.*) //' "/proc/$p/stat")
        user=$((user + $(echo "$fields" | awk '{print $12}')))
        sys=$((sys + $(echo "$fields" | awk '{print $13}')))
    done
    echo "$user $sys"
}

# VmRSS of a process tree, in KiB.
rss_kib() {
    local total=0 p
    for p in $(process_tree "$1"); do
        [[ -r /proc/$p/status ]] || continue
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
    done
    echo "$total"
}

# wrk's latency ("123.45us", "1.20ms", "2.00s") in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

# One wrk run against PORT, pinned to the load cores. Prints "rps p50_us p99_us requests".
drive() {
    local port=$1 seconds=$2 out=$TMP/wrk.out
    taskset -c "$LOAD_CPUS" wrk -t1 -c"${CONNECTIONS:-32}" -d"${seconds}s" --latency \
        "http://127.0.0.1:$port/" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    if grep -q -E 'Non-2xx|Socket errors' "$out"; then
        log "warning: port $port: $(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ')"
    fi
    local rps p50 p99 requests
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    requests=$(awk '/requests in/ {print $1}' "$out")
    echo "$rps $p50 $p99 $requests"
}

# The shared library of an allocator (jemalloc, mimalloc) for LD_PRELOAD; fails if not installed.
allocator_library() {
    local path
    case $1 in
    jemalloc) path=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ;;
    mimalloc) path=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ;;
    *) return 1 ;;
    esac
    [[ -e $path ]] && echo "$path"
}

# Median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# CHARTS=1: the script ends by redrawing its charts in docs/perf/ with charts.py. Off by default,
# so that ad-hoc runs of variants leave the committed charts alone. Checked before the run, so a
# machine without python3 says so now rather than after minutes of measuring.
check_charts() {
    case ${CHARTS:-0} in
    0) ;;
    1) command -v python3 >/dev/null || die "CHARTS=1 draws the charts with python3, which is not installed (apt-get install python3)" ;;
    *) die "CHARTS is 1 (redraw docs/perf/) or 0, not '$CHARTS'" ;;
    esac
}

# write_charts run|fixed RESULTS [charts.py options]: redraws the charts when CHARTS=1.
write_charts() {
    [[ ${CHARTS:-0} == 1 ]] || return 0
    python3 "$ROOT/benches/load/charts.py" "$1" "$2" --out "$ROOT/docs/perf" --date "$(date -u +%F)" "${@:3}" ||
        die "charts.py could not draw $1 charts from $2"
}
