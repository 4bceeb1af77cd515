#!/usr/bin/env bash
# TLS load figures (issue 13): Aegis, the bare Pingora proxy (Pingora's own TLS listener) and
# nginx terminating TLS with the same certificate, each
# pinned to core 0 with one worker, the backend (nginx, static answer) and h2load on core 1,
# loopback only. Three measurements per system, one run each:
#   - new connections: `h2load --h1 -n N -c 50` with `Connection: close`, so every request is a
#     fresh TCP connection and a full TLS handshake (TLS 1.3, ECDSA P-256);
#   - keep-alive: `h2load --h1 -n N -c 32` on persistent connections;
#   - h2: `h2load -n N -c 32 -m 10`, HTTP/2 by ALPN, 10 concurrent streams per connection (each
#     proxy forwards over HTTP/1.1 to the backend).
# Printed: requests/s from h2load and the proxy's CPU time per request (utime+stime from
# /proc/PID/stat before and after). Compare ratios within a round, never absolute numbers.
#
# Usage: bash benches/load/tls.sh   Environment: HANDSHAKES=2000 REQUESTS=50000 ROUNDS=1 BASE_PORT=23400
#   SKIP_BUILD=1 KEEP_TMP=1. Bounded: a few seconds per measurement.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HANDSHAKES=${HANDSHAKES:-2000}
REQUESTS=${REQUESTS:-50000}
command -v h2load >/dev/null || die "h2load is required (apt-get install nghttp2-client)"
NO_HAPROXY=1 ensure_tools
[[ -n "$NGINX" ]] || die "nginx is required"
build_binaries
start_backend

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$TMP/cert.key" -out "$TMP/cert.pem" 2>/dev/null
chmod 644 "$TMP/cert.key"

AEGIS_TLS_PORT=$((BASE_PORT + 40))
NGINX_TLS_PORT=$((BASE_PORT + 41))
BARE_TLS_PORT=$((BASE_PORT + 42))
write_aegis_config "$TMP/aegis.yml" "$AEGIS_TLS_PORT" $((AEGIS_TLS_PORT + 100)) 1 "$TMP/aegis.log"
cat >>"$TMP/aegis.yml" <<YAML
listeners:
  - address: 127.0.0.1:$AEGIS_TLS_PORT
    tls:
      certificates: [{cert: $TMP/cert.pem, key: $TMP/cert.key}]
YAML
"$AEGIS_BIN" -t -c "$TMP/aegis.yml" >/dev/null || die "the Aegis TLS config is invalid"
start_pinned "$PROXY_CPUS" "$TMP/aegis.log" "$AEGIS_BIN" -c "$TMP/aegis.yml" --headless
AEGIS_PID=$LAST_PID

start_pinned "$PROXY_CPUS" "$TMP/bare-tls.log" "$BARE_BIN" --listen "127.0.0.1:$BARE_TLS_PORT" \
    --upstream "127.0.0.1:$BACKEND_PORT" --threads 1 --tls "$TMP/cert.pem" "$TMP/cert.key"
BARE_TLS_PID=$LAST_PID

mkdir -p "$TMP/nginx-tls"
cat >"$TMP/nginx-tls/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx-tls/nginx.pid;
error_log $TMP/nginx-tls/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    ssl_session_cache off;
    ssl_session_tickets off;
    client_body_temp_path $TMP/nginx-tls/body;
    proxy_temp_path $TMP/nginx-tls/proxy;
    fastcgi_temp_path $TMP/nginx-tls/fastcgi;
    uwsgi_temp_path $TMP/nginx-tls/uwsgi;
    scgi_temp_path $TMP/nginx-tls/scgi;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl http2;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/cert.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
start_pinned "$PROXY_CPUS" "$TMP/nginx-tls/stdout" "$NGINX" -p "$TMP/nginx-tls" -c "$TMP/nginx-tls/nginx.conf"
NGINX_TLS_PID=$LAST_PID

for port in $AEGIS_TLS_PORT $BARE_TLS_PORT $NGINX_TLS_PORT; do
    for _ in $(seq 100); do
        [[ $(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/") == 200 ]] && break
        sleep 0.1
    done
done

# Usage: measure NAME PID PORT REQUESTS h2load-args...
measure() {
    local name=$1 pid=$2 port=$3 n=$4
    shift 4
    local before after out rps ticks
    before=$(cpu_ticks "$pid")
    out=$(taskset -c "$LOAD_CPUS" h2load -n "$n" "$@" "https://127.0.0.1:$port/" 2>&1)
    after=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/^finished in/ {print $4}')
    ticks=$(( ($(echo "$after" | cut -d' ' -f1) - $(echo "$before" | cut -d' ' -f1)) + ($(echo "$after" | cut -d' ' -f2) - $(echo "$before" | cut -d' ' -f2)) ))
    local ok
    ok=$(echo "$out" | awk '/^requests:/ {print $8}')
    printf '%-8s %-12s %10s req/s  %8.1f us CPU/request  (%s of %s succeeded)\n' \
        "$name" "$MODE" "$rps" "$(echo "$ticks * 1000000 / $CLK_TCK / $n" | bc -l)" "$ok" "$n"
}

# Usage: measure_system aegis|bare|nginx REQUESTS h2load-args...
measure_system() {
    local system=$1
    shift
    case $system in
        aegis) measure aegis "$AEGIS_PID" "$AEGIS_TLS_PORT" "$@" ;;
        bare) measure bare "$BARE_TLS_PID" "$BARE_TLS_PORT" "$@" ;;
        nginx) measure nginx "$NGINX_TLS_PID" "$NGINX_TLS_PORT" "$@" ;;
    esac
}

log "ROUNDS=${ROUNDS:-1}; proxy on core $PROXY_CPUS, backend and h2load on core $LOAD_CPUS"
for round in $(seq "${ROUNDS:-1}"); do
    log "round $round"
    MODE=handshakes
    for system in aegis bare nginx; do
        measure_system "$system" "$HANDSHAKES" --h1 -c 50 -m 1 -H 'Connection: close'
    done
    MODE=keep-alive
    for system in aegis bare nginx; do
        measure_system "$system" "$REQUESTS" --h1 -c 32 -m 1
    done
    MODE=h2
    for system in aegis bare nginx; do
        measure_system "$system" "$REQUESTS" -c 32 -m 10
    done
done
