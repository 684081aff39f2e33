"""One-time prekeys cannot be drained: a hostile user
(kl-probe drain) looping prekey_fetch for a real client's address gets at
most the relay's allowance of one-time prekeys, on the target's own relay
and through a federated peer relay (where the peer relay as a whole has a
budget too); the target keeps the rest and is not told anything. When
the prekeys really run out (limits raised by flags for the test), the
owner's next command of any kind says so, on stderr and as a JSON warning
with --json, and uploads new ones."""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))

from kl import Client, Relay, check, main  # noqa: E402
from probe_user import ProbeUser  # noqa: E402
from test_federation import federation, relay_cmd, wait_link  # noqa: E402

RAN_OUT = "one-time prekeys ran out"
OPEN = ["--opk-per-pair", "1000", "--opk-per-requester", "1000", "--opk-per-target", "1000"]


def opk_count(relay, handle):
    """One-time prekeys the relay holds for a local user (read-only look at
    its database, which is in WAL mode: safe while the relay runs)."""
    db = sqlite3.connect("file:%s?mode=ro" % relay.db_path(), uri=True)
    try:
        row = db.execute("SELECT count(*) FROM onetime_prekeys o JOIN users u ON u.id = o.user"
                         " WHERE u.handle = ?", (handle,)).fetchone()
        return row[0]
    finally:
        db.close()


def start_relay(root, relays, name, extra):
    r = Relay(root, name=name, extra=extra)
    relay_cmd("init", "--data", r.data, "--name", name, "--listen", "127.0.0.1:0")
    relays.append(r)
    r.start()
    r.first_invite = r.read_first_invite()
    return r


def drain(user, target, n):
    rc, lines = user.run("drain", target, n)
    res = lines[-1]
    check(rc == 0 and res.get("mode") == "drain" and not res["closed"],
          "drain did not run: %r" % lines)
    check(res["bundles"] == n and res["errors"] == 0,
          "every fetch should get a bundle (with or without one-time prekey): %r" % res)
    return res


def test_local_drain_limited(root, relays):
    relay = start_relay(root, relays, "oslo.test", [])
    bob = Client(root, "bob").init(relay.first_invite)
    alice = Client(root, "alice").init(relay.invite())
    check(opk_count(relay, "bob") == 100, "bob starts with 100 one-time prekeys")
    eve = ProbeUser(root, relay, "eve").register()
    res = drain(eve, bob.address, 300)
    check(res["opks"] <= 1, "eve drained %d of bob's one-time prekeys: %r" % (res["opks"], res))
    check(res["without_opk"] >= 299, "the rest were served without: %r" % res)
    # A second hostile user gets its own single one, not more.
    mallory = ProbeUser(root, relay, "mallory").register()
    res2 = drain(mallory, bob.address, 100)
    check(res2["opks"] <= 1, "mallory got %r" % res2)
    check(opk_count(relay, "bob") >= 98, "bob keeps his one-time prekeys: %d left"
          % opk_count(relay, "bob"))
    # A real conversation still starts, and bob is told nothing: his
    # prekeys did not run out.
    alice.ok("send", bob.address, "Hei Bob")
    rc, out, err = bob.run("receive", "--timeout", "2", json_out=False)
    check(rc == 0 and "Hei Bob" in out, "bob receives: %s %s" % (out, err))
    check(RAN_OUT not in err and RAN_OUT not in out, "no ran-out notice: %s" % err)


def test_federated_drain_limited(root, relays):
    rs = federation(root, relays, names=["oslo.test", "stockholm.test"])
    wait_link(rs["oslo"], rs["stockholm"])
    wait_link(rs["stockholm"], rs["oslo"])
    bob = Client(root, "bob").init(rs["stockholm"].first_invite)
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    eve = ProbeUser(root, rs["oslo"], "eve").register()
    res = drain(eve, bob.address, 200)
    check(res["opks"] <= 1, "eve (via oslo) drained %d: %r" % (res["opks"], res))
    check(opk_count(rs["stockholm"], "bob") >= 99, "bob keeps his one-time prekeys")
    alice.ok("send", bob.address, "Hei fra Oslo")
    rc, out, err = bob.run("receive", "--timeout", "2", json_out=False)
    check(rc == 0 and "Hei fra Oslo" in out, "bob receives: %s %s" % (out, err))
    check(RAN_OUT not in err, "no ran-out notice: %s" % err)


