"""Durability: the relay loses nothing it acknowledged when it is killed."""
import glob
import os
import shutil

from kl import Client, check, main, new_relay


def test_kill9_between_send_and_receive(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    for i in range(3):
        alice.ok("send", bob.address, "før krasj %d" % i)
    relay.kill9()
    relay.start()
    msgs = bob.receive()
    check([m["text"] for m in msgs] == ["før krasj %d" % i for i in range(3)],
          "every acknowledged message arrives after kill -9: %r" % msgs)
    # Acked entries are deleted; another crash does not bring them back.
    relay.kill9()
    relay.start()
    check(bob.receive() == [], "delivered once, never again after a second crash")
    alice.ok("send", bob.address, "etter krasj")
    check([m["text"] for m in bob.receive()] == ["etter krasj"], "relay keeps working")


def test_redelivery_after_lost_ack_is_shown_once(root, relays):
    """At-least-once from the relay shows as exactly once: roll the relay's
    database back to before bob's ack (as if the ack had been lost), so the
    relay delivers the same entry again."""
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "bare en gang")
    relay.stop()
    backup = os.path.join(root, "relay-backup")
    os.mkdir(backup)
    for p in glob.glob(relay.db_path() + "*"):
        shutil.copy2(p, backup)
    relay.start()
    check([m["text"] for m in bob.receive()] == ["bare en gang"], "first delivery")
    relay.stop()
    for p in glob.glob(relay.db_path() + "*"):
        os.unlink(p)
    for p in glob.glob(os.path.join(backup, "*")):
        shutil.copy2(p, relay.data)
    relay.start()
    check(bob.receive() == [], "a redelivered entry is not shown twice")
    alice.ok("send", bob.address, "ny melding")
    check([m["text"] for m in bob.receive()] == ["ny melding"], "later messages still arrive")
    hist = bob.jsonl("history")
    check([h["text"] for h in hist] == ["bare en gang", "ny melding"], "history holds each once: %r" % hist)


if __name__ == "__main__":
    main([test_kill9_between_send_and_receive, test_redelivery_after_lost_ack_is_shown_once])
