"""Broadcast channels across relays (mirror model): a channel on
oslo with a publisher on stockholm and subscribers on oslo, stockholm and
riga. Each post arrives once at every subscriber with the verified
publisher and is stored once per relay (oslo's channel log, one mirror log
on each other relay), never once per subscriber; a post signed by a
non-publisher slipped into oslo's database is refused by stockholm's relay
and rejected by oslo's subscriber's client; a peer killed with -9 catches up
exactly once, in order, and re-offered posts (lost acks) are dropped by the
mirror's watermark; and when a relay's last subscriber leaves, the home
relay drops that relay's subscription."""
import json
import sqlite3
import time

from kl import Client, check, main
from test_channels import forged_post_body
from test_federation import NAMES, federation, wait_for, wait_link

CH = "!news@oslo.test"


def db_one(relay, sql, *args):
    db = sqlite3.connect(relay.db_path(), timeout=30)
    try:
        row = db.execute(sql, args).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def entries(relay):
    """Rows of the channel's post log on relay: oslo's own log, or the
    mirror's log elsewhere; None when relay has no row for the channel."""
    return db_one(relay, "SELECT count(e.id) FROM channels c LEFT JOIN entries e ON e.log = c.log"
                  " WHERE c.address = ? GROUP BY c.id", CH)


def last_seq(relay):
    """The channel log's last seq: it only grows, so it counts every post
    ever stored in the log, also those already deleted after the acks."""
    return db_one(relay, "SELECT l.last_seq FROM channels c JOIN logs l ON l.id = c.log"
                  " WHERE c.address = ?", CH)


def relay_subs(home, peer):
    """oslo's subscription rows of CH held by the shadow user of relay peer."""
    return db_one(home, "SELECT count(*) FROM channel_subs s JOIN users u ON u.id = s.user"
                  " JOIN channels c ON c.id = s.chan WHERE c.address = ? AND u.handle = ?",
                  CH, "@" + peer.name)


def relay_cursor(home, peer):
    """oslo's cursor (the acked seq) of relay peer's shadow user on CH's log."""
    return db_one(home, "SELECT k.acked FROM cursors k JOIN users u ON u.id = k.reader"
                  " JOIN channels c ON c.log = k.log WHERE c.address = ? AND u.handle = ?",
                  CH, "@" + peer.name)


def posts(msgs):
    return [m for m in msgs if m.get("channel") and "text" in m]


def receive_posts(client, n, limit=30):
    got = []
    deadline = time.time() + limit
    while len(got) < n and time.time() < deadline:
        got += posts(client.receive(timeout=1))
    return got


def receive_texts(client):
    """One `receive`: its exit code, the texts of the posts, and stderr."""
    rc, out, err = client.run("receive")
    got = posts([json.loads(l) for l in out.splitlines() if l.strip()]) if rc == 0 else []
    return rc, [p["text"] for p in got], err


def refusals(relay):
    return [l for l in relay.read_log().splitlines() if "refused a post" in l and CH in l]


def setup(root, relays, names, subs):
    """Relays names (oslo first) linked both ways; the owner on oslo creates
    !news and adds kari (stockholm) as publisher; subs maps a relay's short
    name to how many subscribers it gets. Returns (relays, owner, kari,
    {short name: [subscribers]})."""
    rs = federation(root, relays, names=names)
    for a in rs.values():
        for b in rs.values():
            if a is not b:
                wait_link(a, b)
    owner = Client(root, "owner").init(rs["oslo"].first_invite)
    kari = Client(root, "kari").init(rs["stockholm"].first_invite)
    r = owner.json1("channel", "create", "!news")
    check(r["channel"] == CH and r["owner"] == owner.address, "create: %r" % r)
    r = owner.json1("channel", "publisher", "add", "!news", kari.address)
    check(r["publisher"] == kari.address and r["publishers"] == 2, "publisher add: %r" % r)
    out = {}
    for short, n in subs.items():
        out[short] = []
        for i in range(n):
            token = rs[short].first_invite if short == "riga" and i == 0 else rs[short].invite()
            s = Client(root, "%s%d" % (short, i + 1)).init(token)
            r = s.json1("channel", "subscribe", CH)
            check(r["action"] == "subscribe" and r["publishers"] == 2,
                  "%s subscribes across relays: %r" % (s.name, r))
            out[short].append(s)
    return rs, owner, kari, out


