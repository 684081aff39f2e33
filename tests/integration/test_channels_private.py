"""Members-only broadcast channels end to end with a real relay and
clients: the owner creates a members-only channel, adds a publisher and two
members; members read the publisher's posts (the channel key travels over
the 1:1 sessions); a non-member cannot subscribe; the relay's database holds
no plaintext; an altered post is rejected; a removed member loses its
subscription, never gets the new key's posts, and the relay refuses it
reads even when its subscription is put back into the database; posts
waiting for a key that never comes do not hide later ones."""
import glob
import sqlite3
import time

from kl import Client, check, main, new_relay
from probe_user import probe_member

CH = "!club@oslo.test"


def posts(msgs):
    return [m for m in msgs if m.get("channel") and "text" in m]


def texts(msgs):
    return [m["text"] for m in posts(msgs)]


def db_bytes(relay):
    data = b""
    for f in glob.glob(relay.db_path() + "*"):
        with open(f, "rb") as fh:
            data += fh.read()
    return data


def setup(root, relays):
    relay = new_relay(root, relays)
    names = ["owner", "kari", "m1", "m2", "eve"]
    cl = [Client(root, n).init(relay.first_invite if i == 0 and relay.first_invite
                               else relay.invite()) for i, n in enumerate(names)]
    owner, kari, m1, m2, eve = cl
    r = owner.json1("channel", "create", "!club", "--members-only")
    check(r["channel"] == CH and r["members_only"] is True, "create: %r" % r)
    r = owner.json1("channel", "publisher", "add", "!club", kari.address)
    check(r["publishers"] == 2 and r["epoch"] == 1, "publisher add: %r" % r)
    for m in (m1, m2):
        r = owner.json1("channel", "member", "add", "!club", m.address)
        check(r["action"] == "member_add" and r["key_missing"] == 0, "member add: %r" % r)
    for c in (kari, m1, m2):
        c.ok("channel", "subscribe", CH)
        c.receive(0)  # the channel key arrives over the 1:1 session
    return relay, owner, kari, m1, m2, eve


