"""Broadcast channels end to end with real processes: the owner creates a
channel and adds a publisher; three subscribers each receive a post exactly
once with the verified publisher (also as a push while waiting); a post by a
non-publisher slipped into the relay's database is rejected by every client;
a removed publisher can no longer post; with 50 subscribers the relay stores
one entry per post and deletes it once every subscriber has acked."""
import sqlite3
import subprocess
import time

from kl import CLIENT, Client, Relay, check, main, new_relay

CH = "!news@oslo.test"


def users(root, relay, names):
    out = []
    for i, n in enumerate(names):
        token = relay.first_invite if i == 0 and relay.first_invite else relay.invite()
        out.append(Client(root, n).init(token))
    return out


def channel_log(db):
    return db.execute("SELECT log FROM channels WHERE address = ?", (CH,)).fetchone()[0]


def entries(relay):
    db = sqlite3.connect(relay.db_path(), timeout=30)
    try:
        return db.execute("SELECT count(*) FROM entries WHERE log = ?",
                          (channel_log(db),)).fetchone()[0]
    finally:
        db.close()


def posts(msgs):
    return [m for m in msgs if m.get("channel") and "text" in m]


def setup(root, relays):
    relay = new_relay(root, relays)
    owner, pub, s1, s2, s3 = users(root, relay, ["owner", "kari", "sub1", "sub2", "sub3"])
    r = owner.json1("channel", "create", "!news")
    check(r["channel"] == CH and r["owner"] == owner.address, "create: %r" % r)
    r = owner.json1("channel", "publisher", "add", "!news", pub.address)
    check(r["publisher"] == pub.address and r["publishers"] == 2, "publisher add: %r" % r)
    for s in (s1, s2, s3):
        r = s.json1("channel", "subscribe", CH)
        check(r["action"] == "subscribe" and r["publishers"] == 2, "subscribe: %r" % r)
    return relay, owner, pub, [s1, s2, s3]


