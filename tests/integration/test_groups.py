"""ERFA groups end to end with real processes: admission under the policies
all and majority (the CLI says how many approvals are missing), messages
between all members shown once with the right sender, one relay entry per
message whatever the member count, removal (a relay that gives a removed
member its membership back still cannot make it read anything new), a
forged op inserted in the relay's database (clients warn, give the
inserted member no key and refuse to send), removal votes under majority, policy and
retention changes, and retention on both sides. A member's message claiming
another history (a withheld op, a hostile member's bogus head played by
kl-probe) is refused for that author alone, said once, and ends with the
author's removal; only the relay's own proof (an invalid log, two signed
ops for one index) blocks the group. Nothing is lost on departure: a
farewell before a leave, a message just before a removal are read; a
message bound after its author's exit, or under a key of an older epoch,
is refused and said why."""
import base64
import json
import os
import shutil
import sqlite3
import subprocess
import time

from kl import CLIENT, DEBUG_LOG, Client, check, logins, main, new_relay
from probe_user import probe_member

GROUP = "#erfa@oslo.test"


def users(root, relay, names):
    out = []
    for i, n in enumerate(names):
        token = relay.first_invite if i == 0 else relay.invite()
        out.append(Client(root, n).init(token))
    return out


def relay_db(relay):
    db = sqlite3.connect(relay.db_path(), timeout=30)
    return db


def group_log_id(db):
    return db.execute("SELECT log FROM groups WHERE address = ?", (GROUP,)).fetchone()[0]


def members(c):
    return c.json1("group", "members", "#erfa")


def admit(creator, others, approvers_of):
    """creator invites each of others; approvers_of(i) lists who must approve
    the i-th invitee for it to be admitted (besides the inviter)."""
    for i, o in enumerate(others):
        r = creator.json1("group", "invite", "#erfa", o.address)
        for a in approvers_of(i):
            check(not r["admitted"], "admitted too early: %r" % r)
            r = a.json1("group", "approve", "#erfa", o.address)
        check(r["admitted"], "%s must be admitted: %r" % (o.address, r))


