"""The operator's invites and users, with real kollega-relay and kollega
processes:

- `invite list` shows active invites by an id (never the token) with uses
  left and expiry; `invite revoke ID` deletes one, and the real client can
  no longer register with it; unknown and malformed ids are refused;
- `user list` shows handles and what waits in each inbox; `user remove`
  deletes an account in the running relay (its live connection is closed,
  its key no longer authenticates, nobody can write to it) or in a stopped
  relay's database, and the handle is retired: no invite takes it again;
- `user reset` is the lost-laptop path: lena and astrid talk, lena's
  client directory is gone, the operator resets her, she runs the ordinary
  `kollega init` with the token and her old handle, and writes to astrid;
  astrid's client holds the message as a key change the relay vouches for
  until she verifies; the old key no longer authenticates, and the token
  is refused for any other handle."""
import json
import os
import shutil
import subprocess
import time

from kl import CLIENT, RELAY, Client, check, main, new_relay


def relay_cmd(*args):
    r = subprocess.run([RELAY] + list(args), capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def relay_json(*args):
    rc, out, err = relay_cmd(*args, "--json")
    check(rc == 0, "kollega-relay %s failed rc=%d: %s" % (" ".join(args), rc, err))
    return json.loads(out)


def invites(relay):
    return relay_json("invite", "list", "--data", relay.data)["invites"]


def users(relay):
    return {u["handle"]: u for u in relay_json("user", "list", "--data", relay.data)["users"]}


def texts(msgs):
    return [m["text"] for m in msgs if "text" in m]


def test_invite_list_and_revoke(root, relays):
    relay = new_relay(root, relays)
    first = invites(relay)
    check(len(first) == 1 and first[0]["uses_left"] == 1 and first[0]["reset_for"] is None,
          "the first invite is listed: %r" % first)
    token = relay.invite("--uses", "3", "--expires", "2h")
    code = token.split("code=")[1]
    now = invites(relay)
    check(len(now) == 2, "two active invites: %r" % now)
    new = [i for i in now if i["id"] != first[0]["id"]][0]
    check(new["uses_left"] == 3 and new["expires_at"] > new["created_at"], "uses, times: %r" % new)
    rc, out, err = relay_cmd("invite", "list", "--data", relay.data)
    check(rc == 0 and new["id"] in out and code not in out and first[0]["id"] in out,
          "the human list shows ids, never a code: %r" % out)
    rc, out, err = relay_cmd("invite", "revoke", new["id"][:6], "--data", relay.data)
    check(rc == 0 and "revoked" in out, "revoke by a prefix of the id: %r %r" % (out, err))
    check([i["id"] for i in invites(relay)] == [first[0]["id"]], "only the first one is left")
    rc, out, err = Client(root, "kari").run("init", "--invite", token, "--name", "kari",
                                            "--no-passphrase")
    check(rc != 0 and "refused the invite" in err, "a revoked invite registers nobody: %r" % err)
    rc, out, err = relay_cmd("invite", "revoke", new["id"], "--data", relay.data)
    check(rc == 1 and "no active invite" in err, "revoking twice: %r" % err)
    rc, out, err = relay_cmd("invite", "revoke", "xyz", "--data", relay.data)
    check(rc == 2 and "not an invite id" in err, "a malformed id is a usage error: %r" % err)
    rc, out, err = relay_cmd("invite", "revoke", "--data", relay.data)
    check(rc == 2, "revoke needs an id: %r" % err)
    # The first invite still works.
    Client(root, "alice").init(relay.first_invite)


def talking(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "hei bob")
    check(texts(bob.receive()) == ["hei bob"], "bob reads alice")
    bob.ok("send", alice.address, "hei alice")
    check(texts(alice.receive()) == ["hei alice"], "alice reads bob")
    return relay, alice, bob


def wait_clients(relay, n):
    for _ in range(300):
        if relay.status()["clients"] == n:
            return
        time.sleep(0.1)
    check(False, "the relay does not get to %d clients: %r" % (n, relay.status()))


def test_user_remove_running(root, relays):
    relay, alice, bob = talking(root, relays)
    alice.ok("send", bob.address, "venter")
    u = users(relay)
    check(sorted(u) == ["alice", "bob"], "both users listed: %r" % u)
    check(u["bob"]["inbox_entries"] == 1 and u["bob"]["inbox_bytes"] > 0,
          "one message waits for bob: %r" % u["bob"])
    check(u["alice"]["inbox_entries"] == 0 and "created_at" in u["alice"], "alice: %r" % u)
    # bob sits connected, waiting for messages.
    waiting = subprocess.Popen([CLIENT, "--home", bob.home, "receive", "--timeout", "120"],
                               env=bob.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_clients(relay, 1)
        # A connection counts as a client from its first byte; bob's is
        # authenticated once it has fetched and acked the waiting message
        # (removing bob before that would disconnect nobody).
        for _ in range(300):
            if users(relay)["bob"]["inbox_entries"] == 0:
                break
            time.sleep(0.1)
        check(users(relay)["bob"]["inbox_entries"] == 0, "bob's receive acks 'venter'")
        r = relay_json("user", "remove", "bob", "--data", relay.data)
        check(r["removed"] == "bob" and r["relay_running"] is True and r["disconnected"] == 1,
              "removed in the running relay, its connection closed: %r" % r)
        wait_clients(relay, 0)
    finally:
        waiting.kill()
        waiting.wait()
    check("closed (account removed)" in relay.read_log(), "the log says why it was closed")
    check(sorted(users(relay)) == ["alice"], "bob is gone from the list")
    check(relay.status()["entries"] == 0, "his waiting message is gone too")
    rc, out, err = bob.run("receive", "--timeout", "1")
    check(rc != 0, "bob's key no longer authenticates: %r" % err)
    rc, out, err = alice.run("send", bob.address, "er du der?")
    check(rc != 0, "nobody can write to bob: %r" % err)
    rc, out, err = relay_cmd("user", "remove", "bob", "--data", relay.data)
    check(rc == 1 and "no user bob" in err, "removing twice: %r" % err)
    # The handle is retired: a new member cannot take it.
    token = relay.invite()
    rc, out, err = Client(root, "bob2").run("init", "--invite", token, "--name", "bob",
                                            "--no-passphrase")
    check(rc != 0 and "already taken" in err, "bob's handle is retired: %r" % err)
    Client(root, "bobby").init(token)  # the invite was not used up
    check(len(invites(relay)) == 0, "the invite went to bobby")


def test_user_remove_stopped(root, relays):
    relay, alice, bob = talking(root, relays)
    check(relay.stop() == 0, "relay stops")
    r = relay_json("user", "remove", "alice", "--data", relay.data)
    check(r["removed"] == "alice" and r["relay_running"] is False, "removed offline: %r" % r)
    relay.start()
    rc, out, err = alice.run("receive", "--timeout", "1")
    check(rc != 0, "alice's key no longer authenticates: %r" % err)
    check(sorted(users(relay)) == ["bob"], "only bob is left")
    rc, out, err = relay_cmd("user", "remove", "Not A Handle", "--data", relay.data)
    check(rc == 2, "a malformed handle is a usage error: %r" % err)
    rc, out, err = relay_cmd("user", "--data", relay.data)
    check(rc == 2 and "subcommand" in err, "user needs a subcommand: %r" % err)


def contact(c, address):
    for x in c.jsonl("contact", "list"):
        if x["address"] == address:
            return x
    return None


def test_reset_lost_laptop(root, relays):
    relay = new_relay(root, relays)
    lena = Client(root, "lena").init(relay.first_invite)
    astrid = Client(root, "astrid").init(relay.invite())
    lena.ok("send", astrid.address, "hei astrid")
    check(texts(astrid.receive()) == ["hei astrid"], "astrid reads lena")
    astrid.ok("send", lena.address, "hei lena")
    check(texts(lena.receive()) == ["hei lena"], "lena reads astrid")
    old_key = lena.json1("whoami")["identity_key"]
    # Something waits for lena when she loses her laptop; the old device is
    # kept (as a thief would) to show its key stops working.
    astrid.ok("send", lena.address, "før tyveriet")
    stolen = os.path.join(root, "client-stolen")
    shutil.copytree(lena.home, stolen)
    shutil.rmtree(lena.home)
    r = relay_json("user", "reset", "lena", "--data", relay.data, "--expires", "1d")
    token = r["token"]
    check(r["handle"] == "lena", "a reset invite for lena: %r" % r)
    check([i["reset_for"] for i in invites(relay)] == ["lena"], "listed as lena's reset")
    rc, out, err = relay_cmd("user", "reset", "nobody", "--data", relay.data)
    check(rc == 1 and "no user nobody" in err, "only existing users are reset: %r" % err)
    # The token is lena's only: not for a new name, not for astrid's.
    for name in ("mallory", "astrid"):
        rc, out, err = Client(root, name + "-x").run("init", "--invite", token, "--name", name,
                                                     "--no-passphrase")
        check(rc != 0 and "refused the invite" in err, "the reset token is not %s's: %r"
              % (name, err))
    # And an ordinary invite never takes lena.
    rc, out, err = Client(root, "lena-x").run("init", "--invite", relay.invite(), "--name",
                                              "lena", "--no-passphrase")
    check(rc != 0 and "already taken" in err, "lena is taken for ordinary invites: %r" % err)
    # The stolen device is connected when lena re-registers.
    thief = subprocess.Popen([CLIENT, "--home", stolen, "receive", "--timeout", "120"],
                             env=lena.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_clients(relay, 1)
        lena = Client(root, "lena").init(token)
        wait_clients(relay, 0)
    finally:
        thief.kill()
        thief.wait()
    check("closed (identity key replaced)" in relay.read_log(), "the old device was cut off")
    new_key = lena.json1("whoami")["identity_key"]
    check(new_key != old_key and lena.address == "lena@oslo.test", "same address, new key")
    rc, out, err = subprocess.run([CLIENT, "--home", stolen, "--json", "receive", "--timeout",
                                   "1"], capture_output=True, env=lena.env(), timeout=60,
                                  stdin=subprocess.DEVNULL).returncode, None, None
    check(rc != 0, "the old key no longer authenticates")
    check(texts(lena.receive()) == [], "what waited for the old key is gone")
    check([i for i in invites(relay) if i["reset_for"]] == [], "the reset token is used up")
    # lena writes to astrid from the new device.
    lena.ok("send", astrid.address, "ny maskin")
    rc, out, err = astrid.run("receive", "--timeout", "2")
    check(rc == 0 and "ny maskin" not in out, "astrid is not shown the message yet: %r" % out)
    c = contact(astrid, lena.address)
    check(c["key_changed"] is True and c["pending_identity_key"] == new_key and
          c["identity_key"] == old_key, "a key change the relay vouches for: %r" % c)
    check(astrid.json1("whoami")["held_messages"] == 1, "the message is held")
    rc, out, err = astrid.run("send", lena.address, "hvem er du?")
    check(rc == 1 and "verify" in err, "astrid cannot write until she verifies: %r" % err)
    shown = astrid.json1("contact", "verify", lena.address)
    check(shown["identity_key"] == new_key, "verify shows the new key: %r" % shown)
    v = astrid.json1("contact", "verify", lena.address, "--confirm")
    check(v["verified"] is True and v["released_messages"] == 1, "confirmed: %r" % v)
    check("ny maskin" in texts(astrid.jsonl("history", lena.address)),
          "the held message is in astrid's history")
    astrid.ok("send", lena.address, "velkommen tilbake")
    check(texts(lena.receive()) == ["velkommen tilbake"], "and they talk again")


if __name__ == "__main__":
    main([test_invite_list_and_revoke, test_user_remove_running, test_user_remove_stopped,
          test_reset_lost_laptop])
