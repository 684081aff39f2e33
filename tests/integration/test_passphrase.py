"""The client store under a passphrase: wrong passphrase is a clear error and
changes nothing; `kollega passphrase` changes, removes and adds it; a store
wrapped under the old INTERACTIVE limits is strengthened at its next unlock.

Every command on a store with a passphrase derives a key (Argon2id MODERATE,
256 MiB, about half a second), so the tests keep such commands few."""
import ctypes
import ctypes.util
import hashlib
import json
import os
import sqlite3

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


def test_change_passphrase(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice", passphrase="gammel hest").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "Hei Bob, dette er før byttet")
    db = os.path.join(alice.home, "kollega.db")
    before = digest(db)

    os.environ["KOLLEGA_NEW_PASSPHRASE"] = "ny hest"
    try:
        rc, out, err = alice.run("passphrase", passphrase="feil hest")
        check(rc == 1, "a wrong current passphrase exits 1, got %d: %s" % (rc, err))
        check("passphrase" in err.lower() and out == "", "says so on stderr only: %r %r" % (out, err))
        check(digest(db) == before, "a wrong current passphrase leaves the file byte-identical")
        res = alice.json1("passphrase")
        check(res == {"ok": True, "passphrase": True, "changed": True, "home": alice.home},
              "passphrase --json: %r" % res)
    finally:
        del os.environ["KOLLEGA_NEW_PASSPHRASE"]

    changed = digest(db)
    rc, out, err = alice.run("whoami")
    check(rc == 1 and "wrong passphrase" in err, "the old passphrase is refused: %d %r" % (rc, err))
    check(digest(db) == changed, "and changes nothing")
    hist = alice.jsonl("history", passphrase="ny hest")
    check([m["text"] for m in hist] == ["Hei Bob, dette er før byttet"],
          "history still readable under the new passphrase: %r" % hist)

    # Remove it, then give the store a passphrase again.
    res = alice.json1("passphrase", "--no-passphrase", passphrase="ny hest")
    check(res["passphrase"] is False and res["changed"] is True, "removed: %r" % res)
    plain = Client(root, "alice")
    plain.home = alice.home
    check(plain.jsonl("history")[0]["text"] == "Hei Bob, dette er før byttet",
          "no passphrase needed any more")
    res = plain.json1("passphrase", "--no-passphrase")
    check(res["changed"] is False, "removing an absent passphrase changes nothing: %r" % res)
    rc, out, err = plain.run("passphrase")
    check(rc == 1 and "KOLLEGA_NEW_PASSPHRASE" in err,
          "no new passphrase and no tty: say how to give one: %d %r" % (rc, err))
    rc, out, err = plain.run("passphrase", "extra")
    check(rc == 2, "an argument is a usage error: %d %r" % (rc, err))
    os.environ["KOLLEGA_NEW_PASSPHRASE"] = ""
    try:
        rc, out, err = plain.run("passphrase")
        check(rc == 2 and "empty" in err, "an empty new passphrase is refused: %d %r" % (rc, err))
        os.environ["KOLLEGA_NEW_PASSPHRASE"] = "tredje hest"
        rc, out, err = plain.run("passphrase", json_out=False)
        check(rc == 0 and "protected" in out, "human output: %r" % out)
    finally:
        del os.environ["KOLLEGA_NEW_PASSPHRASE"]
    rc, out, err = plain.run("whoami")
    check(rc == 1 and "KOLLEGA_PASSPHRASE" in err, "a passphrase is needed again: %r" % err)
    check(alice.jsonl("history", passphrase="tredje hest")[0]["text"] == "Hei Bob, dette er før byttet",
          "the added passphrase opens it")


def sodium():
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    check(lib.sodium_init() >= 0, "sodium_init")
    return lib


def pwhash(lib, passphrase, salt, ops, mem):
    key = ctypes.create_string_buffer(32)
    pw = passphrase.encode()
    check(lib.crypto_pwhash(key, ctypes.c_ulonglong(32), pw, ctypes.c_ulonglong(len(pw)), salt,
                            ctypes.c_ulonglong(ops), ctypes.c_size_t(mem), ctypes.c_int(2)) == 0,
          "crypto_pwhash")
    return key.raw


def downgrade_to_interactive(db, passphrase):
    """Rewrite the store's wrap as a kollega from before the recorded limits
    left it: kdf "argon2id13-interactive", INTERACTIVE limits, no kdf_* rows."""
    lib = sodium()
    con = sqlite3.connect(db)
    meta = dict(con.execute("SELECT k, v FROM meta"))
    check(meta["kdf"] == b"pwhash" and meta["kdf_opslimit"] == 3 and meta["kdf_memlimit"] == 256 << 20,
          "a new store records MODERATE: %r" % {k: v for k, v in meta.items() if k.startswith("kdf")})
    wrapped = meta["store_key"]
    wkey = pwhash(lib, passphrase, meta["salt"], 3, 256 << 20)
    label = b"kollega-store-v1|meta|store_key|"
    key = ctypes.create_string_buffer(32)
    check(lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
        key, None, None, wrapped[24:], ctypes.c_ulonglong(len(wrapped) - 24), label + b"pwhash",
        ctypes.c_ulonglong(len(label) + 6), wrapped[:24], wkey) == 0, "unwrap the store key")
    salt, nonce = os.urandom(16), os.urandom(24)
    wkey = pwhash(lib, passphrase, salt, 2, 64 << 20)
    ct = ctypes.create_string_buffer(48)
    ad = label + b"argon2id13-interactive"
    lib.crypto_aead_xchacha20poly1305_ietf_encrypt(ct, None, key, ctypes.c_ulonglong(32), ad,
                                                   ctypes.c_ulonglong(len(ad)), None, nonce, wkey)
    with con:
        con.execute("UPDATE meta SET v = ? WHERE k = 'kdf'", (b"argon2id13-interactive",))
        con.execute("UPDATE meta SET v = ? WHERE k = 'salt'", (salt,))
        con.execute("UPDATE meta SET v = ? WHERE k = 'store_key'", (nonce + ct.raw,))
        con.execute("DELETE FROM meta WHERE k LIKE 'kdf_%'")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def test_interactive_store_upgraded_once(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice", passphrase="gammel hest").init(relay.first_invite)
    db = os.path.join(alice.home, "kollega.db")
    downgrade_to_interactive(db, "gammel hest")

    before = digest(db)
    rc, out, err = alice.run("whoami", passphrase="feil hest")
    check(rc == 1 and digest(db) == before, "a wrong passphrase neither opens nor upgrades it")
    rc, out, err = alice.run("whoami")
    check(rc == 0, "the old wrap opens: %r" % err)
    check("stronger passphrase protection" in err, "the upgrade is told on stderr: %r" % err)
    lines = out.strip().splitlines()
    check(len(lines) == 1 and json.loads(lines[0])["address"] == alice.address,
          "stdout stays one JSON object: %r" % out)
    con = sqlite3.connect(db)
    meta = dict(con.execute("SELECT k, v FROM meta"))
    con.close()
    check(meta["kdf"] == b"pwhash" and meta["kdf_opslimit"] == 3 and meta["kdf_memlimit"] == 256 << 20
          and meta["kdf_alg"] == b"argon2id13", "re-wrapped under MODERATE")
    rc, out, err = alice.run("whoami")
    check(rc == 0 and err == "", "told once only: %r" % err)


if __name__ == "__main__":
    main([test_wrong_passphrase, test_change_passphrase, test_interactive_store_upgraded_once])
