"""Run inside a load-balancer VM (``python3 -c``, through the guest agent): put servers in
or out of HAProxy's rotation through its admin socket; out, wait until their requests are done.

Arguments: the socket, the backend, ``maint`` or ``ready``, the servers. The guest has
Python (cloud-init's) and no socat; standard library only.
"""

import csv
import io
import socket
import sys
import time

DRAIN_SECONDS = 30


def ask(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def busy(path: str, backend: str, servers: list[str]) -> list[str]:
    rows = csv.DictReader(io.StringIO(ask(path, "show stat").removeprefix("# ")))
    return [
        r["svname"]
        for r in rows
        if r["pxname"] == backend and r["svname"] in servers and int(r["scur"] or 0)
    ]


def main(path: str, backend: str, state: str, *servers: str) -> None:
    for server in servers:
        answer = ask(path, f"set server {backend}/{server} state {state}").strip()
        if answer:
            sys.exit(f"{backend}/{server}: {answer}")
    deadline = time.monotonic() + DRAIN_SECONDS
    left = busy(path, backend, list(servers)) if state == "maint" else []
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = busy(path, backend, list(servers))
    if left:
        print(f"still serving after {DRAIN_SECONDS} s: {' '.join(left)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
