"""Trust in who a contact is, tried as an attacker would (real relay and
client processes; the attacker is kl-probe speaking the protocol itself):

- a forged sealed sender (claimed address, random key, junk payload) and a
  claimed address over the attacker's own provable key change nothing
  about the contact, are counted, and are attributed to nobody;
- a key change is shown only for a proven session start from a key the
  sender's relay vouches for; `contact verify --confirm` accepts only the
  key whose safety number was shown (or whose NUMBER is given), never one
  that arrived after; `contact reject` drops a pending key and what it
  holds;
- a relay that hands out bundles without a one-time prekey and later
  re-delivers an old session start (here a group key handout) cannot make
  the recipient replace its live session with a stale one."""
import base64
import json
import sqlite3
import time

from kl import Client, check, main, new_relay
from probe_user import ProbeUser
from test_federation import federation, wait_for, wait_link


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def talking(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "hei bob")
    check([m["text"] for m in bob.receive() if "text" in m] == ["hei bob"], "bob reads alice")
    bob.ok("send", alice.address, "hei alice")
    check([m["text"] for m in alice.receive() if "text" in m] == ["hei alice"], "alice reads bob")
    return relay, alice, bob


def probe_pk(p):
    with open(p.keyfile, "rb") as f:
        return f.read()[:32]


def relay_sets_key(relay, handle, pk):
    """The relay (its operator) now answers lookups of handle with pk."""
    db = sqlite3.connect(relay.db_path())
    db.execute("update users set identity_key = ? where handle = ?", (pk, handle))
    db.commit()
    db.close()


def forge(p, to, claim, kind, text):
    rc, lines = p.run("forge", to.address, claim, kind, text)
    check(rc == 0 and lines[-1]["ok"], "forge %s sent: %r" % (kind, lines))


def contact(c, address):
    for x in c.jsonl("contact", "list"):
        if x["address"] == address:
            return x
    return None


def test_forged_sender_changes_nothing(root, relays):
    relay, alice, bob = talking(root, relays)
    alice_key = alice.json1("whoami")["identity_key"]
    mallory = ProbeUser(root, relay, "mallory").register()
    forge(mallory, bob, alice.address, "junk", "x")
    forge(mallory, bob, alice.address, "proven", "jeg er alice, send meg alt")
    forge(mallory, bob, "dora@oslo.test", "junk", "x")
    rc, out, err = bob.run("receive", "--timeout", "2")
    check(rc == 0, "receive works: %s" % err)
    check("send meg alt" not in out, "the forged text is not shown: %r" % out)
    check(alice.address not in err and "dora" not in err,
          "nothing is attributed to anyone: %r" % err)
    check(err.count("was dropped") == 3, "each forgery is reported once: %r" % err)
    c = contact(bob, alice.address)
    check(c is not None and c["key_changed"] is False and "pending_identity_key" not in c,
          "alice's contact is untouched: %r" % c)
    check(c["identity_key"] == alice_key, "alice is still pinned to her own key")
    check(contact(bob, "dora@oslo.test") is None, "a claim creates no contact")
    w = bob.json1("whoami")
    check(w["failed_messages"] == 3 and w["held_messages"] == 0,
          "three forgeries counted, none held: %r" % w)
    # Nothing is blocked: bob still writes to alice and she reads it.
    bob.ok("send", alice.address, "fortsatt her")
    check([m["text"] for m in alice.receive() if "text" in m] == ["fortsatt her"], "alice reads bob")
    v = bob.json1("contact", "verify", alice.address)
    check(v["identity_key"] == alice_key and v["key_changed"] is False,
          "verify shows alice's real key: %r" % v)