def test_policy_all_five_members(root, relays):
    relay = new_relay(root, relays)
    a, b, c, d, e, f = users(root, relay, ["alice", "bob", "carol", "dave", "erik", "frida"])
    out = a.json1("group", "create", "#erfa")
    check(out["group"] == GROUP and out["policy"] == "all", "create: %r" % out)
    # Under "all" every current member must approve each newcomer.
    admit(a, [b, c, d, e], lambda i: [b, c, d][:i])
    m = members(a)
    check(len(m["members"]) == 5, "five members: %r" % m)
    check({x["role"] for x in m["members"] if x["address"] == a.address} == {"facilitator"},
          "the creator is facilitator: %r" % m)

    r = a.json1("group", "invite", "#erfa", f.address)
    check(not r["admitted"] and r["missing"] == 4 and r["approvals"] == 1 and r["members"] == 5,
          "after the invite 4 approvals are missing: %r" % r)
    rc, out, err = f.run("receive", json_out=False)
    check(rc == 0 and "invited to %s by %s" % (GROUP, a.address) in out,
          "the candidate learns who invited it: %r %r" % (out, err))
    rc, out, err = f.run("receive", json_out=False)
    check("invited" not in out, "the invitation is shown once: %r" % out)
    rc, out, err = f.run("send", "#erfa", "kan jeg skrive?", json_out=False)
    check(rc == 1 and "not a member" in err, "a candidate cannot write: %d %r" % (rc, err))
    for k, who in enumerate([b, c, d]):
        rc, out, err = who.run("group", "approve", "#erfa", f.address, json_out=False)
        check(rc == 0, "approve: %r" % err)
        left = 3 - k
        check("%d more approval" % left in out and "policy all: %d of 5" % (k + 2) in out,
              "the CLI says what is missing: %r" % out)
    rc, out, err = b.run("group", "approve", "#erfa", f.address, json_out=False)
    check(rc == 1 and "approval already given" in err and "1 more approval" in err,
          "a second approval is refused and says what is missing: %d %r" % (rc, err))
    m = members(a)
    cand = [x for x in m["candidates"] if x["address"] == f.address]
    check(cand and cand[0]["missing"] == 1 and len(cand[0]["approved_by"]) == 4,
          "members shows the candidate with its approvals: %r" % m)
    check(f.address not in [x["address"] for x in m["members"]], "not yet a member")
    r = e.json1("group", "approve", "#erfa", f.address)
    check(r["admitted"], "the last approval admits: %r" % r)
    check(len(members(f)["members"]) == 6, "six members now")
    rc, out, err = f.run("receive", json_out=False)
    check("now a member of %s" % GROUP in out, "the new member is told: %r" % out)

    # Messages between all members: each shown once, with its sender.
    everyone = [a, b, c, d, e, f]
    for u in everyone:
        u.receive(0)
    sent = {}
    for u in everyone:
        s = u.json1("send", "#erfa", "hilsen fra %s" % u.name)
        check(s["group"] == GROUP, "send --json names the group: %r" % s)
        sent[u.address] = s["id"]
    db = relay_db(relay)
    log = group_log_id(db)
    n = db.execute("SELECT count(*) FROM entries WHERE log = ?", (log,)).fetchone()[0]
    db.close()
    check(n == 6, "the relay stores each group message once (6 messages, 6 members): %d" % n)
    for u in everyone:
        got = [m for m in u.receive(0) if m.get("group") == GROUP]
        want = {addr for addr in sent if addr != u.address}
        check(sorted(m["from"] for m in got) == sorted(want),
              "%s gets every other member's message once: %r" % (u.name, got))
        for m in got:
            check(m["id"] == sent[m["from"]] and m["text"] == "hilsen fra " + m["from"].split("@")[0]
                  and m["to"] == GROUP, "right sender, text and id: %r" % m)
        check([m for m in u.receive(0) if m.get("group")] == [], "nothing twice for %s" % u.name)
    hist = [m for m in a.jsonl("history", "#erfa") if m.get("group") == GROUP]
    check(len(hist) == 6, "alice's history holds all six: %r" % hist)
    rc, out, err = a.run("history", "#erfa", json_out=False)
    check("[%s] %s: hilsen fra bob" % (GROUP, b.address) in out, "human history: %r" % out)
    # Once everyone has acked, the relay may drop the entries.
    db = relay_db(relay)
    n = db.execute("SELECT count(*) FROM entries WHERE log = ?", (log,)).fetchone()[0]
    db.close()
    check(n == 0, "acked by every member, the entries are gone: %d" % n)


