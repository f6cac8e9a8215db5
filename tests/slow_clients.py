"""Slow clients against `anvil serve` (used by tests/e2e_serve_slow.sh).

N connections from 127.0.0.1 each trickle a request one header line at a time; meanwhile another
client, from 127.0.0.2, asks /health and /v1/completions and must be answered within 1 s each. The
trickling connections over the server's limits must get a 503 with Retry-After, the others must be
closed once their request deadline passes. Prints the figures; exits 1 when a check fails.

usage: slow_clients.py PORT N REQUEST_TIMEOUT_S
"""
import json
import socket
import sys
import time

port, n_slow, deadline = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
failures = []


def request(method, path, body=None):
    """One request from 127.0.0.2; returns (status, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, time.monotonic() - t0


slow = []
for i in range(n_slow):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\n")
    s.setblocking(False)
    slow.append({"sock": s, "state": "open", "reply": b""})


def poll_slow(trickle):
    for c in slow:
        if c["state"] != "open":
            continue
        try:
            chunk = c["sock"].recv(65536)
            if chunk:
                c["reply"] += chunk
            else:
                c["state"] = "503" if c["reply"].startswith(b"HTTP/1.1 503") else "closed"
        except BlockingIOError:
            pass
        except ConnectionError:
            c["state"] = "503" if c["reply"].startswith(b"HTTP/1.1 503") else "closed"
        if c["state"] == "open" and trickle:
            try:
                c["sock"].send(b"X-Slow: 1\r\n")
            except (BlockingIOError, ConnectionError, OSError):
                pass


latencies = {"health": [], "completion": []}
t_start = time.monotonic()
rounds = 0
while time.monotonic() - t_start < deadline - 1:
    poll_slow(trickle=True)
    status, secs = request("GET", "/health")
    latencies["health"].append(secs)
    if status != 200:
        failures.append(f"/health answered {status}")
    status, secs = request("POST", "/v1/completions", {"prompt": "The farmer", "max_tokens": 4})
    latencies["completion"].append(secs)
    if status != 200:
        failures.append(f"/v1/completions answered {status}")
    rounds += 1
    time.sleep(0.25)

held = sum(c["state"] == "open" for c in slow)
refused = [c for c in slow if c["state"] == "503"]
without_retry = [c for c in refused if b"\r\nRetry-After: " not in c["reply"]]
# Keep trickling past the request deadline: the server must close every held connection.
until = time.monotonic() + 3
while time.monotonic() < until and any(c["state"] == "open" for c in slow):
    poll_slow(trickle=True)
    time.sleep(0.25)
still_open = sum(c["state"] == "open" for c in slow)
closed = sum(c["state"] == "closed" for c in slow)

worst = {k: max(v) for k, v in latencies.items()}
print(f"{n_slow} slow connections: {len(refused)} refused with 503, {held} held until their "
      f"{deadline:g} s request deadline, then {closed} closed by the server; {still_open} still open")
print(f"meanwhile from another address: {rounds} rounds, /health worst {worst['health'] * 1000:.0f} ms, "
      f"completion worst {worst['completion'] * 1000:.0f} ms")
if without_retry:
    failures.append(f"{len(without_retry)} 503 replies without Retry-After")
if still_open:
    failures.append(f"{still_open} trickling connections outlived the request deadline")
if not refused:
    failures.append("no connection over the limits got a 503")
if closed + len(refused) != n_slow:
    failures.append(f"{n_slow - closed - len(refused)} connections ended otherwise")
for k, v in worst.items():
    if v > 1.0:
        failures.append(f"{k} took {v:.2f} s (limit 1 s)")
for c in slow:
    c["sock"].close()
if failures:
    print("FAIL: " + "; ".join(sorted(set(failures))))
    sys.exit(1)