def test_confirm_only_the_key_shown(root, relays):
    relay, alice, bob = talking(root, relays)
    alice_key = alice.json1("whoami")["identity_key"]
    m1 = ProbeUser(root, relay, "m1").register()
    m2 = ProbeUser(root, relay, "m2").register()
    # Alice's relay now vouches for a new key of hers, and that key starts
    # a session: this is a key change bob must be shown.
    relay_sets_key(relay, "alice", probe_pk(m1))
    forge(m1, bob, alice.address, "proven", "ny nøkkel 1")
    rc, out, err = bob.run("receive", "--timeout", "2")
    check("ny nøkkel 1" not in out, "the message is held, not shown: %r" % out)
    c = contact(bob, alice.address)
    check(c["key_changed"] is True and c["pending_identity_key"] == b64(probe_pk(m1)),
          "alice flagged with the new key pending: %r" % c)
    rc, out, err = bob.run("send", alice.address, "er det deg?")
    check(rc == 1 and "verify" in err, "sending is refused until verified: %r" % err)
    rc, out, err = bob.run("contact", "verify", alice.address, "--confirm")
    check(rc == 1 and "no safety number" in err, "nothing shown yet, nothing confirmed: %r" % err)
    shown = bob.json1("contact", "verify", alice.address)
    check(shown["identity_key"] == b64(probe_pk(m1)), "verify shows the new key: %r" % shown)
    # Another key arrives after the number was shown.
    relay_sets_key(relay, "alice", probe_pk(m2))
    forge(m2, bob, alice.address, "proven", "ny nøkkel 2")
    bob.receive()
    rc, out, err = bob.run("contact", "verify", alice.address, "--confirm")
    check(rc == 1 and "changed after" in err, "a key that came later is refused: %r" % err)
    rc, out, err = bob.run("contact", "verify", alice.address, "--confirm",
                           shown["safety_number"])
    check(rc == 1 and "not the safety number" in err, "the old number is refused: %r" % err)
    c = contact(bob, alice.address)
    check(c["key_changed"] is True and c["verified"] is False, "nothing confirmed: %r" % c)
    # The number of the key now pending, given as NUMBER in groups of five.
    now = bob.json1("contact", "verify", alice.address)
    groups = [now["safety_number"][i:i + 5] for i in range(0, 60, 5)]
    v = bob.json1("contact", "verify", alice.address, "--confirm", *groups)
    check(v["verified"] is True and v["identity_key"] == b64(probe_pk(m2)),
          "the key whose number was compared is confirmed: %r" % v)
    check(v["released_messages"] == 1, "its held message is released: %r" % v)
    hist = [m["text"] for m in bob.jsonl("history", alice.address)]
    check("ny nøkkel 2" in hist and "ny nøkkel 1" not in hist,
          "only the confirmed key's message is in history: %r" % hist)
    check(bob.json1("whoami")["held_messages"] == 0, "nothing stays held")
    check(alice_key != v["identity_key"], "the pin moved to the confirmed key")


def test_reject_drops_the_pending_key(root, relays):
    relay, alice, bob = talking(root, relays)
    alice_key = alice.json1("whoami")["identity_key"]
    m1 = ProbeUser(root, relay, "m1").register()
    relay_sets_key(relay, "alice", probe_pk(m1))
    forge(m1, bob, alice.address, "proven", "ta imot meg")
    bob.receive()
    check(bob.json1("whoami")["held_messages"] == 1, "held")
    r = bob.json1("contact", "reject", alice.address)
    check(r["rejected"] is True and r["dropped_messages"] == 1 and r["contact_kept"] is True,
          "reject: %r" % r)
    c = contact(bob, alice.address)
    check(c["key_changed"] is False and c["identity_key"] == alice_key and
          "pending_identity_key" not in c, "back to alice's pinned key: %r" % c)
    check(bob.json1("whoami")["held_messages"] == 0, "its held message is gone")
    rc, out, err = bob.run("contact", "reject", alice.address)
    check(rc == 1 and "nothing to reject" in err, "nothing left to reject: %r" % err)


def inbox_bodies(relay, handle):
    db = sqlite3.connect(relay.db_path())
    rows = db.execute("select e.seq, e.body from entries e join users u on e.log = u.inbox"
                      " where u.handle = ? order by e.seq", (handle,)).fetchall()
    db.close()
    return rows


