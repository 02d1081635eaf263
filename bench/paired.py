#!/usr/bin/env python3
"""Paired rounds: two builds of the host kept running side by side, loaded in
alternating short wrk rounds (ABBA order), each round's ratio taken on its
own; prints the median and the quartiles of the ratios, and each server's
CPU time per request (docs/performance.md, "Judging a change").

    python3 bench/paired.py --rounds 16 --seconds 2 --paths /,/hello \\
        old=/tmp/old/host:/tmp/old/plugins.json new=target/release/host:plugins.json

Each side is NAME=HOST_BINARY:MOUNT_TABLE; the ratio is the second side's
over the first's. Installs wrk when missing (`.ci/install bench`). Both servers listen on free ports of 127.0.0.1.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid):
    """CPU time of a process, in all and in user space, from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + system) / ticks, user / ticks


def wait_listening(port, process):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"a server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("a server did not start listening")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--paths", default="/hello")
    parser.add_argument("sides", nargs=2, metavar="NAME=HOST:TABLE")
    options = parser.parse_args()
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([os.path.join(repository, ".ci", "install"), "bench"], check=True)

    servers = []
    for side in options.sides:
        name, rest = side.split("=", 1)
        binary, table = rest.split(":", 1)
        port = free_port()
        process = subprocess.Popen(
            [binary, "serve", "--config", table, "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append((name, port, process))
    try:
        for _, port, process in servers:
            wait_listening(port, process)
        for path in options.paths.split(","):
            measure(servers, path, options)
    finally:
        for _, _, process in servers:
            process.terminate()
            process.wait()


def run(server, path, options):
    """One wrk round against one server: requests a second, and CPU µs a
    request in all and in user space."""
    _, port, process = server
    before = cpu_seconds(process.pid)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{options.connections}", f"-d{options.seconds}s",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    after = cpu_seconds(process.pid)
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = max(int(re.search(r"(\d+) requests in", output).group(1)), 1)
    return (
        per_second,
        (after[0] - before[0]) / requests * 1e6,
        (after[1] - before[1]) / requests * 1e6,
    )


def measure(servers, path, options):
    first, second = servers
    for server in servers:  # warm-up, not counted
        run(server, path, options)
    ratios, seen = [], {first[0]: [], second[0]: []}
    for round_number in range(options.rounds):
        order = servers if round_number % 2 == 0 else servers[::-1]
        result = {server[0]: run(server, path, options) for server in order}
        ratios.append(result[second[0]][0] / result[first[0]][0])
        for name, figures in result.items():
            seen[name].append(figures)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [min(ratios), 0, max(ratios)]
    median = lambda values: statistics.median(values)
    described = "; ".join(
        f"{name} {median([f[0] for f in figures]):.0f} req/s, "
        f"{median([f[1] for f in figures]):.2f} µs CPU/req ({median([f[2] for f in figures]):.2f} user)"
        for name, figures in seen.items()
    )
    print(
        f"{path}: {second[0]}/{first[0]} {median(ratios):.3f} "
        f"(quartiles {quartiles[0]:.3f} to {quartiles[2]:.3f}, {len(ratios)} rounds); {described}",
        flush=True,
    )


if __name__ == "__main__":
    main()
