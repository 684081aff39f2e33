#!/usr/bin/env python3
"""What an unauthenticated connection to a relay's federation port costs the
relay: start `kollega-relay serve` with N configured peers (random keys,
unreachable addresses), open ATTEMPTS connections that each send one
64-byte first frame of random bytes (no valid hint, no valid handshake), and
report the relay's CPU time per attempt (from /proc, so other load on the
machine does not count). Give one or more relay binaries to compare them.

  tools/fed-handshake-cost.py [--peers 1,60] [--attempts 300] build/kollega-relay [OLD_BINARY]
"""
import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(relay, peers, attempts):
    root = tempfile.mkdtemp(prefix="kl-fedcost-")
    data = os.path.join(root, "data")
    try:
        subprocess.run([relay, "init", "--data", data, "--name", "oslo.test", "--listen",
                        "127.0.0.1:0"], check=True, capture_output=True)
        for i in range(peers):
            key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
            subprocess.run([relay, "peer", "add", "--data", data, "p%d.test" % i, "127.0.0.1:9",
                            key], check=True, capture_output=True)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen([relay, "serve", "--data", data, "--listen", "127.0.0.1:0",
                              "--federation-listen", "127.0.0.1:%d" % port,
                              "--federation-retry-max", "3600"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            while b"listening" not in p.stdout.readline():
                if p.poll() is not None:
                    sys.exit("%s serve exited" % relay)
            time.sleep(1)
            c0 = cpu_seconds(p.pid)
            for _ in range(attempts):
                c = socket.create_connection(("127.0.0.1", port))
                frame = os.urandom(64)
                c.sendall(len(frame).to_bytes(2, "big") + frame)
                c.settimeout(5)
                try:
                    while c.recv(4096):
                        pass
                except OSError:
                    pass
                c.close()
            return (cpu_seconds(p.pid) - c0) / attempts * 1000
        finally:
            p.terminate()
            p.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="1,60", help="peer counts to try (comma separated)")
    ap.add_argument("--attempts", type=int, default=300)
    ap.add_argument("relays", nargs="+", help="kollega-relay binaries")
    a = ap.parse_args()
    print("%-40s %6s %s" % ("relay", "peers", "relay CPU per unauthenticated attempt"))
    for relay in a.relays:
        for n in [int(x) for x in a.peers.split(",")]:
            ms = measure(relay, n, a.attempts)
            print("%-40s %6d %8.3f ms" % (relay[-40:], n, ms), flush=True)


if __name__ == "__main__":
    main()