def test_three_relays_once_each(root, relays):
    rs, owner, kari, subs = setup(root, relays, NAMES, {"oslo": 1, "stockholm": 2, "riga": 2})
    oslo, sto, riga = rs["oslo"], rs["stockholm"], rs["riga"]
    # oslo holds one subscription per relay, not one per remote subscriber.
    check(db_one(oslo, "SELECT count(*) FROM channel_subs s JOIN channels c ON c.id = s.chan"
                 " WHERE c.address = ?", CH) == 3, "oslo: its own subscriber and two relays")
    check(relay_subs(oslo, sto) == 1 and relay_subs(oslo, riga) == 1, "one row per relay")
    for r in (sto, riga):
        check(entries(r) == 0, "%s has a mirror of the channel, empty" % r.name)
    seq0 = {r.name: last_seq(r) for r in (oslo, sto, riga)}
    text = "Nordic training in Riga, 3 June"
    r = kari.json1("channel", "post", CH, text)
    check(r["channel"] == CH and r["seq"] >= 1, "a post from stockholm, proxied to oslo: %r" % r)
    check(entries(oslo) == 1, "oslo stores the post once in its channel log: %r" % entries(oslo))
    for r in (sto, riga):
        wait_for("the post in %s's mirror" % r.name, lambda r=r: entries(r) >= 1)
    # Every subscriber's first receive comes after this: nothing acked yet.
    for r in (oslo, sto, riga):
        check(entries(r) == 1, "%s: one entry for all its subscribers: %r" % (r.name, entries(r)))
    # `status` shows the mirrors from both sides.
    peers = {p["name"]: p for p in sto.status()["peers"]}
    check(peers[oslo.name]["channel_mirrors"] == 1 and
          peers[oslo.name]["mirrored_channels"] == 0, "stockholm mirrors one of oslo's: %r" % peers)
    peers = {p["name"]: p for p in oslo.status()["peers"]}
    for r in (sto, riga):
        check(peers[r.name]["mirrored_channels"] == 1 and peers[r.name]["channel_mirrors"] == 0,
              "oslo: %s mirrors one of its channels: %r" % (r.name, peers))
    for short, ss in subs.items():
        for s in ss:
            got = receive_posts(s, 1)
            check(len(got) == 1, "%s (%s) gets the post: %r" % (s.name, short, got))
            p = got[0]
            check(p["channel"] == CH and p["from"] == kari.address and p["verified"] is True and
                  p["text"] == text, "%s: the post as received: %r" % (s.name, p))
            check(posts(s.receive(0)) == [], "%s: nothing twice" % s.name)
    for r in (oslo, sto, riga):
        check(last_seq(r) - seq0[r.name] == 1, "%s stored the post exactly once: %d -> %d"
              % (r.name, seq0[r.name], last_seq(r)))
        # Acked by every subscriber of the log (on oslo: the two relays too).
        wait_for("%s's entry deleted after the acks" % r.name, lambda r=r: entries(r) == 0)
    rc, out, err = subs["riga"][0].run("history", CH, json_out=False)
    check(rc == 0 and "[%s] %s: Nordic training" % (CH, kari.address) in out,
          "history on riga: %r %r" % (out, err))