def test_members_read_outsiders_do_not(root, relays):
    relay, owner, kari, m1, m2, eve = setup(root, relays)
    rc, out, err = eve.run("channel", "subscribe", CH)
    check(rc == 1 and "members only: ask the owner of !club@oslo.test" in err,
          "a non-member cannot subscribe: %d %r %r" % (rc, out, err))
    rc, _, err = eve.run("channel", "member", "add", "!club", eve.address)
    check(rc == 1, "a non-member cannot add itself: %r" % err)
    rc, _, err = kari.run("channel", "member", "add", "!club", eve.address)
    check(rc == 1 and "only the owner" in err, "a publisher cannot add members: %r" % err)
    rc, _, err = owner.run("channel", "member", "add", "!club", m1.address)
    check(rc == 1 and "already a member" in err, "twice: %r" % err)
    secret = "Zebra-7 secret plan: meet at the harbour"
    r = kari.json1("channel", "post", "!club", secret)
    check(r["channel"] == CH and r["seq"] >= 1, "post: %r" % r)
    owner.ok("channel", "post", "!club", "owner note Quokka-3")
    for m in (m1, m2):
        got = posts(m.receive(0))
        check([p["text"] for p in got] == [secret, "owner note Quokka-3"] and
              got[0]["from"] == kari.address and got[1]["from"] == owner.address,
              "%s reads both posts: %r" % (m.name, got))
        rc, out, _ = m.run("history", CH, json_out=False)
        check(rc == 0 and "[!club@oslo.test] kari@oslo.test: Zebra-7 secret plan" in out,
              "history shows the verified publisher: %r" % out)
    data = db_bytes(relay)
    check(b"Zebra-7" not in data and b"Quokka-3" not in data,
          "the relay's database holds no plaintext")
    lst = owner.jsonl("channel", "list")
    check(lst[0]["members_only"] is True and
          sorted(m["address"] for m in lst[0]["members"]) == sorted([m1.address, m2.address]),
          "list shows the members: %r" % lst)
    # An altered copy of a stored post (one ciphertext byte) is rejected.
    relay.stop()
    db = sqlite3.connect(relay.db_path(), timeout=30)
    log = db.execute("SELECT log FROM channels WHERE address = ?", (CH,)).fetchone()[0]
    body = bytearray(db.execute("SELECT body FROM entries WHERE log = ? ORDER BY seq LIMIT 1",
                                (log,)).fetchone()[0])
    body[len(body) // 2] ^= 1
    seq = db.execute("SELECT last_seq FROM logs WHERE id = ?", (log,)).fetchone()[0] + 1
    now = int(time.time() * 1000)
    db.execute("INSERT INTO entries(log, seq, ts_ms, expires_ms, body) VALUES(?, ?, ?, ?, ?)",
               (log, seq, now, now + 86400000, bytes(body)))
    db.execute("UPDATE logs SET last_seq = ? WHERE id = ?", (seq, log))
    db.commit()
    db.close()
    relay.start()
    for m in (m1, m2):
        rc, out, err = m.run("receive")
        check(rc == 0 and "rejected a post on !club@oslo.test" in err and
              texts([__import__("json").loads(l) for l in out.splitlines() if l.strip()]) == [],
              "%s rejects the altered post: %r %r" % (m.name, out, err))


def test_removed_member(root, relays):
    relay, owner, kari, m1, m2, eve = setup(root, relays)
    kari.ok("channel", "post", "!club", "before removal")
    check(texts(m2.receive(0)) == ["before removal"], "m2 reads while a member")
    r = owner.json1("channel", "member", "remove", "!club", m2.address)
    check(r["action"] == "member_remove" and r["epoch"] == 2 and r["key_missing"] == 0,
          "remove: %r" % r)
    db = sqlite3.connect(relay.db_path(), timeout=30)
    uid = db.execute("SELECT id FROM users WHERE handle = 'm2'").fetchone()[0]
    chan = db.execute("SELECT id FROM channels WHERE address = ?", (CH,)).fetchone()[0]
    subs = db.execute("SELECT count(*) FROM channel_subs WHERE user = ? AND chan = ?",
                      (uid, chan)).fetchone()[0]
    db.close()
    check(subs == 0, "the removed member's subscription is gone")
    # The publisher needs the new epoch's key before posting.
    rc, _, err = kari.run("channel", "post", "!club", "too early")
    check(rc == 1 and "do not have the key" in err, "no key for epoch 2 yet: %r" % err)
    kari.receive(0)
    kari.ok("channel", "post", "!club", "after removal Walrus-9")
    rc, out, err = m1.run("receive", "--timeout", "0")
    check(rc == 0 and texts([__import__("json").loads(l) for l in out.splitlines() if l.strip()])
          == ["before removal", "after removal Walrus-9"], "m1 reads both epochs: %r %r" % (out, err))
    got = m2.receive(0)
    check(texts(got) == [], "m2 gets nothing after its removal: %r" % got)
    rc, out, err = m2.run("channel", "subscribe", CH)
    check(rc == 1 and "members only" in err, "m2 cannot subscribe again: %r" % err)
    # Even with its subscription put back behind the relay's back, the
    # relay checks membership in the validated log and refuses the read.
    relay.stop()
    db = sqlite3.connect(relay.db_path(), timeout=30)
    db.execute("INSERT INTO channel_subs(user, chan) VALUES(?, ?)", (uid, chan))
    db.commit()
    db.close()
    relay.start()
    rc, out, err = m2.run("receive")
    check("Walrus-9" not in out, "no post for the removed member: %r %r" % (out, err))
    rc, out, _ = m2.run("history", CH, json_out=False)
    check("before removal" in out and "Walrus-9" not in out,
          "m2 keeps what it read before: %r" % out)
    check(b"Walrus-9" not in db_bytes(relay), "no plaintext at the relay")


def edit_db(relay, fn):
    relay.stop()
    db = sqlite3.connect(relay.db_path(), timeout=30)
    try:
        out = fn(db)
        db.commit()
    finally:
        db.close()
    relay.start()
    return out


def test_key_arrives_later(root, relays):
    """A post whose key has not arrived is kept, with a warning, and shown
    by the receive that brings the key (the owner retries handing it out)."""
    relay, owner, kari, m1, m2, eve = setup(root, relays)
    # eve has published no prekeys (for now): the owner cannot send her the key.
    def hide(db):
        uid = db.execute("SELECT id FROM users WHERE handle = 'eve'").fetchone()[0]
        rows = db.execute("SELECT * FROM signed_prekeys WHERE user = ?", (uid,)).fetchall()
        db.execute("DELETE FROM signed_prekeys WHERE user = ?", (uid,))
        return rows
    rows = edit_db(relay, hide)
    check(rows, "eve had a signed prekey")
    rc, out, err = owner.run("channel", "member", "add", "!club", eve.address)
    check(rc == 0 and '"key_missing":1' in out and "could not give the key" in err,
          "the key could not be sent: %r %r" % (out, err))
    eve.ok("channel", "subscribe", CH)
    owner.ok("channel", "post", "!club", "welcome eve")
    rc, out, err = eve.run("receive", "--timeout", "0")
    check(rc == 0 and "welcome eve" not in out and "waits for the owner's key" in err,
          "the post waits for the key: %r %r" % (out, err))
    def restore(db):
        db.executemany("INSERT INTO signed_prekeys VALUES(%s)" % ",".join("?" * len(rows[0])),
                       rows)
    edit_db(relay, restore)
    owner.receive(0)  # the owner's kollega hands out the missing key
    rc, out, err = eve.run("receive", "--timeout", "0")
    check(rc == 0 and "welcome eve" in out, "shown once the key arrives: %r %r" % (out, err))
    check("welcome eve" not in eve.run("receive", "--timeout", "0")[1], "shown once")


def test_old_epoch_after_new_warned(root, relays):
    """A post read late under the epoch it was written in says nothing; a
    post sealed with an old key AFTER a post of the new epoch (a publisher
    whose client kept the old key: played by kl-probe from kari's home) is
    shown with a warning that the removed member may read it."""
    relay, owner, kari, m1, m2, eve = setup(root, relays)
    kari.ok("channel", "post", "!club", "skrevet i epoke 1")
    owner.json1("channel", "member", "remove", "!club", m2.address)
    owner.receive(0)
    kari.receive(0)  # kari gets the epoch-2 key
    kari.ok("channel", "post", "!club", "skrevet i epoke 2")
    rc, out, err = m1.run("receive", "--timeout", "0")
    check(rc == 0 and "skrevet i epoke 1" in out and "skrevet i epoke 2" in out,
          "m1 reads both: %r" % out)
    check("epoch" not in err, "a post read late in its own epoch is not warned: %r" % err)
    r = probe_member(relay, kari, "chan-post", CH, 1, "gammel nøkkel")
    check(r["ok"], "the hostile publisher's post is accepted by the relay: %r" % r)
    rc, out, err = m1.run("receive", "--timeout", "0")
    check("gammel nøkkel" in out, "shown: %r" % out)
    check("epoch 1" in err and "already used epoch 2" in err and kari.address in err,
          "warned, naming the publisher: %r" % err)


def test_key_arrives_behind_posts_that_wait_forever(root, relays):
    """More than a page of posts under an epoch whose key never comes (the
    owner hands out only the current epoch's key; kari's old-key posts are
    played by kl-probe) does not hide a later post whose key does arrive."""
    relay, owner, kari, m1, m2, eve = setup(root, relays)
    owner.json1("channel", "member", "remove", "!club", m2.address)
    owner.receive(0)
    kari.receive(0)  # kari gets the epoch-2 key
    def hide(db):
        uid = db.execute("SELECT id FROM users WHERE handle = 'eve'").fetchone()[0]
        rows = db.execute("SELECT * FROM signed_prekeys WHERE user = ?", (uid,)).fetchall()
        db.execute("DELETE FROM signed_prekeys WHERE user = ?", (uid,))
        return rows
    rows = edit_db(relay, hide)
    rc, out, err = owner.run("channel", "member", "add", "!club", eve.address)
    check(rc == 0 and '"key_missing":1' in out, "the key could not be sent: %r %r" % (out, err))
    eve.ok("channel", "subscribe", CH)
    for i in range(70):
        r = probe_member(relay, kari, "chan-post", CH, 1, "gammel %d" % i)
        check(r["ok"], "old-key post %d accepted by the relay: %r" % (i, r))
    owner.ok("channel", "post", "!club", "welcome eve")
    rc, out, err = eve.run("receive", "--timeout", "0")
    check(rc == 0 and "welcome eve" not in out and "gammel" not in out,
          "all posts wait for keys: %r %r" % (out, err))
    def restore(db):
        db.executemany("INSERT INTO signed_prekeys VALUES(%s)" % ",".join("?" * len(rows[0])),
                       rows)
    edit_db(relay, restore)
    owner.receive(0)  # the owner's kollega hands out the epoch-2 key only
    rc, out, err = eve.run("receive", "--timeout", "0")
    check(rc == 0 and "welcome eve" in out and "gammel" not in out,
          "shown once the key arrives, behind 70 waiting posts: %r %r" % (out, err))
    check("welcome eve" not in eve.run("receive", "--timeout", "0")[1], "shown once")


if __name__ == "__main__":
    main([test_members_read_outsiders_do_not, test_removed_member, test_key_arrives_later,
          test_old_epoch_after_new_warned, test_key_arrives_behind_posts_that_wait_forever])
