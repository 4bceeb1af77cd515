#!/usr/bin/env python3
"""Small loopback HTTP/1.1 clients for the load and memory benchmarks in benches/load/.

  requests PORT N [CONNECTIONS]   exactly N keep-alive GETs, spread over CONNECTIONS sockets
                                  (for callgrind: a fixed amount of work)
  idle PORT COUNT HOLD_SECONDS    opens COUNT sockets, sends one keep-alive GET on each, reads the
                                  answer, prints "ready", keeps them all open HOLD_SECONDS
  distinct PORT SECONDS MAX PID   one short connection (one GET) from each of up to MAX distinct
                                  source addresses 127.a.b.c, 8 at a time, for at most SECONDS;
                                  prints the RSS of process PID every 25,000 clients

Standard library only; every socket goes to 127.0.0.1. Each answer is read to its end
(Content-Length), so a request counts only once it has been served.
"""

import socket
import struct
import sys
import threading
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: aegis-bench\r\n\r\n"


def read_response(sock, buffer=b""):
    """Reads one response with a Content-Length body; returns (status, leftover bytes)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response header")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the body")
        rest += chunk
    return status, rest[length:]


def connect(port, source=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if source:
        sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def close_with_reset(sock):
    """Closes without leaving a TIME_WAIT entry behind (SO_LINGER 0 sends a reset)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def requests(port, count, connections=1):
    socks = [connect(port) for _ in range(connections)]
    leftovers = [b""] * connections
    failures = 0
    started = time.monotonic()
    for i in range(count):
        k = i % connections
        socks[k].sendall(REQUEST)
        status, leftovers[k] = read_response(socks[k], leftovers[k])
        failures += status != 200
    elapsed = time.monotonic() - started
    for sock in socks:
        sock.close()
    print(f"{count} requests in {elapsed:.1f}s, {failures} not 200", flush=True)
    return 1 if failures else 0


def idle(port, count, hold):
    socks = []
    for _ in range(count):
        sock = connect(port)
        sock.sendall(REQUEST)
        status, _ = read_response(sock)
        if status != 200:
            print(f"unexpected status {status}", file=sys.stderr)
        socks.append(sock)
    print(f"ready: {len(socks)} idle keep-alive connections", flush=True)
    time.sleep(hold)
    for sock in socks:
        close_with_reset(sock)
    return 0


def source_address(i):
    """The i-th distinct loopback source address, skipping .0 and .255 in the last octet."""
    i, c = divmod(i, 254)
    b, a = i % 256, 1 + i // 256
    return f"127.{a}.{b}.{c + 1}"


def distinct(port, seconds, maximum, pid, workers=8):
    """Short connections from distinct sources, `workers` at a time (threads: the GIL is released
    while each waits for its answer)."""
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    lock = threading.Lock()
    state = {"next": 0, "served": 0, "reported": 0}
    print(f"clients=0 rss_kib={rss_kib(pid)}", flush=True)

    def worker():
        while time.monotonic() < deadline:
            with lock:
                index = state["next"]
                if index >= maximum:
                    return
                state["next"] += 1
            sock = connect(port, source_address(index))
            sock.sendall(REQUEST)
            status, _ = read_response(sock)
            close_with_reset(sock)
            with lock:
                state["served"] += status == 200
                done = state["served"]
                if done % 25000 == 0 and done > state["reported"]:
                    state["reported"] = done
                    print(f"clients={done} rss_kib={rss_kib(pid)}", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(
        f"done: {state['served']} distinct sources answered 200 in {elapsed:.0f}s, "
        f"rss_kib={rss_kib(pid)}",
        flush=True,
    )
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "requests":
        return requests(int(argv[1]), int(argv[2]), int(argv[3]) if len(argv) > 3 else 1)
    if len(argv) == 4 and argv[0] == "idle":
        return idle(int(argv[1]), int(argv[2]), float(argv[3]))
    if len(argv) == 5 and argv[0] == "distinct":
        return distinct(int(argv[1]), float(argv[2]), int(argv[3]), int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