def test_majority(root, relays):
    relay = new_relay(root, relays)
    a, b, c, d, e = users(root, relay, ["alice", "bob", "carol", "dave", "erik"])
    a.ok("group", "create", "#erfa", "--policy", "majority", "--retention", "7")
    # 1 member: the inviter alone is a majority; 2: both; 3: two of three.
    admit(a, [b, c, d], lambda i: [[], [b], [b]][i])
    r = a.json1("group", "invite", "#erfa", e.address)
    check(not r["admitted"] and r["missing"] == 2 and r["policy"] == "majority",
          "1 of 4 approvals: 2 more needed: %r" % r)
    rc, out, err = b.run("group", "approve", "#erfa", e.address, json_out=False)
    check(rc == 0 and "1 more approval needed (policy majority: 2 of 4" in out,
          "half is not a majority: %r" % out)
    r = c.json1("group", "approve", "#erfa", e.address)
    check(r["admitted"], "3 of 4 admit: %r" % r)
    m = members(d)
    check(m["policy"] == "majority" and m["retention_days"] == 7 and len(m["members"]) == 5,
          "members: %r" % m)
    rc, out, err = a.run("group", "policy", "#erfa", "some", json_out=False)
    check(rc == 2 and "policy" in err, "bad policy: %r" % err)
    # Errors say what to do next.
    rc, out, err = b.run("group", "role", "#erfa", c.address, "facilitator", json_out=False)
    check(rc == 1 and "only a facilitator" in err and a.address in err,
          "roles need a facilitator: %r" % err)
    rc, out, err = b.run("group", "policy", "#erfa", "all", json_out=False)
    check(rc == 1 and "only a facilitator" in err, "so does the policy: %r" % err)
    rc, out, err = b.run("group", "retention", "#erfa", "3", json_out=False)
    check(rc == 1 and "only a facilitator" in err, "and the retention: %r" % err)
    # Under majority a member's remove is a vote: more than half of the
    # other 4 members (3) must vote.
    rc, out, err = b.run("group", "remove", "#erfa", e.address, json_out=False)
    check(rc == 0 and "vote recorded: 2 more votes needed" in out, "first vote: %r %r" % (out, err))
    rc, out, err = d.run("group", "members", "#erfa", json_out=False)
    check("1 vote to remove; 2 more needed" in out, "members shows the votes: %r" % out)
    m = [x for x in members(d)["members"] if x["address"] == e.address]
    check(m and m[0]["removal_votes"] == 1 and m[0]["removal_missing"] == 2, "json: %r" % m)
    r = c.json1("group", "remove", "#erfa", e.address)
    check(r["action"] == "vote" and r["missing"] == 1 and not r["removed"], "second vote: %r" % r)
    rc, out, err = d.run("group", "remove", "#erfa", e.address, json_out=False)
    check(rc == 0 and "%s was removed" % e.address in out, "third vote removes: %r" % out)
    check(e.address not in [x["address"] for x in members(a)["members"]], "erik is gone")
    rc, out, err = a.run("group", "retention", "#erfa", "0", json_out=False)
    check(rc == 0 and "kept until read, at most the relay's TTL (default 30 days)" in out,
          "retention 0: %r %r" % (out, err))
    r = a.json1("group", "policy", "#erfa", "facilitators")
    check(r["policy"] == "facilitators" and r["retention_days"] == 0, "policy: %r" % r)
    rc, out, err = a.run("group", "leave", "#erfa", json_out=False)
    check(rc == 1 and "--successor" in err, "the last facilitator must name one: %r" % err)
    rc, out, err = a.run("group", "create", "#erfa", json_out=False)
    check(rc == 1 and "exists already" in err, "duplicate create: %r" % err)
    rc, out, err = a.run("group", "create", "erfa", json_out=False)
    check(rc == 2, "a group address needs #: %d" % rc)
    rc, out, err = a.run("group", "create", "#x", "--policy", "some", json_out=False)
    check(rc == 2 and "--policy" in err, "bad policy is a usage error: %r" % err)
    rc, out, err = a.run("group", "approve", "#erfa", "nobody@oslo.test", json_out=False)
    check(rc == 1 and "has not been invited" in err, "approve of a stranger: %r" % err)
    rc, out, err = e.run("group", "members", "#nope", json_out=False)
    check(rc == 1 and "knows no group" in err, "unknown group: %r" % err)
    a.ok("group", "role", "#erfa", b.address, "facilitator")
    r = a.json1("group", "leave", "#erfa")
    check(r["action"] == "left", "a facilitator may leave when another remains: %r" % r)
    check(a.address not in [x["address"] for x in members(b)["members"]], "alice left")


def three(root, relays, policy="facilitators", extra=()):
    relay = new_relay(root, relays, extra=extra)
    a, b, c, d = users(root, relay, ["alice", "bob", "carol", "dave"])
    a.ok("group", "create", "#erfa", "--policy", policy)
    admit(a, [b, c], lambda i: [])
    for u in (a, b, c, d):
        u.receive(0)
    return relay, a, b, c, d


