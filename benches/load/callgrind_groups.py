#!/usr/bin/env python3
"""Reads a callgrind dump and prints where the instructions went, per request.

  callgrind_groups.py DUMP REQUESTS [TOP [PATTERN]]

Exclusive instruction counts (Ir) per function are read straight from the dump, so that the
functions still on a thread's stack when it was dumped mid-run are not counted with their callees'
cost (callgrind_annotate shows such frames at ~100 %). They are then grouped by what they belong
to: Pingora core, Aegis layers, logging, formatting, allocation, tokio, libc, other. With
PATTERN (a regular expression), also prints the inclusive cost of the matching functions, e.g.
the proxy phases: `'AegisProxy as pingora_proxy::ProxyHttp>::'`. Inclusive costs of recursive
functions count their recursion more than once.
"""

import re
import sys
from collections import defaultdict

# First match wins; patterns are tried against the demangled function name.
GROUPS = [
    (
        "allocation (malloc/free)",
        re.compile(
            r"^(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|_int_realloc|"
            r"malloc_consolidate|unlink_chunk|tcache_|__libc_malloc|__libc_free|__libc_realloc|"
            r"__rustc::__rust_(alloc|dealloc|realloc)|__rustc::__rdl_|__rdl_|__rust_(alloc|dealloc))"
            r"|^alloc::raw_vec|^alloc::alloc::"
        ),
    ),
    (
        "logging (access log: log, env_logger, JSON)",
        re.compile(
            r"aegis::logging|^<?log::|env_logger|anstream|anstyle|serde_json|jiff|humantime|"
            r"env_filter|value_bag|aegis::proxy::AegisProxy.*logging|aegis::security::mask"
        ),
    ),
    ("formatting (core::fmt)", re.compile(r"^core::fmt|^alloc::fmt|^<.* as core::fmt::|^<&.* as core::fmt")),
    ("tokio / mio", re.compile(r"^<?tokio|^<?mio::|tokio::runtime")),
    ("Aegis layers", re.compile(r"aegis::")),
    (
        "Pingora core (+ http, httparse, bytes)",
        re.compile(r"pingora|^<?httparse|^<?http::|^<?bytes::|^<?h2::|^<?http_body|^<&?http::"),
    ),
    (
        "libc (memcpy, syscall wrappers, vDSO)",
        re.compile(
            r"^(__)?mem(cpy|move|set|cmp|chr)|^__memcpy|^__memmove|^__memset|^__memcmp|^__libc|"
            r"^__GI|^epoll|^send|^recv|^read|^write|^__write|^__read|^clock_gettime|^__vdso|"
            r"^syscall|^pthread|^__pthread|^__lll|^_?_?strlen|^__strlen|^__x86|^__GI_|^accept|"
            r"^getrandom|^__getrandom|^__clock_gettime|^_dl_|^__tls_get_addr"
        ),
    ),
    ("uuid / getrandom (request id)", re.compile(r"uuid|getrandom|rand::|rand_chacha|rand_core")),
]
OTHER = "other (std, core, hashing, …)"

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def read_costs(path):
    """Exclusive and inclusive Ir per function (inclusive = exclusive + the calls it makes)."""
    names = {}
    costs = defaultdict(int)
    inclusive = defaultdict(int)
    current = None
    skip_next_cost = False
    summary = None
    with open(path, errors="replace") as dump:
        for raw in dump:
            line = raw.rstrip("\n")
            if not line:
                continue
            if line.startswith("summary:"):
                summary = int(line.split()[1])
                continue
            if line.startswith("fn="):
                current = resolve(names, line[3:])
                continue
            if line.startswith("cfn="):
                resolve(names, line[4:])
                continue
            if line.startswith("calls="):
                # The next cost line is the call's inclusive cost: the callee's, not ours.
                skip_next_cost = True
                continue
            first = line[0]
            if first.isdigit() or first in "+-*":
                parts = line.split()
                if len(parts) < 2 or current is None:
                    skip_next_cost = False
                    continue
                inclusive[current] += int(parts[1])
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                costs[current] += int(parts[1])
    return costs, inclusive, summary


def resolve(names, text):
    match = NAME.match(text)
    if not match:
        return text
    key, name = match.groups()
    if name is not None:
        names[key] = name
    return names.get(key, text)


def group_of(function):
    for group, pattern in GROUPS:
        if pattern.search(function):
            return group
    return OTHER


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, requests = argv[0], int(argv[1])
    top = int(argv[2]) if len(argv) > 2 else 25
    pattern = re.compile(argv[3]) if len(argv) > 3 else None
    costs, inclusive, summary = read_costs(path)
    total = sum(costs.values())
    print(f"total {total:,} Ir (dump summary {summary:,}), {total // requests:,} per request")
    groups = defaultdict(int)
    for function, cost in costs.items():
        groups[group_of(function)] += cost
    print("-- by group: Ir per request, share")
    for group, cost in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{cost // requests:>10,}  {100 * cost / total:5.1f}%  {group}")
    print(f"-- top {top} functions: exclusive Ir per request, share, group")
    for function, cost in sorted(costs.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{cost // requests:>10,}  {100 * cost / total:5.1f}%  {function[:110]}  [{group_of(function).split(' (')[0]}]")
    if pattern:
        print(f"-- inclusive Ir per request of functions matching {pattern.pattern!r}")
        matching = [(f, c) for f, c in inclusive.items() if pattern.search(f)]
        for function, cost in sorted(matching, key=lambda kv: -kv[1]):
            print(f"{cost // requests:>10,}  {100 * cost / total:5.1f}%  {function[:130]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
