"""Relay federation with three relays (oslo, stockholm, riga) on loopback:
1:1 messages across relays both ways with real clients, a peer relay killed
for a while (messages queued, then delivered exactly once), kill -9 of the
sending relay with a non-empty outbox, a relay with a wrong key refused, and
UNAVAILABLE for a relay that is not a peer."""
import json
import os
import random
import socket
import subprocess
import time

from kl import RELAY, TIMEOUT, Client, Fail, Relay, check, main

NAMES = ["oslo.test", "stockholm.test", "riga.test"]


_GIVEN = set()


def free_port():
    """A loopback port free right now, for a relay to bind a moment later:
    taken below the ephemeral range (32768 and up on Linux), so that no
    other program's bind(0) or outgoing connection gets it in between, and
    never one this process handed out before (two relays of one test given
    the same port: the second cannot bind, the first dials itself). Other
    test processes draw from their own slice of the range (by pid), so
    tests running side by side do not pick each other's ports either."""
    slices = 16
    width = 12000 // slices
    lo = 20000 + (os.getpid() % slices) * width
    for _ in range(500):
        port = random.randrange(lo, lo + width)
        if port in _GIVEN:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            _GIVEN.add(port)
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Fail("no free loopback port between 20000 and 32000")


def relay_cmd(*args):
    r = subprocess.run([RELAY] + list(args), capture_output=True, timeout=TIMEOUT)
    check(r.returncode == 0, "kollega-relay %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout.decode()


def federation(root, relays, names=NAMES, wrong=None, extra=()):
    """Initialise the relays, make every pair peers (wrong=(a, b): a has a
    wrong key for b), start them, and return them by short name."""
    out = {}
    for n in names:
        r = Relay(root, name=n)
        r.fed_port = free_port()
        r.extra = ["--federation-listen", "127.0.0.1:%d" % r.fed_port,
                   "--federation-retry-max", "1"] + list(extra)
        relay_cmd("init", "--data", r.data, "--name", n, "--listen", "127.0.0.1:0")
        r.key = r.status()["public_key"]
        out[n.split(".")[0]] = r
    for a in out.values():
        for b in out.values():
            if a is b:
                continue
            key = b.key
            if wrong == (a.name, b.name):
                key = out[[k for k in out if out[k] not in (a, b)][0]].key
            relay_cmd("peer", "add", "--data", a.data, b.name, "127.0.0.1:%d" % b.fed_port, key)
    for r in out.values():
        relays.append(r)
        r.start()
        r.first_invite = r.read_first_invite()
    return out


def peer_state(relay, peer):
    for p in relay.status().get("peers", []):
        if p["name"] == peer:
            return p
    return None


def wait_for(what, cond, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    check(False, "timed out waiting for %s" % what)


def wait_link(a, b):
    wait_for("link %s -> %s" % (a.name, b.name),
             lambda: (peer_state(a, b.name) or {}).get("link") == "up")


def receive_until(client, n, limit=30):
    got = []
    deadline = time.time() + limit
    while len(got) < n and time.time() < deadline:
        got += client.receive(timeout=1)
    return got


def users(root, rs):
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    bob = Client(root, "bob").init(rs["stockholm"].first_invite)
    return alice, bob


def test_cross_relay_both_ways(root, relays):
    rs = federation(root, relays)
    alice, bob = users(root, rs)
    rita = Client(root, "rita").init(rs["riga"].first_invite)
    for a in rs.values():
        for b in rs.values():
            if a is not b:
                wait_link(a, b)
    alice.ok("send", bob.address, "Hei Bob, fra Oslo")
    msgs = receive_until(bob, 1)
    check([m["text"] for m in msgs] == ["Hei Bob, fra Oslo"], "bob got: %r" % msgs)
    check(msgs[0]["from"] == alice.address, "from: %r" % msgs[0])
    bob.ok("send", alice.address, "Hej Alice, från Stockholm")
    msgs = receive_until(alice, 1)
    check([m["text"] for m in msgs] == ["Hej Alice, från Stockholm"], "alice got: %r" % msgs)
    rita.ok("send", alice.address, "Sveiki no Rīgas")
    rita.ok("send", bob.address, "Sveiki, Bob")
    check([m["text"] for m in receive_until(alice, 1)] == ["Sveiki no Rīgas"], "riga -> oslo")
    check([m["text"] for m in receive_until(bob, 1)] == ["Sveiki, Bob"], "riga -> stockholm")
    # Safety numbers agree across relays (lookups are proxied).
    va = alice.json1("contact", "verify", bob.address)
    vb = bob.json1("contact", "verify", alice.address)
    check(va["safety_number"] == vb["safety_number"], "safety numbers differ across relays")
    # Outboxes drain once acknowledged, and nothing arrives twice.
    wait_for("empty outbox", lambda: peer_state(rs["oslo"], "stockholm.test")["outbox"] == 0)
    check(alice.receive() == [] and bob.receive() == [], "nothing is delivered twice")
    # The relays never learn who sent: no sender address in the receiving database.
    with open(rs["stockholm"].db_path(), "rb") as f:
        check(b"alice@oslo.test" not in f.read(), "the sender's address reached stockholm's db")
    st = relay_cmd("status", "--data", rs["oslo"].data)
    check("peer            stockholm.test" in st and "link up" in st, "status text: %s" % st)


def test_peer_down_queued_then_exactly_once(root, relays):
    rs = federation(root, relays, names=NAMES[:2])
    alice, bob = users(root, rs)
    wait_link(rs["oslo"], rs["stockholm"])
    alice.ok("send", bob.address, "første")
    check([m["text"] for m in receive_until(bob, 1)] == ["første"], "first message")
    rs["stockholm"].kill9()
    texts = ["andre", "tredje", "fjerde"]
    for t in texts:
        alice.ok("send", bob.address, t)  # exit 0: durable in oslo's outbox
    p = wait_for("oslo to see stockholm down",
                 lambda: (lambda s: s if s["link"] != "up" else None)(peer_state(rs["oslo"], "stockholm.test")))
    check(p["outbox"] == 3, "three entries queued for stockholm: %r" % p)
    rs["stockholm"].start()
    msgs = receive_until(bob, 3)
    check([m["text"] for m in msgs] == texts, "queued messages in order, once: %r" % msgs)
    wait_for("empty outbox", lambda: peer_state(rs["oslo"], "stockholm.test")["outbox"] == 0)
    check(bob.receive(timeout=2) == [], "nothing is delivered twice")


def test_sender_killed_with_outbox(root, relays):
    rs = federation(root, relays, names=NAMES[:2])
    alice, bob = users(root, rs)
    wait_link(rs["oslo"], rs["stockholm"])
    alice.ok("send", bob.address, "en")
    check([m["text"] for m in receive_until(bob, 1)] == ["en"], "first message")
    rs["stockholm"].stop()
    alice.ok("send", bob.address, "to")
    alice.ok("send", bob.address, "tre")
    rs["oslo"].kill9()
    rs["stockholm"].start()
    rs["oslo"].start()
    msgs = receive_until(bob, 2)
    check([m["text"] for m in msgs] == ["to", "tre"], "nothing lost by kill -9: %r" % msgs)
    check(bob.receive(timeout=2) == [], "nothing is delivered twice")


def test_wrong_key_refused(root, relays):
    # oslo holds a wrong key for riga: neither direction may connect.
    rs = federation(root, relays, wrong=("oslo.test", "riga.test"))
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    rita = Client(root, "rita").init(rs["riga"].first_invite)
    wait_link(rs["oslo"], rs["stockholm"])
    wait_for("riga's refusal in oslo's log", lambda: "refused a link" in rs["oslo"].read_log())
    wait_for("oslo's refusal in riga's log", lambda: "refused a link" in rs["riga"].read_log())
    check(peer_state(rs["oslo"], "riga.test")["link"] != "up", "oslo -> riga must not be up")
    check(peer_state(rs["riga"], "oslo.test")["link"] != "up", "riga -> oslo must not be up")
    rc, out, err = alice.run("send", rita.address, "hei")
    check(rc == 1, "sending over a refused link fails: %d %s" % (rc, err))
    check("UNAVAILABLE" in err, "the error says UNAVAILABLE: %r" % err)


def test_unknown_relay_unavailable(root, relays):
    rs = federation(root, relays, names=NAMES[:1])
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    rc, out, err = alice.run("send", "kari@reykjavik.test", "hæ")
    check(rc == 1, "exit 1 for an unknown relay, got %d" % rc)
    check("no federation peer for reykjavik.test" in err, "error: %r" % err)
    rc, out, err = alice.run("contact", "add", "kari@reykjavik.test")
    check(rc == 1 and "no federation peer" in err, "contact add: %d %r" % (rc, err))
    # An unconfigured relay cannot open a link either.
    stranger = Relay(root, name="stranger.test")
    stranger.fed_port = free_port()
    relay_cmd("init", "--data", stranger.data, "--name", "stranger.test", "--listen", "127.0.0.1:0")
    relay_cmd("peer", "add", "--data", stranger.data, "oslo.test",
              "127.0.0.1:%d" % rs["oslo"].fed_port, rs["oslo"].key)
    stranger.extra = ["--federation-retry-max", "1"]
    relays.append(stranger)
    stranger.start()
    wait_for("oslo refusing the stranger", lambda: "refused a link" in rs["oslo"].read_log())
    check(peer_state(stranger, "oslo.test")["link"] != "up", "the stranger must not get a link")


def test_peer_cli(root, relays):
    d = os.path.join(root, "relay-cli")
    relay_cmd("init", "--data", d, "--name", "cli.test")
    r = subprocess.run([RELAY, "peer", "add", "--data", d, "oslo.test", "127.0.0.1:7448", "short"],
                       capture_output=True, timeout=TIMEOUT)
    check(r.returncode == 2, "a bad key is a usage error: %d" % r.returncode)
    good = "A" * 43
    relay_cmd("peer", "add", "--data", d, "oslo.test", "127.0.0.1:7448", good)
    r = subprocess.run([RELAY, "peer", "add", "--data", d, "oslo.test", "127.0.0.1:7448", good],
                       capture_output=True, timeout=TIMEOUT)
    check(r.returncode == 1 and "already" in r.stderr.decode(), "duplicate peer refused")
    lst = json.loads(relay_cmd("peer", "list", "--data", d, "--json"))
    check([p["name"] for p in lst["peers"]] == ["oslo.test"], "list: %r" % lst)
    check(lst["peers"][0]["outbox"] == 0, "empty outbox: %r" % lst)
    relay_cmd("peer", "remove", "--data", d, "oslo.test")
    lst = json.loads(relay_cmd("peer", "list", "--data", d, "--json"))
    check(lst["peers"] == [], "removed: %r" % lst)
    # Keys are base64url: one in 64 starts with "-", one in 4096 with "--".
    # Such a key is taken as the key, as it is or after "--".
    for key, sep in (("--" + "A" * 41, []), ("-" + "B" * 41 + "A", []), ("--" + "C" * 40 + "A", ["--"])):
        relay_cmd("peer", "add", "--data", d, "dash.test", "127.0.0.1:7448", *sep, key)
        lst = json.loads(relay_cmd("peer", "list", "--data", d, "--json"))
        check([p["key"] for p in lst["peers"]] == [key], "key %s: %r" % (key, lst))
        relay_cmd("peer", "remove", "--data", d, "dash.test")
    r = subprocess.run([RELAY, "peer", "add", "--data", d, "oslo.test", "127.0.0.1:7448", good,
                        "--outbox-entreis", "5"], capture_output=True, timeout=TIMEOUT)
    check(r.returncode == 2 and "unknown option --outbox-entreis" in r.stderr.decode(),
          "a mistyped option is still an unknown option: %r" % r.stderr)
    check("peer add" in relay_cmd("peer", "--help"), "help")


if __name__ == "__main__":
    main([test_peer_cli, test_unknown_relay_unavailable, test_cross_relay_both_ways,
          test_peer_down_queued_then_exactly_once, test_sender_killed_with_outbox,
          test_wrong_key_refused])