def test_request_to_join(root, relays):
    relay, a, b, c, d = three(root, relays)
    rc, out, err = d.run("group", "request", GROUP, json_out=False)
    check(rc == 0 and "Asked to join" in out, "request: %d %r %r" % (rc, out, err))
    rc, out, err = d.run("group", "request", GROUP, json_out=False)
    check(rc == 1 and "already a candidate" in err, "a second request is refused: %r" % err)
    m = members(b)
    check([x["address"] for x in m["candidates"]] == [d.address] and
          m["candidates"][0]["approvals"] == 0, "the request shows as a candidate: %r" % m)
    rc, out, err = b.run("group", "approve", "#erfa", d.address, json_out=False)
    check(rc == 0 and "a facilitator's approval is needed" in out,
          "policy facilitators: a member's approval does not admit: %r" % out)
    r = a.json1("group", "approve", "#erfa", d.address)
    check(r["admitted"], "a facilitator's approval admits: %r" % r)
    a.ok("send", "#erfa", "velkommen dave")
    got = [m for m in d.receive(0) if m.get("text") == "velkommen dave"]
    check(len(got) == 1 and got[0]["from"] == a.address, "the new member reads on: %r" % got)


def test_removed_member_cannot_read(root, relays):
    relay, a, b, c, d = three(root, relays)
    a.ok("send", "#erfa", "før fjerning")
    b.ok("send", "#erfa", "bob før")
    got = [m["text"] for m in c.receive(0) if m.get("group")]
    check(sorted(got) == ["bob før", "før fjerning"], "carol reads while a member: %r" % got)
    r = a.json1("group", "remove", "#erfa", c.address)
    check(r["action"] == "removed", "remove: %r" % r)
    rc, out, err = c.run("receive", json_out=False)
    check("removed from %s by %s" % (GROUP, a.address) in out, "carol is told: %r" % out)
    a.ok("send", "#erfa", "hemmelig etter fjerning")
    b.ok("send", "#erfa", "bob etter")
    out = c.ok("receive", json_out=False)
    check("etter" not in out, "a removed member receives nothing new: %r" % out)
    rc, out, err = c.run("send", "#erfa", "hallo?", json_out=False)
    check(rc == 1 and "not a member" in err, "nor writes: %r" % err)

    # A malicious relay gives carol her membership and cursor back.
    relay.stop()
    db = relay_db(relay)
    uid = db.execute("SELECT id FROM users WHERE handle = 'carol'").fetchone()[0]
    gid, log = db.execute("SELECT id, log FROM groups WHERE address = ?", (GROUP,)).fetchone()
    n = db.execute("UPDATE group_members SET state = 1, join_seq = 0 WHERE grp = ? AND user = ?",
                   (gid, uid)).rowcount
    check(n == 1, "carol's membership row exists")
    db.execute("INSERT OR REPLACE INTO cursors(log, reader, acked) VALUES(?, ?, 0)", (log, uid))
    db.commit()
    db.close()
    relay.start()
    rc, out, err = c.run("receive", json_out=True)
    check(rc == 0, "receive: %r" % err)
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    texts = [x.get("text") for x in lines]
    check("hemmelig etter fjerning" not in texts and "bob etter" not in texts,
          "the captured entries do not decrypt for carol: %r" % lines)
    warn = [x for x in lines if x.get("warning") == "undecryptable"]
    check(warn and "cannot be decrypted" in warn[0]["message"],
          "carol is told she cannot read them: %r" % lines)
    # With --json too, a warning also goes to stderr, as every client warning does.
    check("%s: " % GROUP in err and "cannot be decrypted" in err,
          "and so is the person at the terminal: %r" % err)
    cdb = sqlite3.connect(c.home + "/kollega.db")
    pend = cdb.execute("SELECT count(*) FROM group_pending").fetchone()[0]
    keys = cdb.execute("SELECT count(*) FROM sender_keys").fetchone()[0]
    cdb.close()
    check(pend == 0 and keys == 0,
          "a removed member keeps no keys nor pending entries: %d %d" % (pend, keys))
    # The remaining members read them.
    got = sorted(m["text"] for m in b.receive(0) if m.get("group"))
    check("hemmelig etter fjerning" in got, "bob reads alice's message: %r" % got)


