"""Unidentified delivery (sealed sender at run time), with real relay and
client processes: once alice has written to bob, bob holds alice's delivery
token and writes back on a connection that never authenticates, so the
running relay does not learn that bob writes to alice; a relay that no
longer takes the token, or a recipient over its rate, makes the sender fall
back to identified sending without losing the message; a token that does not
fit is refused and the connection closed (played by kl-probe); and the same
across two federated relays, neither of which learns who writes."""
import json
import sqlite3
import subprocess
import time

from kl import DEBUG_LOG, PROBE, Client, check, logins, main, new_relay
from test_federation import federation, wait_link


def texts(msgs):
    return [m["text"] for m in msgs if "text" in m]


def pair(root, relays, extra=()):
    relay = new_relay(root, relays, extra=DEBUG_LOG + list(extra))
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    s = alice.json1("send", bob.address, "hei bob")
    check(s["unidentified"] is False, "no token of bob's yet: identified: %r" % s)
    check(texts(bob.receive()) == ["hei bob"], "bob reads alice")
    return relay, alice, bob


def test_reply_without_identifying(root, relays):
    relay, alice, bob = pair(root, relays)
    before = logins(relay, "bob")
    s = bob.json1("send", alice.address, "svar uten navn")
    check(s["unidentified"] is True, "bob holds alice's token: unidentified: %r" % s)
    check(logins(relay, "bob") == before, "bob never authenticated to send")
    got = alice.receive()
    check(texts(got) == ["svar uten navn"] and got[0]["from"] == bob.address,
          "alice reads it, from bob (proven end to end): %r" % got)
    # Human output says so too.
    out = bob.ok("send", alice.address, "igjen", json_out=False)
    check("not told who sent it" in out, "human output: %r" % out)
    check(texts(alice.receive()) == ["igjen"], "second unidentified message arrives")


def test_token_refused_falls_back(root, relays):
    relay, alice, bob = pair(root, relays)
    # The relay lost alice's token (a restored database, say).
    db = sqlite3.connect(relay.db_path())
    db.execute("delete from delivery_tokens where user = (select id from users"
               " where handle = 'alice')")
    db.commit()
    db.close()
    s = bob.json1("send", alice.address, "likevel fram")
    check(s["unidentified"] is False, "refused token: identified instead: %r" % s)
    check(texts(alice.receive()) == ["likevel fram"], "the message still arrives once")


def test_recipient_rate_falls_back(root, relays):
    relay, alice, bob = pair(root, relays, extra=["--unidentified-rate", "2"])
    kinds = [bob.json1("send", alice.address, "m%d" % i)["unidentified"] for i in range(4)]
    check(kinds[:2] == [True, True] and False in kinds[2:],
          "two unidentified a minute, then identified: %r" % kinds)
    check(texts(alice.receive()) == ["m0", "m1", "m2", "m3"], "all four arrive in order")


def test_wrong_token_refused(root, relays):
    relay, alice, bob = pair(root, relays)
    key = relay.status()["public_key"]
    for to in (alice.address, "nobody@oslo.test"):
        r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, "unidentified", to,
                            "random"], capture_output=True, timeout=60)
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
        check(res["ok"] is False and res["error_code"] == 3 and res["closed"] is True,
              "a token that does not fit (or no such user) is FORBIDDEN and closes: %r" % res)
    r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, "unidentified",
                        "kari@stockholm.test", "random"], capture_output=True, timeout=60)
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(res["ok"] is False and res["error_code"] == 3 and res["closed"] is True,
          "to another relay's user only after its relay confirmed the token: %r" % res)
    check(texts(alice.receive()) == [], "nothing was stored for alice")


def test_across_relays(root, relays):
    """kari on stockholm answers alice on oslo without identifying herself
    to either relay: stockholm proxies the lookup with alice's token to oslo,
    which checks it, then takes the send; oslo checks the token again when
    the forward arrives. A token oslo no longer knows makes kari fall back."""
    rs = federation(root, relays, names=["oslo.test", "stockholm.test"], extra=DEBUG_LOG)
    wait_link(rs["oslo"], rs["stockholm"])
    wait_link(rs["stockholm"], rs["oslo"])
    alice = Client(root, "alice").init(rs["oslo"].first_invite)
    kari = Client(root, "kari").init(rs["stockholm"].first_invite)
    s = alice.json1("send", kari.address, "hei fra Oslo")
    check(s["unidentified"] is False, "no token yet: %r" % s)
    got = []
    deadline = time.time() + 30
    while not got and time.time() < deadline:
        got = texts(kari.receive(1))
    check(got == ["hei fra Oslo"], "kari reads alice: %r" % got)
    before = logins(rs["stockholm"], "kari")
    s = kari.json1("send", alice.address, "hei fra Stockholm")
    check(s["unidentified"] is True, "kari holds alice's token: unidentified: %r" % s)
    check(logins(rs["stockholm"], "kari") == before, "kari never authenticated to send")
    got, deadline = [], time.time() + 30
    while not got and time.time() < deadline:
        got = alice.receive(1)
    check(texts(got) == ["hei fra Stockholm"] and got[0]["from"] == kari.address,
          "alice reads it, from kari (proven end to end): %r" % got)
    # The link is down: kari's message is queued identified at stockholm,
    # and she keeps alice's token for the next one.
    rs["oslo"].stop()
    s = kari.json1("send", alice.address, "mens lenken er nede")
    check(s["unidentified"] is False, "link down: queued identified: %r" % s)
    rs["oslo"].start()
    wait_link(rs["stockholm"], rs["oslo"])
    got, deadline = [], time.time() + 30
    while not got and time.time() < deadline:
        got = texts(alice.receive(1))
    check(got == ["mens lenken er nede"], "delivered once the link is back: %r" % got)
    s = kari.json1("send", alice.address, "igjen uten navn")
    check(s["unidentified"] is True, "the token was kept: %r" % s)
    check(texts(alice.receive(2)) == ["igjen uten navn"], "and it arrives")
    # oslo lost alice's token: stockholm's proxied lookup is refused, and
    # kari sends identified instead; nothing is lost or doubled.
    db = sqlite3.connect(rs["oslo"].db_path())
    db.execute("delete from delivery_tokens")
    db.commit()
    db.close()
    s = kari.json1("send", alice.address, "likevel fram")
    check(s["unidentified"] is False, "refused across relays: identified: %r" % s)
    got, deadline = [], time.time() + 30
    while not got and time.time() < deadline:
        got = texts(alice.receive(1))
    check(got == ["likevel fram"], "the message arrives once: %r" % got)


if __name__ == "__main__":
    main([test_reply_without_identifying, test_token_refused_falls_back,
          test_recipient_rate_falls_back, test_wrong_token_refused, test_across_relays])
