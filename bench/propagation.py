"""How long a kill switch or a revoke takes to reach every gunicorn worker that caches resolve.

``measure`` opens ``connections`` keep-alive connections to the app (each stays with the worker that
accepted it; /proc tells which, so the figure says how many workers it covered), lets each resolve
one prompt until its worker answers from its cache, makes the change through the service in this
process, and has every connection poll until it is refused. The figure is the time from the
service's return (the commit is done) to the last connection's first refusal.

Standard library only, like harness.py; the change itself is a callable the caller passes.
"""

import http.client
import os
import statistics
import threading
import time
from pathlib import Path

from harness import CouldNotRun


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _workers(master_pid):
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            workers.append(int(stat.parent.name))
    return workers


def worker_of_each(master_pid, server_port, client_ports):
    """``{client port: worker pid}``: the server side of each connection, found in /proc/net/tcp."""
    by_inode = {inode: pid for pid in _workers(master_pid) for inode in _socket_inodes(pid)}
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port in client_ports and fields[9] in by_inode:
                found[remote_port] = by_inode[fields[9]]
    return found


def _warm(client, path, headers, deadline):
    """Fill this connection's worker's cache, then be answered from it three times (a change just
    undone may still be on its way, so a refusal only restarts the count, until the deadline)."""
    served, give_up = 0, time.monotonic() + deadline
    while served < 4:
        client.request("GET", path, headers=headers)
        response = client.getresponse()
        response.read()
        served = served + 1 if response.status == 200 else 0
        if time.monotonic() > give_up:
            raise CouldNotRun(f"GET {path} answered {response.status} before the change")


def _spread(master_pid, port, path, headers, connections, deadline):
    """``connections`` warm connections, as evenly over the workers as the kernel lets them land:
    more are opened (up to ten times as many) and the surplus of the busiest worker closed."""
    opened = []
    for attempt in range(10):
        if attempt:
            time.sleep(0.2)  # a busy machine may leave one worker out of a round of accepts
        for _ in range(connections):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            _warm(client, path, headers, deadline)
            opened.append(client)
        owner = worker_of_each(master_pid, port, {c.sock.getsockname()[1] for c in opened})
        by_worker = {}
        for client in opened:
            by_worker.setdefault(owner.get(client.sock.getsockname()[1]), []).append(client)
        share = connections // max(1, len(_workers(master_pid)))
        if len(by_worker) >= len(_workers(master_pid)) and all(len(c) >= share for c in by_worker.values()):
            break
    keep, chosen = [], {pid: clients[:share] for pid, clients in by_worker.items()}
    for group in chosen.values():
        keep.extend(group)
    for client in opened:  # the rest, from whichever worker has more, up to ``connections``
        if len(keep) >= connections:
            break
        if client not in keep:
            keep.append(client)
    for client in opened:
        if client not in keep:
            client.close()
    return keep, owner


def measure(*, master_pid, port, path, token, change, refused, connections=16, deadline=10.0):
    """Seconds from ``change()`` returning to the last connection's first answer in ``refused``,
    with the spread over connections and the workers they were on."""
    headers = {"Authorization": f"Bearer {token}"}
    clients, workers = _spread(master_pid, port, path, headers, connections, deadline)
    ports = {client.sock.getsockname()[1]: i for i, client in enumerate(clients)}
    first_refusal = [None] * connections
    polls = [0] * connections
    start = threading.Event()
    stop_at = [time.monotonic() + 60]

    def poll(i):
        client = clients[i]
        start.wait()
        while time.monotonic() < stop_at[0]:
            client.request("GET", path, headers=headers)
            response = client.getresponse()
            response.read()
            polls[i] += 1
            if response.status in refused:
                first_refusal[i] = time.monotonic()
                return

    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    start.set()
    time.sleep(0.3)  # every connection is polling, answered from its worker's cache
    before = time.monotonic()
    change()
    committed = time.monotonic()
    stop_at[0] = committed + deadline
    for thread in threads:
        thread.join(deadline + 15)
    for client in clients:
        client.close()
    if any(t is None for t in first_refusal):
        missing = sum(t is None for t in first_refusal)
        raise CouldNotRun(f"{missing} of {connections} connections were still served {deadline} s after the change")
    delays = [max(0.0, t - committed) for t in first_refusal]
    per_worker = {}
    for client_port, i in ports.items():
        per_worker.setdefault(workers.get(client_port, "unknown"), []).append(delays[i])
    return {
        "max": max(delays), "median": statistics.median(delays), "change": committed - before,
        "workers": {pid: (len(d), max(d)) for pid, d in per_worker.items()}, "polls": sum(polls),
    }


def describe(name, result):
    workers = ", ".join(
        f"{count} on worker {pid} (last {late * 1000:.0f} ms)" for pid, (count, late) in sorted(
            result["workers"].items(), key=lambda item: str(item[0]))
    )
    return (f"{name}: every connection refused {result['max'] * 1000:.0f} ms after the commit at most "
            f"(median {result['median'] * 1000:.0f} ms; the service call took {result['change'] * 1000:.0f} ms; "
            f"{workers})")
