"""Members-only channels across relays: a members-only channel on oslo with
members on stockholm. Stockholm's relay mirrors it and checks membership
itself against the mirrored, validated log: a non-member of stockholm
cannot subscribe (even as the very first subscriber there); members on stockholm read the posts (the channel key
travels from the owner over the cross-relay 1:1 sessions); neither relay's
database holds the plaintext; and a member removed by the owner loses its
subscription on its own relay when the remove op is mirrored."""
import glob
import sqlite3
import time

from kl import Client, check, main
from test_federation import NAMES, federation, wait_for, wait_link

CH = "!club@oslo.test"


def db_bytes(relay):
    data = b""
    for f in glob.glob(relay.db_path() + "*"):
        with open(f, "rb") as fh:
            data += fh.read()
    return data


def texts(client, n, limit=30):
    got, deadline = [], time.time() + limit
    while len(got) < n and time.time() < deadline:
        got += [m["text"] for m in client.receive(timeout=1)
                if m.get("channel") == CH and "text" in m]
    return got


def sub_rows(relay, handle):
    db = sqlite3.connect(relay.db_path(), timeout=30)
    try:
        return db.execute("SELECT count(*) FROM channel_subs s JOIN users u ON u.id = s.user"
                          " JOIN channels c ON c.id = s.chan WHERE c.address = ? AND"
                          " u.handle = ?", (CH, handle)).fetchone()[0]
    finally:
        db.close()


def test_members_only_across_relays(root, relays):
    rs = federation(root, relays, names=NAMES[:2])
    oslo, sto = rs["oslo"], rs["stockholm"]
    wait_link(oslo, sto)
    wait_link(sto, oslo)
    owner = Client(root, "owner").init(oslo.first_invite)
    eve = Client(root, "eve").init(sto.first_invite)
    m1 = Client(root, "m1").init(sto.invite())
    m2 = Client(root, "m2").init(sto.invite())
    r = owner.json1("channel", "create", "!club", "--members-only")
    check(r["channel"] == CH and r["members_only"] is True, "create: %r" % r)
    # eve is stockholm's first would-be subscriber (no mirror there yet):
    # refused (the home relay shows the log to members only, and the mirror
    # checks membership at the first subscribe: test_jobs_cmirror.c).
    rc, out, err = eve.run("channel", "subscribe", CH)
    check(rc == 1 and "members only" in err, "a non-member cannot subscribe through "
          "stockholm: %d %r %r" % (rc, out, err))
    for m in (m1, m2):
        r = owner.json1("channel", "member", "add", "!club", m.address)
        check(r["action"] == "member_add", "member add across relays: %r" % r)
        r = m.json1("channel", "subscribe", CH)
        check(r["action"] == "subscribe", "%s subscribes through stockholm: %r" % (m.name, r))
    secret = "Walrus-9 supervision notes"
    owner.ok("channel", "post", "!club", secret)
    for m in (m1, m2):
        got = texts(m, 1)
        check(got == [secret], "%s reads the post across relays: %r" % (m.name, got))
    for r in (oslo, sto):
        check(b"Walrus-9" not in db_bytes(r), "%s's database holds no plaintext" % r.name)
    rc, out, err = eve.run("channel", "subscribe", CH)
    check(rc == 1 and "members only" in err, "still refused once mirrored: %r" % err)
    # The owner removes m2: stockholm drops m2's subscription when it mirrors
    # the op, and m2 gets nothing of the next post.
    owner.ok("channel", "member", "remove", "!club", m2.address)
    owner.ok("channel", "post", "!club", "after the removal")
    check(texts(m1, 1) == ["after the removal"], "m1 reads on")
    wait_for("stockholm dropping m2's subscription", lambda: sub_rows(sto, "m2") == 0)
    check(sub_rows(sto, "m1") == 1, "m1 still subscribed on stockholm")
    check(texts(m2, 1, limit=3) == [], "m2 gets nothing after its removal")


if __name__ == "__main__":
    main([test_members_only_across_relays])
