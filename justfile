# Aegis developer recipes. `just --list` shows them; each names the plain cargo command it wraps.

# Fake backends on 8081-8083 and Aegis in front of them on :8080 (= cargo demo)
run *ARGS:
    cargo demo {{ARGS}}

# The whole test suite, exactly as CI runs it (= cargo test-all)
test:
    cargo test-all

# Only the fast unit tests of the aegis library (= cargo test --lib)
unit:
    cargo test --lib

# Format, lint and test: what must pass before every commit (cargo test-all runs all three)
check:
    cargo test-all

# Validate a config without opening any port (= cargo run -- -t -c FILE)
validate FILE="conf/aegis.yml":
    cargo run --quiet -- -t -c {{FILE}}

# Start only the fake backends on 8081-8083 (= cargo run --profile ci -p fake-backends)
backends:
    cargo run --profile ci -p fake-backends

# Criterion micro-benchmarks of the request-path layers (= cargo bench --bench request_path)
bench:
    cargo bench --bench request_path

# Side-by-side load benchmark: Aegis vs bare Pingora vs nginx vs HAProxy (= benches/load/run.sh)
bench-load:
    bash benches/load/run.sh

# What an open web dashboard costs: page weight, Aegis CPU with and without it (= benches/load/web_dashboard.sh)
bench-web-dashboard:
    bash benches/load/web_dashboard.sh

# TLS load figures: Aegis vs nginx terminating TLS, new connections and keep-alive (= benches/load/tls.sh)
bench-tls:
    bash benches/load/tls.sh

# Latency at a fixed offered load, half of nginx's saturation rate (= bash benches/load/fixed_rate.sh)
bench-fixed-rate:
    bash benches/load/fixed_rate.sh

# Instructions per request, Aegis vs bare Pingora, under callgrind (= bash benches/load/callgrind.sh)
bench-callgrind:
    bash benches/load/callgrind.sh

# RSS idle, under load, after many clients and with 10k idle connections (= bash benches/load/memory.sh)
bench-memory:
    bash benches/load/memory.sh

# Dashboard for a running (e.g. daemonized) instance (= cargo run -- dashboard --admin ADDR);
# built with the tests' `ci` profile, which needs no minutes-long whole-program link
dashboard ADDR="127.0.0.1:9100":
    cargo run --profile ci --bin aegis -- dashboard --admin {{ADDR}}

# Graceful binary upgrade of a running daemon (docs/operations.md): the new binary takes the
# listening sockets over, then the old one drains and exits
upgrade CONF="conf/aegis.yml" PIDFILE="/tmp/aegis.pid":
    #!/usr/bin/env bash
    set -euo pipefail
    old=$(cat "{{PIDFILE}}")
    cargo build --release --bin aegis
    target/release/aegis -d -u -c "{{CONF}}" &
    sleep 1 # the new process waits on server.upgrade_sock for the sockets
    kill -QUIT "$old"
    wait
    echo "upgraded: old pid $old, new pid $(cat "{{PIDFILE}}")"