def test_forged_member_detected(root, relays):
    relay, a, b, c, d = three(root, relays)
    a.ok("send", "#erfa", "første")
    b.receive(0)
    # The relay's operator slips dave in: a copy of an old op as the next
    # one, and a membership row.
    relay.stop()
    db = relay_db(relay)
    gid, nxt = db.execute("SELECT id, next_index FROM groups WHERE address = ?",
                          (GROUP,)).fetchone()
    op = db.execute("SELECT op FROM group_ops WHERE grp = ? AND idx = 1", (gid,)).fetchone()[0]
    db.execute("INSERT INTO group_ops(grp, idx, op) VALUES(?, ?, ?)", (gid, nxt, op))
    db.execute("UPDATE groups SET next_index = ? WHERE id = ?", (nxt + 1, gid))
    duid, dkey = db.execute("SELECT id, identity_key FROM users WHERE handle = 'dave'").fetchone()
    db.execute("INSERT INTO group_members(grp, identity_key, user, state, role, join_seq)"
               " VALUES(?, ?, ?, 1, 1, 0)", (gid, dkey, duid))
    db.commit()
    db.close()
    relay.start()
    rc, out, err = a.run("receive", json_out=False)
    check("invalid group operation at index %d" % nxt in err and "ignoring it" in err,
          "alice is warned about the forged op: %r" % err)
    m = members(a)
    check(d.address not in [x["address"] for x in m["members"]] and not m["log_valid"],
          "dave is no member in alice's validated log: %r" % m)
    # Nobody writes into a group whose membership cannot be trusted.
    for who in (a, b):
        rc, out, err = who.run("send", "#erfa", "ingen nøkkel til dave", json_out=False)
        check(rc == 1 and "nothing was sent" in err and "invalid operation" in err,
              "sending is refused while the log is invalid: %d %r" % (rc, err))
    rc, out, err = d.run("receive", json_out=False)
    check("nøkkel" not in out and "heller ikke" not in out, "dave reads nothing: %r" % out)
    ddb = sqlite3.connect(d.home + "/kollega.db")
    keys = ddb.execute("SELECT count(*) FROM sender_keys").fetchone()[0]
    ddb.close()
    check(keys == 0, "no member sent dave a group key: %d" % keys)


def test_withheld_op_refuses_the_author(root, relays):
    relay, a, b, c, d = three(root, relays)
    b.receive(0)
    a.ok("group", "role", "#erfa", c.address, "facilitator")
    a.ok("send", "#erfa", "skrevet etter rolleendringen")
    # The relay's operator hides the role change from bob: alice's message
    # names a log longer than the one bob is shown.
    relay.stop()
    db = relay_db(relay)
    gid, nxt = db.execute("SELECT id, next_index FROM groups WHERE address = ?",
                          (GROUP,)).fetchone()
    db.execute("DELETE FROM group_ops WHERE grp = ? AND idx = ?", (gid, nxt - 1))
    db.execute("UPDATE groups SET next_index = ? WHERE id = ?", (nxt - 1, gid))
    db.commit()
    db.close()
    relay.start()
    rc, out, err = b.run("receive", json_out=False)
    want = ("%s: a message from %s was not shown: %s's client claims a history of the group that "
            "differs from yours at index %d; either %s's client misbehaves or the relay shows "
            "members different histories" % (GROUP, a.address, a.address, nxt - 1, a.address))
    check(rc == 0 and want in err and "skrevet etter" not in out,
          "bob is warned about alice's claim, and it is not shown: %r %r" % (out, err))
    # A claim is no proof: bob still writes, and alice reads him.
    b.ok("send", "#erfa", "bob skriver videre")
    got = [m["text"] for m in a.receive(0) if m.get("group")]
    check(got == ["bob skriver videre"], "alice reads bob: %r" % got)


