"""1:1 messaging end to end with real processes: registration from invites,
offline delivery both ways, exactly-once display, safety numbers, TOFU."""
import os
import sqlite3

from kl import Client, check, main, new_relay


def two_users(root, relays):
    relay = new_relay(root, relays)
    check(relay.first_invite is not None, "serve on a fresh data dir must print a first invite")
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    return relay, alice, bob


def test_register_and_whoami(root, relays):
    relay, alice, bob = two_users(root, relays)
    w = alice.json1("whoami")
    check(w["address"] == "alice@oslo.test", "address: %r" % w)
    check(len(w["identity_key"]) == 43, "identity key is 32 bytes base64url: %r" % w)
    check(bob.address == "bob@oslo.test", bob.address)


def test_invites_refused(root, relays):
    relay = new_relay(root, relays)
    token = relay.invite()
    Client(root, "first").init(token)
    rc, out, err = Client(root, "second").run("init", "--invite", token, "--name", "second",
                                               "--no-passphrase")
    check(rc == 1, "a reused invite must be refused with exit 1, got %d: %s" % (rc, err))
    check("invite" in err.lower(), "the error must say the invite was refused: %r" % err)
    bad = token.split("code=")[0] + "code=" + "A" * 22
    rc, out, err = Client(root, "third").run("init", "--invite", bad, "--name", "third",
                                             "--no-passphrase")
    check(rc == 1, "a wrong invite code must be refused, got %d" % rc)
    # N-use invites admit exactly N.
    multi = relay.invite("--uses", "2")
    Client(root, "m1").init(multi)
    Client(root, "m2").init(multi)
    rc, _, _ = Client(root, "m3").run("init", "--invite", multi, "--name", "m3", "--no-passphrase")
    check(rc == 1, "a 2-use invite must refuse the third registration")
    rc, _, err = Client(root, "badtoken").run("init", "--invite", "kollega:invite?nonsense",
                                              "--name", "x", "--no-passphrase")
    check(rc == 2, "a malformed token is a usage error (2), got %d: %s" % (rc, err))


def test_offline_delivery_both_directions(root, relays):
    relay, alice, bob = two_users(root, relays)
    sent = alice.json1("send", bob.address, "Hei Bob, har du tid til en prat i dag?")
    check(len(sent["id"]) == 32, "message id is 16 bytes hex: %r" % sent)
    alice.ok("send", bob.address, "andre melding")
    msgs = bob.receive()
    check([m["text"] for m in msgs] == ["Hei Bob, har du tid til en prat i dag?", "andre melding"],
          "bob receives both in order: %r" % msgs)
    m = msgs[0]
    check(m["from"] == alice.address and m["to"] == bob.address, "from/to: %r" % m)
    check(m["id"] == sent["id"], "ids match end to end")
    check(isinstance(m["sent_at"], int) and m["sent_at"] > 0, "sent_at: %r" % m)
    check(bob.receive() == [], "nothing is delivered twice")
    bob.ok("send", alice.address, "Ja, ring meg kl 14 🙂")
    got = alice.receive()
    check([x["text"] for x in got] == ["Ja, ring meg kl 14 🙂"], "alice gets the reply: %r" % got)
    for i in range(5):
        alice.ok("send", bob.address, "melding %d" % i)
        bob.ok("send", alice.address, "svar %d" % i)
    check([x["text"] for x in bob.receive()] == ["melding %d" % i for i in range(5)], "bob batch")
    check([x["text"] for x in alice.receive()] == ["svar %d" % i for i in range(5)], "alice batch")
    hist = alice.jsonl("history", bob.address, "--limit", "100")
    check(len(hist) == 13, "alice's history holds 13 messages, got %d" % len(hist))
    found = alice.jsonl("history", "--search", "RING MEG")
    check(len(found) == 1 and found[0]["direction"] == "in", "search finds the reply: %r" % found)
    text = alice.ok("history", bob.address, json_out=False)
    check("ring meg" in text, "human history shows text")


def test_stdin_and_large_message(root, relays):
    relay, alice, bob = two_users(root, relays)
    body = ("Lang tekst æøå " * 2000)[:30000]
    alice.ok("send", bob.address, "-", stdin=body.encode())
    msgs = bob.receive()
    check(len(msgs) == 1 and msgs[0]["text"] == body, "a 30 kB message read from stdin arrives intact")
    rc, out, err = alice.run("send", bob.address, "x" * 70000)
    check(rc != 0 and err, "a message over the body limit is refused with a clear error")


def test_safety_numbers_equal(root, relays):
    relay, alice, bob = two_users(root, relays)
    alice.ok("contact", "add", bob.address)
    bob.ok("contact", "add", alice.address)
    a = alice.json1("contact", "verify", bob.address)
    b = bob.json1("contact", "verify", alice.address)
    check(len(a["safety_number"]) == 60 and a["safety_number"].isdigit(), "60 digits: %r" % a)
    check(a["safety_number"] == b["safety_number"], "both sides see the same safety number")
    check(a["verified"] is False, "not verified before --confirm")
    c = alice.json1("contact", "verify", bob.address, "--confirm")
    check(c["verified"] is True, "verified after --confirm: %r" % c)
    lst = alice.ok("contact", "list")
    check(bob.address in lst, "contact list shows bob")


def test_changed_identity_key_blocks_sending(root, relays):
    relay, alice, bob = two_users(root, relays)
    alice.ok("send", bob.address, "first")
    bob.receive()
    # A relay operator (or attacker) substitutes bob's identity key.
    db = sqlite3.connect(relay.db_path())
    tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
    col = None
    for t in tables:
        cols = [r[1] for r in db.execute("pragma table_info(%s)" % t)]
        if "identity_key" in cols and "handle" in cols:
            col = t
    check(col is not None, "users table with handle/identity_key: %r" % tables)
    db.execute("update %s set identity_key = ? where handle = 'bob'" % col, (os.urandom(32),))
    db.commit()
    db.close()
    rc, out, err = alice.run("send", bob.address, "second")
    check(rc == 1, "sending to a changed key is refused, rc=%d" % rc)
    check("verify" in err, "the error tells the user to verify: %r" % err)
    v = alice.json1("contact", "verify", bob.address)
    check(v.get("key_changed") is True, "the contact is flagged: %r" % v)


if __name__ == "__main__":
    main([test_register_and_whoami, test_invites_refused, test_offline_delivery_both_directions,
          test_stdin_and_large_message, test_safety_numbers_equal,
          test_changed_identity_key_blocks_sending])