def test_forged_post_refused_by_mirror(root, relays):
    rs, owner, kari, subs = setup(root, relays, NAMES[:2], {"oslo": 1, "stockholm": 2})
    oslo, sto = rs["oslo"], rs["stockholm"]
    body = forged_post_body(root)
    check(refusals(sto) == [], "no refusal before the forged post")
    check(oslo.stop() == 0, "oslo exits 0 on SIGTERM")
    db = sqlite3.connect(oslo.db_path(), timeout=30)
    log = db.execute("SELECT log FROM channels WHERE address = ?", (CH,)).fetchone()[0]
    seq = db.execute("SELECT last_seq FROM logs WHERE id = ?", (log,)).fetchone()[0] + 1
    now = int(time.time() * 1000)
    db.execute("INSERT INTO entries(log, seq, ts_ms, expires_ms, body) VALUES(?, ?, ?, ?, ?)",
               (log, seq, now, now + 86400000, body))
    db.commit()
    db.close()
    oslo.start()
    wait_link(oslo, sto)
    wait_link(sto, oslo)
    seq0 = last_seq(sto)
    kari.ok("channel", "post", CH, "genuine")
    wait_for("stockholm refusing the forged post", lambda: refusals(sto))
    wait_for("the genuine post in stockholm's mirror", lambda: entries(sto) >= 1)
    check(entries(sto) == 1, "stockholm stores only the genuine post: %r" % entries(sto))
    for s in subs["stockholm"]:
        rc, got, err = receive_texts(s)
        check(rc == 0, "receive succeeds: %r" % err)
        check(got == ["genuine"], "%s sees only the genuine post: %r" % (s.name, got))
        check("rejected a post" not in err, "%s never saw the forged post: %r" % (s.name, err))
        rc, out, _ = s.run("history", CH, json_out=False)
        check("FORGED" not in out and "genuine" in out, "history has no forged post: %r" % out)
    check(last_seq(sto) - seq0 == 1,
          "one post stored at stockholm: %d -> %d" % (seq0, last_seq(sto)))
    # oslo's own subscriber gets both from its relay; its client rejects one.
    o = subs["oslo"][0]
    rc, got, err = receive_texts(o)
    check(rc == 0 and got == ["genuine"], "oslo's subscriber keeps the genuine post: %r" % got)
    check("rejected a post on %s" % CH in err and "not a publisher" in err,
          "oslo's subscriber is warned: %r" % err)


def test_killed_peer_catches_up_once(root, relays):
    rs, owner, kari, subs = setup(root, relays, NAMES[:2], {"stockholm": 2})
    oslo, sto = rs["oslo"], rs["stockholm"]
    owner.ok("channel", "post", "!news", "before")
    for s in subs["stockholm"]:
        check([p["text"] for p in receive_posts(s, 1)] == ["before"], "first post to %s" % s.name)
    wait_for("oslo's entry deleted once stockholm acked", lambda: entries(oslo) == 0)
    seq0 = last_seq(sto)
    sto.kill9()
    texts = ["en", "to", "tre"]
    for t in texts:
        owner.ok("channel", "post", "!news", t)  # committed on oslo: stockholm is down
    check(entries(oslo) == 3, "oslo keeps the three posts for stockholm: %r" % entries(oslo))
    sto.start()
    wait_for("stockholm catching up", lambda: entries(sto) >= 3)
    check(entries(sto) == 3, "the mirror holds 3 entries: %r" % entries(sto))
    for s in subs["stockholm"]:
        got = [p["text"] for p in receive_posts(s, 3)]
        check(got == texts, "%s gets the three posts once, in order: %r" % (s.name, got))
    # A later post is pulled after any pending re-pull of the three: had the
    # watermark failed, the duplicates would arrive before it.
    owner.ok("channel", "post", "!news", "fire")
    for s in subs["stockholm"]:
        got = [p["text"] for p in receive_posts(s, 1)]
        check(got == ["fire"], "%s: nothing twice, then the next post: %r" % (s.name, got))
    check(last_seq(sto) - seq0 == 4, "four posts stored at stockholm after the kill, not more: "
          "%d -> %d" % (seq0, last_seq(sto)))
    wait_for("oslo's entries deleted once stockholm acked", lambda: entries(oslo) == 0)


