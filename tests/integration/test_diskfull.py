"""Disk full: a relay that runs out of space refuses new messages with
UNAVAILABLE (it neither crashes nor acknowledges them), keeps every
message it acknowledged, keeps serving fetches, and accepts messages again
once there is space.

Two ways to run out: the relay's own cap (--max-db-bytes, sqlite's
max_page_count), which every machine can test, and a real filesystem that
is full (a small tmpfs, when the test may mount one: root in CI)."""
import json
import os
import shutil
import subprocess

from kl import Relay, check, main
from probe_user import UNAVAILABLE, ProbeUser

BODY = 60000


def fill_until_refused(alice, bob, start):
    """Send 60 KB bodies until the relay refuses one; returns {i: seq}."""
    acked, errors, last = alice.send(bob, 500, "--size", BODY, "--start", start, "--until-error")
    check(errors, "the relay ran out of space within 30 MB: %r" % last)
    check([e["error_code"] for e in errors] == [UNAVAILABLE],
          "the refused send gets UNAVAILABLE: %r" % errors)
    return acked


def check_exactly(entries, acked, what):
    got = sorted((e["i"], e["seq"]) for e in entries)
    check(all(e["ok"] for e in entries), "%s: bodies intact" % what)
    check(got == sorted(acked.items()),
          "%s: exactly the acknowledged messages (%d), no refused one: got %d"
          % (what, len(acked), len(got)))


def start_relay(root, relays, parent, extra=()):
    relay = Relay(parent, extra=extra)
    relay.log_path = os.path.join(root, "relay.log")  # never on the full disk
    relays.append(relay)
    relay.start()
    relay.first_invite = relay.read_first_invite()
    return relay


def test_db_cap_refuses_sends_keeps_acks_working(root, relays):
    relay = start_relay(root, relays, root, ["--max-db-bytes", str(2 << 20)])
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    carol = ProbeUser(root, relay, "carol").register()
    acked = fill_until_refused(alice, bob, 0)
    check(len(acked) >= 10, "a 2 MiB database takes some 60 KB bodies: %d" % len(acked))
    # Small messages still fit in partly used pages, then they are refused
    # too, for every recipient; nothing refused is stored.
    small, errors, _ = alice.send(carol, 5000, "--size", 100, "--start", 9000, "--until-error")
    check([e["error_code"] for e in errors] == [UNAVAILABLE], "full for everyone: %r" % errors)
    _, errors, _ = alice.send(carol, 3, "--size", 100, "--start", 9900)
    check([e["error_code"] for e in errors] == [UNAVAILABLE] * 3, "and stays full: %r" % errors)
    check(relay.proc.poll() is None, "relay still running")
    # Fetches still work; a crash loses nothing acknowledged.
    entries, _ = bob.receive("--no-ack")
    check_exactly(entries, acked, "fetch while full")
    relay.kill9()
    relay.start()
    entries, last = bob.receive()
    check_exactly(entries, acked, "after kill -9 while full")
    check(last["acked"], "acks work while the database is full")
    entries, _ = carol.receive()
    check_exactly(entries, small, "carol: the small messages that fit, none refused")
    # The acked entries' space is reused: sends work again.
    acked2 = fill_until_refused(alice, bob, 1000)
    check(len(acked2) >= len(acked) - 2, "space freed by acks is reused: %d then %d"
          % (len(acked), len(acked2)))
    entries, _ = bob.receive()
    check_exactly(entries, acked2, "second round")
    more, errors, _ = alice.send(carol, 3, "--size", 100, "--start", 2000)
    check(len(more) == 3 and not errors, "sends succeed after the acks: %r" % errors)
    log = relay.read_log()
    check("storage" in log and "full" in log, "the operator is told the database is full")


def can_mount_tmpfs(path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path],
                       capture_output=True)
    if r.returncode != 0:
        return False
    subprocess.run(["umount", path], check=True)
    return True


def test_full_filesystem(root, relays):
    mnt = os.path.join(root, "small-disk")
    os.mkdir(mnt)
    if not can_mount_tmpfs(mnt):
        print("SKIP test_full_filesystem: cannot mount a tmpfs here (not root, or no "
              "CAP_SYS_ADMIN); the --max-db-bytes test covers the relay's side", flush=True)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt], check=True)
    try:
        full_filesystem(root, relays, mnt)
    finally:
        for r in relays:
            if r.proc is not None:
                r.stop()
        subprocess.run(["umount", "-l", mnt], check=True)


def full_filesystem(root, relays, mnt):
    # Other files of the operator take 8 of the 12 MiB; the relay gets 4.
    filler = os.path.join(mnt, "operator-files")
    with open(filler, "wb") as f:
        f.write(b"\0" * (8 << 20))
    relay = start_relay(root, relays, mnt)
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    acked = fill_until_refused(alice, bob, 0)
    st = os.statvfs(mnt)
    check(st.f_bavail * st.f_frsize < BODY, "the filesystem is full")
    check(relay.proc.poll() is None, "relay still running with a full disk")
    # While alice keeps sending into the full disk, bob authenticates and
    # fetches again and again: a read must not fail because a write in
    # the same group commit did not fit.
    sender = alice.start("sendloop", bob.address, 2000, "--size", 100, "--window", 8,
                         "--start", 10000)
    sender.stdin.close()
    try:
        rc, lines = bob.run("recv", "--rounds", 20, "--no-ack")
        out = [json.loads(l) for l in sender.stdout.read().decode().splitlines() if l.strip()]
        check(sender.wait(timeout=120) == 0, "sender finished")
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    check(rc == 0 and lines[-1]["done"] and lines[-1]["refused"] == 0,
          "fetches are served while sends fail: %r" % lines[-1])
    check(out[-1]["errors"] > 0 and all(e["error_code"] == UNAVAILABLE for e in out
                                         if "error_code" in e),
          "sends into the full disk get UNAVAILABLE: %r" % out[-1])
    acked.update({l["i"]: l["seq"] for l in out if "seq" in l})
    entries, _ = bob.receive("--no-ack")
    check_exactly(entries, acked, "fetch with a full disk")
    # A crash on a full disk loses nothing acknowledged and the relay
    # restarts.
    relay.kill9()
    relay.start()
    entries, _ = bob.receive("--no-ack")
    check_exactly(entries, acked, "after kill -9 on a full disk")
    # The operator frees space: acks and sends work again.
    os.unlink(filler)
    entries, last = bob.receive()
    check_exactly(entries, acked, "after space was freed")
    check(last["acked"], "acks work once there is space")
    more, errors, _ = alice.send(bob, 5, "--size", 1000, "--start", 50000)
    check(len(more) == 5 and not errors, "sends succeed once there is space: %r" % errors)
    check([e["i"] for e in bob.receive()[0]] == list(range(50000, 50005)), "and arrive")
    check(relay.stop() == 0, "clean shutdown")
    check("Sanitizer" not in relay.read_log(), "no sanitizer report")


if __name__ == "__main__":
    main([test_db_cap_refuses_sends_keeps_acks_working, test_full_filesystem])
