"""The client store under a passphrase: wrong passphrase is a clear error and
changes nothing."""
import hashlib
import os

from kl import Client, check, main, new_relay


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_wrong_passphrase(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice", passphrase="riktig hest batteri stift").init(relay.first_invite)
    db = os.path.join(alice.home, "kollega.db")
    before = digest(db)
    rc, out, err = alice.run("whoami", passphrase="feil passord")
    check(rc == 1, "wrong passphrase exits 1, got %d" % rc)
    check("passphrase" in err.lower(), "the error names the passphrase: %r" % err)
    check(digest(db) == before, "a wrong passphrase changes nothing in the store")
    env_less = Client(root, "alice")
    env_less.home = alice.home
    rc, out, err = env_less.run("whoami")
    check(rc != 0 and "KOLLEGA_PASSPHRASE" in err, "no passphrase and no tty: say how to give one: %r" % err)
    check(alice.json1("whoami")["address"] == "alice@oslo.test", "the right passphrase still opens it")


if __name__ == "__main__":
    main([test_wrong_passphrase])