def test_lost_ack_deduped_by_watermark(root, relays):
    """stockholm stored three posts and acked, but oslo lost the acks (as
    after a crash between stockholm's commit and oslo's): oslo offers the
    three again at the next link-up, and stockholm's watermark drops them."""
    rs, owner, kari, subs = setup(root, relays, NAMES[:2], {"oslo": 1, "stockholm": 2})
    oslo, sto = rs["oslo"], rs["stockholm"]
    seq0 = last_seq(sto)
    texts = ["en", "to", "tre"]
    for t in texts:
        owner.ok("channel", "post", "!news", t)
    home_seq = last_seq(oslo)
    wait_for("stockholm storing and acking", lambda: relay_cursor(oslo, sto) == home_seq)
    check(entries(sto) == 3 and entries(oslo) == 3, "stored once on each relay; oslo's own "
          "subscriber has not read yet: %r %r" % (entries(sto), entries(oslo)))
    check(oslo.stop() == 0, "oslo exits 0 on SIGTERM")
    db = sqlite3.connect(oslo.db_path(), timeout=30)
    db.execute("UPDATE cursors SET acked = 0 WHERE reader = (SELECT id FROM users WHERE"
               " handle = ?)", ("@" + sto.name,))
    db.commit()
    db.close()
    check(relay_cursor(oslo, sto) == 0, "the acks are lost")
    oslo.start()
    wait_link(oslo, sto)
    wait_link(sto, oslo)
    owner.ok("channel", "post", "!news", "fire")  # pulled after any re-pull of the three
    for s in subs["stockholm"]:
        got = [p["text"] for p in receive_posts(s, 4)]
        check(got == texts + ["fire"], "%s gets each post once, in order: %r" % (s.name, got))
        check(posts(s.receive(0)) == [], "%s: nothing twice" % s.name)
    check(last_seq(sto) - seq0 == 4, "four posts stored at stockholm, not seven: %d -> %d"
          % (seq0, last_seq(sto)))
    rc, got, err = receive_texts(subs["oslo"][0])
    check(rc == 0 and got == texts + ["fire"], "oslo's subscriber: %r %r" % (got, err))


def test_last_unsubscribe_drops_relay(root, relays):
    rs, owner, kari, subs = setup(root, relays, NAMES, {"stockholm": 2, "riga": 1})
    oslo, sto, riga = rs["oslo"], rs["stockholm"], rs["riga"]
    s1, s2 = subs["stockholm"]
    r1 = subs["riga"][0]
    check(relay_subs(oslo, sto) == 1 and relay_subs(oslo, riga) == 1, "both relays subscribed")
    r = s1.json1("channel", "unsubscribe", CH)
    check(r["action"] == "unsubscribe", "unsubscribe: %r" % r)
    owner.ok("channel", "post", "!news", "one")
    check([p["text"] for p in receive_posts(s2, 1)] == ["one"], "s2 still subscribed")
    check(relay_subs(oslo, sto) == 1, "stockholm stays subscribed while s2 is")
    r = s2.json1("channel", "unsubscribe", CH)
    check(r["action"] == "unsubscribe", "unsubscribe: %r" % r)
    owner.ok("channel", "post", "!news", "two")
    wait_for("oslo dropping stockholm's subscription", lambda: relay_subs(oslo, sto) == 0)
    check(relay_subs(oslo, riga) == 1, "riga is still subscribed")
    got = [p["text"] for p in receive_posts(r1, 2)]
    check(got == ["one", "two"], "riga's subscriber gets both: %r" % got)
    for s in (s1, s2):
        check(posts(s.receive(0)) == [], "%s unsubscribed gets nothing new" % s.name)
    # Only riga holds a cursor on oslo's log now: its acks free the entries.
    wait_for("oslo's entries deleted after riga's ack", lambda: entries(oslo) == 0)


if __name__ == "__main__":
    main([test_three_relays_once_each, test_forged_post_refused_by_mirror,
          test_killed_peer_catches_up_once, test_lost_ack_deduped_by_watermark,
          test_last_unsubscribe_drops_relay])