def copy_db(src, dst):
    """Copy a stopped relay's database (and its -wal/-shm, if any)."""
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(dst + sfx):
            os.unlink(dst + sfx)
        if os.path.exists(src + sfx):
            shutil.copyfile(src + sfx, dst + sfx)


def test_relay_rewriting_history_is_a_fork(root, relays):
    relay, a, b, c, d = three(root, relays)
    b.receive(0)
    saved = os.path.join(root, "relay-before.db")
    relay.stop()
    copy_db(relay.db_path(), saved)
    relay.start()
    a.ok("group", "role", "#erfa", c.address, "facilitator")
    b.receive(0)
    # The operator rolls the relay back and lets carol write another op at
    # the same index: the relay now serves bob a second, validly signed op 3.
    relay.stop()
    copy_db(saved, relay.db_path())
    relay.start()
    c.ok("group", "invite", "#erfa", d.address)
    rc, out, err = b.run("receive", json_out=False)
    check(rc == 0 and "the relay showed you two different operations at index 3" in err,
          "bob has the relay's proof of a fork: %r" % err)
    rc, out, err = b.run("send", "#erfa", "hallo", json_out=False)
    check(rc == 1 and "nothing was sent" in err and "a fork" in err,
          "bob sends nothing into a forked group: %d %r" % (rc, err))


def test_hostile_member_claims_another_history(root, relays):
    relay, a, b, c, d = three(root, relays)
    c.ok("send", "#erfa", "hei fra carol")
    for u in (a, b):
        got = [m["text"] for m in u.receive(0) if m.get("group")]
        check(got == ["hei fra carol"], "carol's first message is read: %r" % got)
    # carol's client, played by kl-probe, claims a head no log has.
    r = probe_member(relay, c, "group-send", GROUP, "falsk historie", "--head-bogus")
    check(r["ok"], "the relay takes it (it cannot see inside): %r" % r)
    lines = b.receive(0)
    warn = [x for x in lines if x.get("warning") == "history_differs"]
    check(len(warn) == 1 and warn[0]["group"] == GROUP and
          ("a message from %s was not shown" % c.address) in warn[0]["message"] and
          "differs from yours at index 2" in warn[0]["message"],
          "bob is told which author claims another history: %r" % lines)
    check("falsk historie" not in [x.get("text") for x in lines], "and it is not shown: %r" % lines)
    # Nobody else is frozen: bob and alice write and read on.
    b.ok("send", "#erfa", "bob skriver videre")
    a.ok("send", "#erfa", "alice også")
    got = sorted(m["text"] for m in a.receive(0) if "text" in m)
    check(got == ["bob skriver videre"], "alice reads bob: %r" % got)
    got = sorted(m["text"] for m in c.receive(0) if "text" in m)
    check(got == ["alice også", "bob skriver videre"], "carol reads both: %r" % got)
    # Told once per author: a second bogus message is refused silently.
    probe_member(relay, c, "group-send", GROUP, "enda en", "--head-bogus")
    lines = b.receive(0)
    check([x for x in lines if x.get("warning")] == [] and
          sorted(x["text"] for x in lines if "text" in x) == ["alice også"],
          "no second warning, nothing bogus shown: %r" % lines)
    ckey = c.json1("whoami")["identity_key"]
    check(disputes(b) == [ckey], "bob's store holds carol's dispute: %r" % disputes(b))
    # Removing the author ends it.
    a.ok("group", "remove", "#erfa", c.address)
    b.receive(0)
    check(disputes(b) == [] and disputes(a) == [], "the dispute ended with the removal")


def disputes(u):
    """The authors (base64url identity keys) u's store holds a dispute for."""
    db = sqlite3.connect(os.path.join(u.home, "kollega.db"))
    try:
        keys = [k for (k,) in db.execute("SELECT author FROM group_disputes")]
    finally:
        db.close()
    return [base64.urlsafe_b64encode(k).decode().rstrip("=") for k in keys]


