"""Oversize and garbage: every kind of malformed connection gets its error
(where the channel still works) and a close, every time, and a storm of
them does not make the relay's memory grow."""
import subprocess
from concurrent.futures import ThreadPoolExecutor
import json

from kl import PROBE, check, main, new_relay
from probe_user import BAD_REQUEST, UNAUTHENTICATED, ProbeUser, rss_kib, small_asan_quarantine

REPEAT = 300
# kind -> the error code the relay must send before closing, or None when
# nothing can be said (no Noise channel yet, or it is broken).
KINDS = {
    "garbage": None,      # random bytes instead of a handshake
    "truncated": None,    # length prefix of 65535, 3 bytes, EOF
    "hsbig": None,        # a 4096-byte "handshake message" (limit 128)
    "badcipher": None,    # transport message failing authentication
    "bigcipher": None,    # a maximal 65535-byte transport message of noise
    "partial": None,      # 1000 bytes of a 65535-byte frame, then EOF
    "badframe": BAD_REQUEST,   # valid Noise, undecodable protobuf
    "badlen": BAD_REQUEST,     # valid Noise, protobuf length field 2^31
    "empty": BAD_REQUEST,      # zero-length frame
    "wrongbody": BAD_REQUEST,  # a deliver frame sent to the relay
    "zeroid": BAD_REQUEST,     # request id 0
    "unauth": UNAUTHENTICATED,  # fetch before auth
}
# Growth allowed over the whole storm. The storm pushes some 30 MB through
# the relay in 3,600 connections, so keeping any frame buffer (64 KiB) per
# connection, or a few KiB of state per closed connection, goes far over
# it; what it leaves room for is memory that is reused rather than
# returned: malloc arenas of the loop and storage threads, sqlite's page
# cache (2 MiB) and, under ASan, its small remaining quarantine.
RSS_BOUND_KIB = 8 * 1024


def storm(relay, kind, n):
    key = relay.status()["public_key"]
    r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, "storm", kind, str(n)],
                       capture_output=True, timeout=300)
    check(r.returncode == 0, "storm %s failed: %s" % (kind, r.stderr.decode()))
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def run_storms(relay, n):
    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(lambda k: storm(relay, k, n), KINDS))
    for res in results:
        kind, want = res["kind"], KINDS[res["kind"]]
        check(res["failed"] == 0, "%s: every connection got through the handshake: %r" % (kind, res))
        check(res["closed"] == n, "%s: the relay closed every connection: %r" % (kind, res))
        if want is None:
            check(res["no_error_frame"] == n, "%s: nothing sent on a broken channel: %r"
                  % (kind, res))
        else:
            check(res["codes"] == {str(want): n}, "%s: error %d every time: %r" % (kind, want, res))


def test_garbage_storm_error_close_and_bounded_memory(root, relays):
    small_asan_quarantine()
    relay = new_relay(root, relays)
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    # Warm up: the first connections of each kind fault in code, malloc
    # arenas and sqlite caches once.
    run_storms(relay, 20)
    acked, _, _ = alice.send(bob, 50, "--size", 1000)
    bob.receive()
    before = rss_kib(relay.proc.pid)
    run_storms(relay, REPEAT)
    # Legitimate traffic still flows after the storm.
    acked, errors, _ = alice.send(bob, 50, "--size", 1000)
    check(len(acked) == 50 and not errors, "sends after the storm: %r" % errors)
    entries, _ = bob.receive()
    check([e["i"] for e in entries] == list(range(50)), "receive after the storm")
    after = rss_kib(relay.proc.pid)
    print("relay RSS %d KiB before, %d KiB after %d bad connections (+%d KiB, bound +%d KiB)"
          % (before, after, REPEAT * len(KINDS), after - before, RSS_BOUND_KIB), flush=True)
    check(after - before <= RSS_BOUND_KIB, "relay RSS grew by %d KiB" % (after - before))
    check(relay.proc.poll() is None, "relay still running")


if __name__ == "__main__":
    main([test_garbage_storm_error_close_and_bounded_memory])
