"""Backup and restore of a relay's database, with real processes:

- `backup FILE` runs while the relay serves and a sender keeps sending;
  the file is private (0600), refuses to overwrite an existing FILE unless
  --force, and does not hold the relay's private key;
- `restore FILE` into a fresh data directory (relay.key copied from its
  own backup) brings back every message stored at backup time: the
  recipient receives exactly the messages sent before the backup started
  and, of those sent while it ran, a first part, in order;
- restore refuses a file that is not a relay database, a data directory
  whose relay.key belongs to another relay (changing nothing), a running
  relay's directory, and an existing database without --force; without a
  relay.key it restores and says the key must come from its own backup."""
import json
import os
import shutil
import stat
import subprocess
import threading

from kl import RELAY, Client, Relay, check, main, new_relay


def relay_cmd(*args):
    r = subprocess.run([RELAY] + list(args), capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def texts(msgs):
    return [m["text"] for m in msgs if "text" in m]


def test_backup_while_sending_then_restore(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "hei")
    check(texts(bob.receive()) == ["hei"], "bob reads alice")
    before = ["før %d" % i for i in range(5)]
    for t in before:
        alice.ok("send", bob.address, t)
    sent, stop = [], threading.Event()

    def sender():
        i = 0
        while not stop.is_set():
            t = "under %d" % i
            alice.ok("send", bob.address, t)
            sent.append(t)
            i += 1

    out = os.path.join(root, "backup.db")
    th = threading.Thread(target=sender)
    th.start()
    try:
        while len(sent) < 3:  # the sender is running when the backup starts
            threading.Event().wait(0.05)
        acked_before = len(sent)
        rc, o, err = relay_cmd("backup", out, "--data", relay.data, "--json")
        acked_after = len(sent)
        while len(sent) < acked_after + 3:  # and goes on after it
            threading.Event().wait(0.05)
    finally:
        stop.set()
        th.join()
    check(rc == 0, "backup works while the relay serves: %s" % err)
    info = json.loads(o)
    check(info["name"] == "oslo.test" and info["bytes"] == os.path.getsize(out), "%r" % info)
    check(stat.S_IMODE(os.stat(out).st_mode) == 0o600, "the backup is private")
    check(not os.path.exists(out + ".tmp"), "no temporary file is left")
    with open(out, "rb") as f:
        raw = f.read()
    with open(os.path.join(relay.data, "relay.key"), "rb") as f:
        check(f.read() not in raw, "the relay's private key is not in the backup")
    other = os.path.join(root, "again.db")
    rc, o, err = relay_cmd("backup", other, "--data", relay.data)
    check(rc == 0, "a second backup: %s" % err)
    rc, o, err = relay_cmd("backup", other, "--data", relay.data)
    check(rc == 1 and "--force" in err, "an existing FILE is not overwritten: %r" % err)
    rc, o, err = relay_cmd("backup", other, "--data", relay.data, "--force")
    check(rc == 0, "--force replaces it: %s" % err)
    port = relay.port
    check(relay.stop() == 0, "the original relay stops")

    # A fresh data directory with the relay's key (from its own backup),
    # and the database from the backup taken while the sender ran.
    fresh = Relay(root, name="restored")
    fresh.name = "oslo.test"
    os.makedirs(fresh.data, mode=0o700)
    shutil.copy(os.path.join(relay.data, "relay.key"), fresh.data)
    os.chmod(os.path.join(fresh.data, "relay.key"), 0o600)
    rc, o, err = relay_cmd("restore", out, "--data", fresh.data, "--json")
    check(rc == 0, "restore works: %s" % err)
    r = json.loads(o)
    check(r["name"] == "oslo.test" and r["key_present"] is True, "%r" % r)
    fresh.port = port  # the clients know the relay by its address
    relays.append(fresh)
    fresh.start()
    got = texts(bob.receive(timeout=3))
    during = got[len(before):]
    check(got[:len(before)] == before, "everything sent before the backup is there: %r" % got)
    check(during == sent[:len(during)], "then what was sent meanwhile, in order: %r" % got)
    check(acked_before <= len(during) <= acked_after + 1,
          "as much as was stored when the backup was taken: %d (%d..%d)"
          % (len(during), acked_before, acked_after + 1))
    alice.ok("send", bob.address, "etterpå")
    check(texts(bob.receive()) == ["etterpå"], "and the restored relay goes on")


def test_restore_refusals(root, relays):
    relay = new_relay(root, relays)
    Client(root, "alice").init(relay.first_invite)
    out = os.path.join(root, "b.db")
    rc, o, err = relay_cmd("backup", out, "--data", relay.data)
    check(rc == 0 and "relay.key" in o, "the output says the key is not in it: %r" % o)
    rc, o, err = relay_cmd("restore", out, "--data", relay.data, "--force")
    check(rc == 1 and "already running" in err, "not while the relay runs: %r" % err)
    # Not a database.
    junk = os.path.join(root, "junk.db")
    with open(junk, "wb") as f:
        f.write(os.urandom(8192))
    target = os.path.join(root, "target")
    rc, o, err = relay_cmd("restore", junk, "--data", target)
    check(rc == 1 and "not an intact kollega-relay database" in err, "junk refused: %r" % err)
    check(not os.path.exists(os.path.join(target, "relay.db")), "nothing written")
    rc, o, err = relay_cmd("restore", os.path.join(root, "missing.db"), "--data", target)
    check(rc == 1 and "no such file" in err, "a missing file: %r" % err)
    # Another relay's key in the target directory.
    other = os.path.join(root, "other")
    rc, o, err = relay_cmd("init", "--data", other, "--name", "bergen.test")
    check(rc == 0, "init other: %s" % err)
    with open(os.path.join(other, "relay.db"), "rb") as f:
        other_db = f.read()
    rc, o, err = relay_cmd("restore", out, "--data", other, "--force")
    check(rc == 1 and "another key" in err and "nothing was changed" in err,
          "a backup of another relay's key is refused: %r" % err)
    with open(os.path.join(other, "relay.db"), "rb") as f:
        check(f.read() == other_db, "the other relay's database is untouched")
    rc, o, err = relay_cmd("restore", out, "--data", other)
    check(rc == 1 and "--force" in err, "an existing database needs --force: %r" % err)
    # No key at all: restored, with the key's own backup explained.
    nokey = os.path.join(root, "nokey")
    rc, o, err = relay_cmd("restore", out, "--data", nokey)
    check(rc == 0 and "relay.key" in err and "its own backup" in err,
          "restored, and told to restore the key: %r" % err)
    rc, o, err = relay_cmd("serve", "--data", nokey, "--listen", "127.0.0.1:0")
    check(rc == 1 and "relay.key" in err, "serve refuses without the key: %r" % err)
    rc, o, err = relay_cmd("backup", "--data", relay.data)
    check(rc == 2, "backup needs a FILE: %r" % err)


if __name__ == "__main__":
    main([test_backup_while_sending_then_restore, test_restore_refusals])