def test_three_subscribers_once_each(root, relays):
    relay, owner, pub, subs = setup(root, relays)
    before = entries(relay)
    r = pub.json1("channel", "post", "!news", "Nordic training in Riga, 3 June")
    check(r["channel"] == CH and r["seq"] >= 1, "post: %r" % r)
    check(entries(relay) == before + 1, "one entry for three subscribers")
    for s in subs:
        got = posts(s.receive(0))
        check(len(got) == 1, "%s gets the post once: %r" % (s.name, got))
        p = got[0]
        check(p["channel"] == CH and p["from"] == pub.address and p["verified"] is True and
              p["text"] == "Nordic training in Riga, 3 June", "post as received: %r" % p)
        check(posts(s.receive(0)) == [], "%s: nothing new the second time" % s.name)
        rc, out, err = s.run("history", "!news@oslo.test", json_out=False)
        check(rc == 0 and "[!news@oslo.test] kari@oslo.test: Nordic training" in out,
              "history shows the post: %r %r" % (out, err))
    check(entries(relay) == before, "deleted once every subscriber acked")
    # A post while a subscriber waits arrives as a push; stdin text works.
    waiter = subprocess.Popen([CLIENT, "--home", subs[0].home, "--json", "receive", "--timeout",
                               "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=subs[0].env())
    time.sleep(1.5)
    owner.ok("channel", "post", "!news", "-", stdin=b"from the owner\n")
    out, err = waiter.communicate(timeout=60)
    got = posts([__import__("json").loads(l) for l in out.decode().splitlines() if l.strip()])
    check([p["text"] for p in got] == ["from the owner"] and got[0]["from"] == owner.address,
          "pushed post: %r %r" % (out, err))
    # Unsubscribed: nothing more.
    r = subs[2].json1("channel", "unsubscribe", "!news")
    check(r["action"] == "unsubscribe", "unsubscribe: %r" % r)
    rc, out, err = subs[2].run("channel", "unsubscribe", "!news")
    check(rc == 1 and "do not subscribe" in err, "second unsubscribe: %d %r" % (rc, err))
    pub.ok("channel", "post", "!news", "after unsubscribe")
    check(posts(subs[2].receive(0)) == [], "an unsubscribed user gets nothing")
    check([p["text"] for p in posts(subs[1].receive(0))][-1:] == ["after unsubscribe"],
          "the others still do")
    lst = owner.jsonl("channel", "list")
    check(len(lst) == 1 and lst[0]["owned"] and
          [p["address"] for p in lst[0]["publishers"]] == [owner.address, pub.address],
          "list shows the owned channel with publishers: %r" % lst)
    # Usage errors are 2; not a publisher is 1.
    rc, _, _ = subs[0].run("channel", "post", "news", "x")
    check(rc == 2, "a malformed channel is a usage error")
    rc, _, err = subs[0].run("channel", "post", "!news", "x")
    check(rc == 1 and "not a publisher" in err, "a subscriber cannot post: %r" % err)


def forged_post_body(root):
    """A post naming !news@oslo.test, validly signed by mallory, who is no
    publisher of the real channel: made on a look-alike relay of the same
    name where mallory owns a channel of that name."""
    fake = Relay(root, name="oslo.test")
    fake.data += "-fake"
    fake.log_path += ".fake"
    fake.start()
    try:
        mallory = Client(root, "mallory").init(fake.read_first_invite())
        mallory.ok("channel", "create", "!news")
        mallory.ok("channel", "post", "!news", "FORGED: meeting cancelled")
        db = sqlite3.connect(fake.db_path(), timeout=30)
        body = db.execute("SELECT body FROM entries WHERE log = ?", (channel_log(db),)).fetchone()[0]
        db.close()
        return body
    finally:
        check(fake.stop() == 0, "look-alike relay exits cleanly")


def test_forged_post_rejected(root, relays):
    relay, owner, pub, subs = setup(root, relays)
    body = forged_post_body(root)
    pub.ok("channel", "post", "!news", "genuine one")
    relay.stop()
    db = sqlite3.connect(relay.db_path(), timeout=30)
    log = channel_log(db)
    seq = db.execute("SELECT last_seq FROM logs WHERE id = ?", (log,)).fetchone()[0] + 1
    db.execute("INSERT INTO entries(log, seq, ts_ms, expires_ms, body) VALUES(?, ?, ?, ?, ?)",
               (log, seq, int(time.time() * 1000), int(time.time() * 1000) + 86400000, body))
    db.execute("UPDATE logs SET last_seq = ? WHERE id = ?", (seq, log))
    db.commit()
    db.close()
    relay.start()
    pub.ok("channel", "post", "!news", "genuine two")
    for s in subs:
        rc, out, err = s.run("receive")
        check(rc == 0, "receive succeeds: %r" % err)
        got = [p["text"] for p in posts([__import__("json").loads(l)
                                         for l in out.splitlines() if l.strip()])]
        check(got == ["genuine one", "genuine two"], "%s sees only genuine posts: %r" % (s.name, got))
        check("rejected a post on !news@oslo.test" in err and "not a publisher" in err,
              "%s is warned: %r" % (s.name, err))
        rc, out, _ = s.run("history", "!news", json_out=False)
        check("FORGED" not in out and "genuine two" in out, "history has no forged post: %r" % out)
    # Every subscriber acked past it: the relay deleted all three.
    check(entries(relay) == 0, "entries deleted after all acked")


def test_removed_publisher(root, relays):
    relay, owner, pub, subs = setup(root, relays)
    pub.ok("channel", "post", "!news", "before removal")
    for s in subs:
        check([p["text"] for p in posts(s.receive(0))] == ["before removal"], "first post")
    r = owner.json1("channel", "publisher", "remove", "!news", pub.address)
    check(r["action"] == "publisher_remove" and r["publishers"] == 1, "remove: %r" % r)
    rc, out, err = pub.run("channel", "post", "!news", "after removal", json_out=False)
    check(rc == 1 and "not a publisher" in err, "a removed publisher cannot post: %d %r" % (rc, err))
    rc, _, err = owner.run("channel", "publisher", "remove", "!news", owner.address)
    check(rc == 1 and "cannot be removed" in err, "the owner stays: %r" % err)
    rc, _, err = pub.run("channel", "publisher", "add", "!news", pub.address)
    check(rc == 1 and "only the owner" in err, "only the owner adds: %r" % err)
    for s in subs:
        check(posts(s.receive(0)) == [], "nothing new for %s" % s.name)
        rc, out, _ = s.run("history", "!news", json_out=False)
        check("before removal" in out, "earlier posts stay in history")


def test_fifty_subscribers_one_entry(root, relays):
    relay = new_relay(root, relays)
    owner = Client(root, "owner").init(relay.first_invite)
    owner.ok("channel", "create", "!news")
    subs = []
    for i in range(50):
        s = Client(root, "s%02d" % i).init(relay.invite())
        s.ok("channel", "subscribe", CH)
        subs.append(s)
    db = sqlite3.connect(relay.db_path(), timeout=30)
    total0 = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    db.close()
    owner.ok("channel", "post", "!news", "to fifty")
    owner.ok("channel", "post", "!news", "and again")
    db = sqlite3.connect(relay.db_path(), timeout=30)
    total = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    subs_n = db.execute("SELECT count(*) FROM channel_subs").fetchone()[0]
    db.close()
    check(subs_n == 50, "fifty subscriptions: %d" % subs_n)
    check(total - total0 == 2 and entries(relay) == 2, "two posts are two entries: %d" % total)
    # Everyone receives both (ten at a time), then nothing is left.
    for k in range(0, 50, 10):
        procs = [subprocess.Popen([CLIENT, "--home", s.home, "--json", "receive"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, env=s.env()) for s in subs[k:k + 10]]
        for s, p in zip(subs[k:k + 10], procs):
            out, err = p.communicate(timeout=120)
            got = [l for l in out.decode().splitlines() if '"channel"' in l]
            check(p.returncode == 0 and len(got) == 2, "%s got both: %r %r" % (s.name, out, err))
        check(entries(relay) == (2 if k < 40 else 0), "entries held until the last ack")


if __name__ == "__main__":
    main([test_three_subscribers_once_each, test_forged_post_rejected, test_removed_publisher,
          test_fifty_subscribers_one_entry])