def group_texts(lines):
    return [(m["from"], m["text"]) for m in lines if m.get("group") == GROUP and "text" in m]


def test_farewell_before_leaving_is_read(root, relays):
    relay, a, b, c, d = three(root, relays)
    # alice writes (her first message: her key goes out with it) and
    # leaves at once; bob and carol fetch only afterwards.
    a.ok("send", "#erfa", "takk for meg")
    a.ok("group", "leave", "#erfa", "--successor", b.address)
    for u in (b, c):
        lines = u.receive(0)
        check(group_texts(lines) == [(a.address, "takk for meg")],
              "%s reads alice's farewell: %r" % (u.name, lines))
        check([x for x in lines if x.get("warning")] == [], "no warning: %r" % lines)


def test_removed_right_after_writing_is_read(root, relays):
    relay, a, b, c, d = three(root, relays)
    c.ok("send", "#erfa", "siste ord")
    a.ok("group", "remove", "#erfa", c.address)
    got = group_texts(b.receive(0))
    check(got == [(c.address, "siste ord")], "bob reads what carol wrote as a member: %r" % got)


def plant_entry(relay, body):
    """The relay's operator appends body to the group's message log."""
    relay.stop()
    db = relay_db(relay)
    log = group_log_id(db)
    seq = db.execute("SELECT last_seq FROM logs WHERE id = ?", (log,)).fetchone()[0] + 1
    db.execute("INSERT INTO entries(log, seq, ts_ms, expires_ms, body) VALUES(?, ?, ?, ?, ?)",
               (log, seq, int(time.time() * 1000), int(time.time() * 1000) + 86400000,
                bytes.fromhex(body)))
    db.execute("UPDATE logs SET last_seq = ?, n_entries = n_entries + 1 WHERE id = ?", (seq, log))
    db.commit()
    db.close()
    relay.start()


def test_message_bound_after_exit_is_refused(root, relays):
    relay, a, b, c, d = three(root, relays)
    c.ok("send", "#erfa", "mens jeg er medlem")
    b.receive(0)
    a.ok("group", "remove", "#erfa", c.address)
    # carol's client learns the removal (without forgetting her keys yet);
    # kl-probe, as carol, writes under the view after it, and the relay's
    # operator slips that into the log.
    c.ok("group", "members", "#erfa")
    r = probe_member(relay, c, "group-send", GROUP, "skrevet etter fjerningen", "--print")
    plant_entry(relay, r["body"])
    lines = b.receive(0)
    warn = [x for x in lines if x.get("warning") == "refused"]
    check(len(warn) == 1 and ("a message from %s was refused" % c.address) in warn[0]["message"]
          and ("bound to index %d" % r["index"]) in warn[0]["message"] and
          "not a member" in warn[0]["message"], "bob refuses it, saying why: %r" % lines)
    check(group_texts(lines) == [], "and does not show it: %r" % lines)


def test_old_key_after_removal_is_refused(root, relays):
    relay, a, b, c, d = three(root, relays)
    a.ok("group", "invite", "#erfa", d.address)
    for u in (a, b, c, d):
        u.receive(0)
    c.ok("send", "#erfa", "med gammel nøkkel")
    check(group_texts(b.receive(0)) == [(c.address, "med gammel nøkkel")], "read before")
    a.ok("group", "remove", "#erfa", d.address)
    # carol's client (kl-probe) writes under the new view with the key of
    # the epoch before the removal, which dave still holds.
    c.ok("group", "members", "#erfa")
    r = probe_member(relay, c, "group-send", GROUP, "dave kan lese dette")
    check(r["ok"], "the relay cannot tell which key was used: %r" % r)
    lines = b.receive(0)
    warn = [x for x in lines if x.get("warning") == "refused"]
    check(len(warn) == 1 and "group key of epoch 0" in warn[0]["message"] and
          "the group's epoch was 1" in warn[0]["message"], "bob refuses it: %r" % lines)
    check(group_texts(lines) == [], "and does not show it: %r" % lines)
    # An honest client renews its key: read.
    c.ok("send", "#erfa", "ny nøkkel")
    check(group_texts(b.receive(0)) == [(c.address, "ny nøkkel")], "renewed key read")