def test_peer_budget(root, relays):
    """A peer relay's users together get at most --opk-per-peer one-time
    prekeys per window, whatever the number of users it names."""
    rs = federation(root, relays, names=["oslo.test", "stockholm.test"])
    for r in relays:
        r.stop()
        r.extra += ["--opk-per-peer", "3"]
        r.start()
    wait_link(rs["oslo"], rs["stockholm"])
    wait_link(rs["stockholm"], rs["oslo"])
    bob = Client(root, "bob").init(rs["stockholm"].invite())
    got = 0
    for i in range(6):
        u = ProbeUser(root, rs["oslo"], "sybil%d" % i).register()
        got += drain(u, bob.address, 20)["opks"]
    check(got == 3, "six users of oslo got %d one-time prekeys (budget 3)" % got)
    check(opk_count(rs["stockholm"], "bob") == 97, "bob keeps the rest")
    # A user of stockholm itself is not held by oslo's budget.
    local = ProbeUser(root, rs["stockholm"], "kari").register()
    check(drain(local, bob.address, 5)["opks"] == 1, "a local user still gets one")


def test_ran_out_notice_and_refill(root, relays):
    """With the limits opened by flags, eve really exhausts bob's one-time
    prekeys; bob's next command (a send) tells him and refills; the next
    connection says nothing; --json gives a warning object."""
    relay = start_relay(root, relays, "oslo.test", OPEN)
    bob = Client(root, "bob").init(relay.first_invite)
    alice = Client(root, "alice").init(relay.invite())
    eve = ProbeUser(root, relay, "eve").register()
    res = drain(eve, bob.address, 110)
    check(res["opks"] == 100 and res["without_opk"] == 10, "eve exhausted them: %r" % res)
    check(opk_count(relay, "bob") == 0, "none left")
    rc, out, err = bob.run("send", alice.address, "Hei Alice", json_out=False)
    check(rc == 0, "send works: %s" % err)
    check("one-time prekeys ran out 10 times since" in err and
          "100 new ones were uploaded" in err, "the ran-out notice on stderr: %r" % err)
    check(opk_count(relay, "bob") == 100, "refilled: %d" % opk_count(relay, "bob"))
    rc, out, err = bob.run("receive", "--timeout", "1", json_out=False)
    check(rc == 0 and RAN_OUT not in err, "told once: %r" % err)
    # Again, with --json: one warning object on stdout.
    drain(eve, bob.address, 103)
    lines = bob.jsonl("receive", "--timeout", "1")
    warn = [l for l in lines if l.get("warning") == "prekeys_ran_out"]
    check(len(warn) == 1 and warn[0]["ran_out"] == 3 and warn[0]["uploaded"] == 100 and
          warn[0]["since"] > 0 and RAN_OUT in warn[0]["message"], "json warning: %r" % lines)
    check(opk_count(relay, "bob") == 100, "refilled again")
    # Fetches held back by the limits are not "ran out": with the default
    # limits, eve gets nothing more of bob's within the window and bob is
    # not told anything.
    relay.stop()
    relay.extra = []
    relay.start()
    drain(eve, bob.address, 50)
    rc, out, err = bob.run("receive", "--timeout", "1", json_out=False)
    check(rc == 0 and RAN_OUT not in err, "no notice for limited fetches: %r" % err)
    check(opk_count(relay, "bob") >= 99, "bob keeps them: %d" % opk_count(relay, "bob"))


if __name__ == "__main__":
    main([test_local_drain_limited, test_federated_drain_limited, test_peer_budget,
          test_ran_out_notice_and_refill])
