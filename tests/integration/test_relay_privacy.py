"""What the relay keeps: no plaintext, no sender address for 1:1 messages,
no invite codes, and nothing secret in its log."""
import glob
import os
import sqlite3

from kl import Client, check, main, new_relay

SECRET_TEXT = "Konfidensielt: pasienten sa at hun hadde en tung uke"


def all_db_bytes(relay):
    data = b""
    for p in glob.glob(relay.db_path() + "*"):
        with open(p, "rb") as f:
            data += f.read()
    return data


def test_no_plaintext_no_sender(root, relays):
    relay = new_relay(root, relays)
    token_a = relay.first_invite
    alice = Client(root, "alice").init(token_a)
    token_b = relay.invite()
    bob = Client(root, "bob").init(token_b)
    alice.ok("send", bob.address, SECRET_TEXT)
    relay.stop()  # checkpoint-free look at db + wal as the operator would have them
    blob = all_db_bytes(relay)
    db = sqlite3.connect(relay.db_path())
    n = 0
    for (t,) in db.execute("select name from sqlite_master where type='table'"):
        cols = [c[1] for c in db.execute("pragma table_info(%s)" % t)]
        check(not any("sender" in c or c == "from" for c in cols), "no sender column in %s: %r" % (t, cols))
        if "body" in cols:
            n += db.execute("select count(*) from %s" % t).fetchone()[0]
    db.close()
    check(n == 1, "the message is stored (one entry), got %d" % n)
    check(SECRET_TEXT.encode() not in blob, "no plaintext in the relay database")
    check(b"alice@oslo.test" not in blob, "no sender address in the relay database")
    for tok in (token_a, token_b):
        code = tok.split("code=")[1]
        check(code.encode() not in blob, "no invite code in clear in the database")
        check(code not in relay.read_log(), "no invite code in the relay log")
    check(SECRET_TEXT not in relay.read_log(), "no body in the relay log")
    st = os.stat(os.path.join(relay.data, "relay.key"))
    check(st.st_mode & 0o077 == 0, "relay key file is private (0600)")
    relay.start()
    check([m["text"] for m in bob.receive()] == [SECRET_TEXT], "and bob still reads it")
    cst = os.stat(os.path.join(alice.home, "kollega.db"))
    check(cst.st_mode & 0o077 == 0, "client store is private (0600)")
    with open(os.path.join(bob.home, "kollega.db"), "rb") as f:
        check(SECRET_TEXT.encode() not in f.read(), "the client store seals message bodies")


if __name__ == "__main__":
    main([test_no_plaintext_no_sender])