def test_follow_gets_pushed_group_messages(root, relays):
    relay, a, b, c, d = three(root, relays, extra=DEBUG_LOG)
    before = logins(relay, "bob")
    p = subprocess.Popen([CLIENT, "--home", b.home, "--json", "receive", "--timeout", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=b.env(),
                         stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while logins(relay, "bob") == before and time.time() < deadline:
            time.sleep(0.05)
        a.ok("send", "#erfa", "direkte til deg")
        got = []
        while time.time() < deadline and not got:
            line = p.stdout.readline().decode()
            if not line:
                break
            m = json.loads(line)
            if m.get("text") == "direkte til deg":
                got.append(m)
        check(got and got[0]["from"] == a.address and got[0]["group"] == GROUP,
              "a listening member gets the group message pushed: %r" % got)
    finally:
        p.terminate()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def test_retention(root, relays):
    relay = new_relay(root, relays)
    a, b = users(root, relay, ["alice", "bob"])
    a.ok("group", "create", "#erfa", "--retention", "1")
    admit(a, [b], lambda i: [])
    b.receive(0)
    a.ok("send", "#erfa", "forsvinner snart")
    db = relay_db(relay)
    log = group_log_id(db)
    ts, exp = db.execute("SELECT ts_ms, expires_ms FROM entries WHERE log = ?", (log,)).fetchone()
    db.close()
    check(abs((exp - ts) - 86400000) < 5000, "the entry expires after the group's 1 day: %d" %
          (exp - ts))
    got = [m["text"] for m in b.receive(0) if m.get("group")]
    check(got == ["forsvinner snart"], "bob reads it: %r" % got)
    check(len([m for m in b.jsonl("history", "#erfa")]) == 1, "in bob's history")
    # Two days later (aged in bob's store): history forgets it.
    bdb = sqlite3.connect(b.home + "/kollega.db")
    # The relay's entry time counts, not when bob stored it.
    bdb.execute("UPDATE messages SET relay_ts = relay_ts - 2 * 86400000 WHERE peer = ?",
                (GROUP,))
    bdb.commit()
    bdb.close()
    rc, out, err = b.run("history", "#erfa", json_out=False)
    check(rc == 0 and "No messages" in out, "expired messages leave bob's history: %r" % out)
    bdb = sqlite3.connect(b.home + "/kollega.db")
    n = bdb.execute("SELECT count(*) FROM messages WHERE peer = ?", (GROUP,)).fetchone()[0]
    bdb.close()
    check(n == 0, "and the store: %d" % n)
    # The relay deletes an expired entry nobody fetched.
    a.ok("send", "#erfa", "ulest")
    relay.stop()
    db = relay_db(relay)
    db.execute("UPDATE entries SET expires_ms = 1 WHERE log = ?", (log,))
    db.commit()
    db.close()
    relay.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        db = relay_db(relay)
        n = db.execute("SELECT count(*) FROM entries WHERE log = ?", (log,)).fetchone()[0]
        db.close()
        if n == 0:
            break
        time.sleep(0.2)
    check(n == 0, "the relay deletes expired group entries: %d left" % n)
    check([m for m in b.receive(0) if m.get("group")] == [], "nothing expired is delivered")


if __name__ == "__main__":
    main([test_policy_all_five_members, test_majority, test_request_to_join,
          test_removed_member_cannot_read,
          test_forged_member_detected, test_withheld_op_refuses_the_author,
          test_relay_rewriting_history_is_a_fork, test_hostile_member_claims_another_history,
          test_farewell_before_leaving_is_read, test_removed_right_after_writing_is_read,
          test_message_bound_after_exit_is_refused, test_old_key_after_removal_is_refused,
          test_follow_gets_pushed_group_messages, test_retention])
