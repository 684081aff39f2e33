"""Crash durability: a sender keeps sending while the relay is killed with
SIGKILL again and again; every message the sender saw acknowledged is
delivered, exactly once, in the order it was sent."""
import json
import os
import random
import time

from kl import check, main, new_relay
from probe_user import ProbeUser

N = 2000
KILLS = 5
WINDOW = 8


def check_delivery(acked, entries, kills):
    """acked: {i: seq} the sender saw acknowledged; entries: what the
    receiver fetched, in seq order.

    What "exactly once" means here: the sender resends every message that
    was in flight when the relay died, because it cannot know whether the
    relay committed it before dying. So a message may be stored twice, but
    only when an earlier attempt was never acknowledged. The contract is:
      - every acknowledged (i, seq) is delivered, under that seq, with the
        body of i, and no seq is delivered twice;
      - acknowledged entries, in seq order, carry strictly increasing i
        (the sender's order);
      - every other entry is an unacknowledged earlier attempt of some i:
        it comes before that i's acknowledged entry, and there are at most
        as many as could have been in flight at the kills."""
    seqs = [e["seq"] for e in entries]
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
          "entries are delivered in seq order, each seq once")
    check(all(e["ok"] for e in entries), "every body arrives intact")
    by_seq = {e["seq"]: e["i"] for e in entries}
    lost = [(i, s) for i, s in sorted(acked.items()) if by_seq.get(s) != i]
    check(not lost, "acknowledged messages lost or altered (i, seq): %r" % lost[:10])
    acked_seqs = set(acked.values())
    order = [by_seq[s] for s in sorted(acked_seqs)]
    check(all(a < b for a, b in zip(order, order[1:])), "acknowledged messages are in send order")
    extra = [e for e in entries if e["seq"] not in acked_seqs]
    for e in extra:
        check(e["i"] in acked and e["seq"] < acked[e["i"]],
              "unacknowledged entry %r is an earlier attempt of an acknowledged message" % e)
    check(len(extra) <= kills * WINDOW, "at most the in-flight sends are stored twice: %d"
          % len(extra))
    return len(extra)


def test_kill9_while_sending(root, relays):
    seed = int(os.environ.get("KL_CRASH_SEED", time.time_ns() % 1000000))
    rnd = random.Random(seed)
    print("seed %d (KL_CRASH_SEED reproduces the kill points)" % seed, flush=True)
    relay = new_relay(root, relays)
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    kill_at = sorted(rnd.sample(range(100, N - 100), KILLS))
    sender = alice.start("sendloop", bob.address, N, "--window", WINDOW, "--size", 200,
                         "--retry")
    sender.stdin.close()
    acked, lines, kills = {}, [], 0
    # Acks read after a kill may have been sent before it. So the next kill
    # waits until the sender has reported the last one ("disconnected") and
    # got an ack from the new relay: every kill hits a connected sender.
    waiting = None  # None, "disconnect" or "ack"
    try:
        for raw in sender.stdout:
            line = json.loads(raw)
            lines.append(line)
            if line.get("event") == "disconnected" and waiting == "disconnect":
                waiting = "ack"
            if "seq" not in line:
                continue
            check(line["i"] not in acked, "i=%d acknowledged twice" % line["i"])
            acked[line["i"]] = line["seq"]
            if waiting == "ack":
                waiting = None
            if kills < KILLS and len(acked) >= kill_at[kills] and waiting is None:
                # A random moment: some sends in flight, maybe a group
                # commit half written.
                time.sleep(rnd.random() * 0.004)
                relay.kill9()
                kills += 1
                relay.start()
                waiting = "disconnect"
        rc = sender.wait(timeout=120)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    check(rc == 0 and lines and lines[-1].get("done"), "sender finished: rc=%s %r" % (rc, lines[-3:]))
    check(kills == KILLS, "relay killed %d times" % kills)
    # The test reads the sender's output behind the sender itself, so the
    # last kill can land after the final sends were already acknowledged:
    # then that kill interrupts nothing. Every earlier kill must have.
    check(KILLS - 1 <= lines[-1]["reconnects"] <= KILLS,
          "every kill interrupted the sender (reconnects %r)" % lines[-1])
    check(sorted(acked) == list(range(N)), "every message was eventually acknowledged")
    entries, last = bob.receive()
    extra = check_delivery(acked, entries, KILLS)
    print("delivered %d entries for %d messages (%d resent after a kill)"
          % (len(entries), N, extra), flush=True)
    # Acked on the relay: nothing comes back, also after one more crash.
    check(last["acked"], "receiver acked")
    relay.kill9()
    relay.start()
    again, _ = bob.receive()
    check(again == [], "acked entries are gone after another crash: %r" % again[:3])


def test_kill9_between_batches_keeps_relay_usable(root, relays):
    """Kills land before, during and after commits of single sends too
    (window 1); afterwards the relay serves new users and messages."""
    relay = new_relay(root, relays)
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    acked = {}
    for k in range(3):
        sender = alice.start("sendloop", bob.address, 100, "--start", k * 100, "--retry")
        sender.stdin.close()
        for raw in sender.stdout:
            line = json.loads(raw)
            if "seq" in line:
                acked[line["i"]] = line["seq"]
                if len(acked) == k * 100 + 50:
                    relay.kill9()
                    relay.start()
        check(sender.wait(timeout=120) == 0, "sender %d finished" % k)
    entries, _ = bob.receive()
    check_delivery(acked, entries, 3)
    carol = ProbeUser(root, relay, "carol").register()
    got, _, _ = alice.send(carol, 5)
    check(len(got) == 5, "relay keeps working after the crashes")
    check([e["i"] for e in carol.receive()[0]] == list(range(5)), "carol gets her messages")


if __name__ == "__main__":
    main([test_kill9_while_sending, test_kill9_between_batches_keeps_relay_usable])
