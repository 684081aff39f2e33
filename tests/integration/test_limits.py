"""Per-connection and per-inbox limits under abuse: a flooding client is
rate limited but stays connected while others are served; a client that
stops reading does not grow the relay's memory and still gets everything;
a full inbox refuses sends with QUOTA_EXCEEDED and loses nothing."""
import json

from kl import check, main, new_relay
from probe_user import QUOTA_EXCEEDED, ProbeUser, rss_kib, small_asan_quarantine


def test_flood_is_rate_limited_others_served(root, relays):
    # Every connection may send 100 frames per second after a burst of 200.
    relay = new_relay(root, relays, extra=["--rate", "100", "--burst", "200"])
    mallory = ProbeUser(root, relay, "mallory").register(relay.first_invite)
    alice = ProbeUser(root, relay, "alice").register()
    bob = ProbeUser(root, relay, "bob").register()
    flood = mallory.start("flood")
    try:
        first = json.loads(flood.stdout.readline())
        check(first.get("event") == "limited", "the flood is rate limited: %r" % first)
        # While mallory floods: alice's 150 sends (under her own burst) all
        # go through, none rate limited, and bob gets every one.
        acked, errors, _ = alice.send(bob, 150, "--size", 200)
        check(len(acked) == 150 and not errors, "alice is served during the flood: %r" % errors[:3])
        entries, _ = bob.receive()
        check([e["i"] for e in entries] == list(range(150)), "bob gets alice's messages")
        flood.stdin.close()
        res = json.loads(flood.stdout.read().decode().strip().splitlines()[-1])
        check(flood.wait(timeout=60) == 0, "flood probe exited cleanly")
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    print("flood: %r" % res, flush=True)
    check(res["rate_limited"] > 0, "RATE_LIMITED errors for the flood")
    check(res["answered"] == res["sent"], "every flood frame was answered (pong or error)")
    check(res["other"] == 0, "only pongs and RATE_LIMITED: %r" % res)
    check(not res["closed"] and res["final_pong"],
          "the flooding client stays connected and is served once it slows down")
    log = relay.read_log()
    check("closed (rate" not in log, "nobody was disconnected for the rate")


def test_slow_reader_bounded_memory_gets_everything(root, relays):
    small_asan_quarantine()
    relay = new_relay(root, relays, extra=["--write-queue", "65536"])
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    # Warm up the relay's buffers and sqlite cache with large messages.
    alice.send(bob, 20, "--size", 60000)
    bob.receive()
    reader = bob.start("recv", "--hold")
    try:
        first = json.loads(reader.stdout.readline())
        check(first.get("event") == "authed", "reader authenticated: %r" % first)
        before = rss_kib(relay.proc.pid)
        # 300 x 60 KB = 18 MB sent to a connection that reads nothing.
        acked, errors, _ = alice.send(bob, 300, "--size", 60000, "--window", 4)
        check(len(acked) == 300 and not errors, "every send acknowledged: %r" % errors[:3])
        during = rss_kib(relay.proc.pid)
        reader.stdin.close()
        lines = [json.loads(l) for l in reader.stdout.read().decode().splitlines() if l.strip()]
        check(reader.wait(timeout=120) == 0, "reader finished")
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    entries = [l for l in lines if "seq" in l]
    last = lines[-1]
    print("slow reader: RSS %d KiB before, %d KiB with 18 MB queued for it; %d pushed before "
          "the cap, %d fetched" % (before, during, last["pushed"], len(entries)), flush=True)
    # The cap is 64 KiB per connection; 18 MB of pushes were offered. A
    # relay that queued them would grow by all of it.
    check(during - before <= 8 * 1024, "relay RSS grew by %d KiB" % (during - before))
    check(last["pushed"] < 300, "pushes stopped at the write-queue cap (%d)" % last["pushed"])
    got = {e["seq"]: e["i"] for e in entries}
    check(all(e["ok"] for e in entries), "bodies intact")
    check(all(got.get(s) == i for i, s in acked.items()),
          "every acknowledged message is fetched when the reader reads again")
    check(last["acked"], "reader acked")
    check(bob.receive()[0] == [], "nothing left after the ack")


def test_inbox_quota(root, relays):
    relay = new_relay(root, relays, extra=["--quota-entries", "20"])
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    acked, errors, _ = alice.send(bob, 25)
    check(sorted(acked) == list(range(20)), "the first 20 fit: %r" % sorted(acked))
    check([e["error_code"] for e in errors] == [QUOTA_EXCEEDED] * 5,
          "then QUOTA_EXCEEDED: %r" % errors)
    entries, last = bob.receive()
    check([(e["i"], e["seq"]) for e in entries] == sorted(acked.items()),
          "every acknowledged message is delivered, nothing else: %r" % entries)
    check(last["acked"], "bob acked")
    # The inbox has room again.
    acked2, errors2, _ = alice.send(bob, 5, "--start", 20)
    check(sorted(acked2) == list(range(20, 25)) and not errors2, "sends succeed after the ack")
    check([e["i"] for e in bob.receive()[0]] == list(range(20, 25)), "and arrive")


def test_inbox_byte_quota(root, relays):
    relay = new_relay(root, relays, extra=["--quota-bytes", "100000"])
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    acked, errors, _ = alice.send(bob, 5, "--size", 30000)
    check(sorted(acked) == [0, 1, 2] and [e["error_code"] for e in errors] == [QUOTA_EXCEEDED] * 2,
          "three 30 KB bodies fit in 100 KB: %r %r" % (acked, errors))
    small, small_errors, _ = alice.send(bob, 1, "--size", 9000, "--start", 5)
    check(list(small) == [5] and not small_errors, "a body that still fits is accepted")
    entries, _ = bob.receive()
    check([e["i"] for e in entries] == [0, 1, 2, 5], "nothing acknowledged is lost")


if __name__ == "__main__":
    main([test_flood_is_rate_limited_others_served, test_slow_reader_bounded_memory_gets_everything,
          test_inbox_quota, test_inbox_byte_quota])