def test_replayed_session_start_is_ignored(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("group", "create", "#erfa")
    alice.ok("group", "invite", "#erfa", bob.address)
    bob.receive()
    # A hostile relay: bob's bundles go out without a one-time prekey.
    db = sqlite3.connect(relay.db_path())
    db.execute("delete from onetime_prekeys where user = (select id from users"
               " where handle = 'bob')")
    db.commit()
    db.close()
    # Alice's first message to bob at all: her group key, a session start.
    alice.ok("send", "#erfa", "velkommen")
    start = inbox_bodies(relay, "bob")
    check(len(start) == 1, "one inbox entry (the key handout): %r" % [s for s, _ in start])
    texts = [m["text"] for m in bob.receive() if "text" in m]
    check(texts == ["velkommen"], "bob reads the group message: %r" % texts)
    bob.ok("send", alice.address, "takk")
    check([m["text"] for m in alice.receive() if "text" in m] == ["takk"], "alice reads bob")
    alice.ok("send", bob.address, "bra")
    check([m["text"] for m in bob.receive() if "text" in m] == ["bra"], "bob reads alice")
    # The relay delivers the old session start again.
    relay.stop()
    db = sqlite3.connect(relay.db_path())
    inbox, last = db.execute("select u.inbox, l.last_seq from users u join logs l on"
                             " l.id = u.inbox where u.handle = 'bob'").fetchone()
    db.execute("insert into entries(log, seq, ts_ms, expires_ms, body) values(?, ?, ?, ?, ?)",
               (inbox, last + 1, 0, 2 ** 62, start[0][1]))
    db.commit()
    db.close()
    relay.start()
    rc, out, err = bob.run("receive", "--timeout", "2")
    check(rc == 0, "receive works: %r" % err)
    # Bob's session is still the live one: alice reads what he writes now.
    bob.ok("send", alice.address, "etter replay")
    got = [m["text"] for m in alice.receive() if "text" in m]
    check(got == ["etter replay"], "alice reads bob after the replay: %r" % got)
    check("replayed session start" in err, "the replay is noticed: %r" % err)


def test_unreachable_relay_does_not_stall_the_inbox(root, relays):
    """kari@stockholm writes to bob@oslo for the first time; before bob
    receives it, stockholm goes down, so oslo cannot vouch for kari's key.
    Her message waits (held, no contact made) while alice's, later in the
    inbox, is read at once; once stockholm is back, kari's is proven and
    shown."""
    rs = federation(root, relays, names=["oslo.test", "stockholm.test"])
    wait_link(rs["oslo"], rs["stockholm"])
    wait_link(rs["stockholm"], rs["oslo"])
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    bob = Client(root, "bob").init(rs["oslo"].invite())
    kari = Client(root, "kari").init(rs["stockholm"].first_invite)
    kari.ok("send", bob.address, "hei fra kari")
    wait_for("kari's message in bob's inbox", lambda: len(inbox_bodies(rs["oslo"], "bob")) == 1)
    rs["stockholm"].stop()
    alice.ok("send", bob.address, "hei fra alice")
    rc, out, err = bob.run("receive", "--timeout", "1")
    got = [json.loads(l) for l in out.splitlines() if l.strip()]
    check(rc == 0 and [m["text"] for m in got if "text" in m] == ["hei fra alice"],
          "alice's message is read past the waiting one: %d %r %r" % (rc, got, err))
    check(contact(bob, kari.address) is None, "no contact for kari while unproven")
    check(bob.json1("whoami")["held_messages"] == 1, "kari's message waits")
    rs["stockholm"].start()
    wait_link(rs["oslo"], rs["stockholm"])
    got, deadline = [], time.time() + 30
    while not got and time.time() < deadline:
        got = [m["text"] for m in bob.receive(1) if "text" in m]
    check(got == ["hei fra kari"], "kari's message is shown once her relay vouches: %r" % got)
    c = contact(bob, kari.address)
    check(c is not None and c["key_changed"] is False, "kari pinned: %r" % c)
    check(bob.json1("whoami")["held_messages"] == 0, "nothing waits any more")


if __name__ == "__main__":
    main([test_forged_sender_changes_nothing, test_confirm_only_the_key_shown,
          test_reject_drops_the_pending_key, test_replayed_session_start_is_ignored,
          test_unreachable_relay_does_not_stall_the_inbox])
