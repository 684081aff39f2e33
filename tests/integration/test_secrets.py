"""Secrets never reach the relay's log: run it at its most verbose level,
exercise registration, authentication, sends, fetches, acks and the error
paths, then search the log for every secret and body in every encoding
the code might print it in (raw, hex, base64 and base64url)."""
import base64
import os
import subprocess

from kl import PROBE, Client, check, main, new_relay
from probe_user import ProbeUser, invite_code


def probe_body(i, size):
    """The body kl-probe sends as message i (kl_probe_user.c make_body)."""
    head = ("n=%d;" % i).encode()
    return head + bytes((i * 131 + k * 7) & 0xFF for k in range(len(head), size))


def encodings(secret):
    """Ways a buffer could show up in a text log: raw, hex (both cases),
    base64 and base64url (padded or not) at each of the three byte
    alignments a substring can have. Only fragments of 12+ characters, so
    that short coincidences cannot match."""
    forms = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            s = enc(secret[k:]).rstrip(b"=")
            if len(s) >= 16:
                forms.add(s[:len(s) - 4])  # the tail depends on what follows
    return [f for f in forms if len(f) >= 12]


def find_leaks(log, secrets):
    leaks = []
    for name, secret in secrets.items():
        for form in encodings(secret):
            if form in log:
                leaks.append((name, form[:40]))
    return leaks


def test_no_secret_in_debug_log(root, relays):
    relay = new_relay(root, relays, extra=["--log-level", "debug", "--quota-entries", "30"])
    secrets = {}
    tokens = [relay.first_invite] + [relay.invite() for _ in range(4)]
    for n, t in enumerate(tokens):
        secrets["invite code %d" % n] = invite_code(t).encode()
        secrets["invite token %d" % n] = t.encode()
    # Raw-protocol users: register, auth, send, fetch, ack.
    alice = ProbeUser(root, relay, "alice").register(tokens[0])
    bob = ProbeUser(root, relay, "bob").register(tokens[1])
    acked, _, _ = alice.send(bob, 20, "--size", 500)
    check(len(acked) == 20, "sends acknowledged")
    check(len(bob.receive()[0]) == 20, "fetch and ack")
    for u in (alice, bob):
        with open(u.keyfile, "rb") as f:
            key = f.read()
        secrets[u.handle + " identity key"] = key[:32]
        secrets[u.handle + " signing key"] = key[32:]
    # Error paths that carry a secret or a body: an unknown invite code, a
    # body over the limit, a send to nobody, a full inbox, a failed auth.
    bogus = "Zm9vYmFyYmF6cXV4cXV1eGNvZGUxMjM0NTY3OA"
    secrets["unknown invite code"] = bogus.encode()
    r = subprocess.run(alice.args("register", os.path.join(root, "x.key"), "mallory", bogus),
                       capture_output=True, timeout=60)
    check(b'"ok":false' in r.stdout, "unknown invite refused: %r" % r.stdout)
    _, errors, _ = alice.send(bob, 1, "--size", 65000, "--start", 100)
    check(errors, "oversized body refused")
    nobody = ProbeUser(root, relay, "nobody")
    _, errors, _ = alice.send(nobody, 1, "--size", 500, "--start", 200)
    check(errors, "send to an unknown user refused")
    _, errors, _ = alice.send(bob, 40, "--size", 500, "--start", 300)
    check(errors, "full inbox refused")
    impostor = ProbeUser(root, relay, "alice")
    impostor.keyfile = os.path.join(root, "impostor.key")
    fake = os.urandom(96)
    with open(impostor.keyfile, "wb") as f:
        f.write(fake)
    secrets["impostor signing key"] = fake[32:]
    rc, _ = impostor.run("recv")
    check(rc != 0, "auth with the wrong key refused")
    for i in (0, 19, 100, 200, 300, 339):
        size = 65000 if i == 100 else 500
        secrets["body %d" % i] = probe_body(i, size)[8:8 + 64]
    # Garbage and protocol violations are logged too.
    key = relay.status()["public_key"]
    for kind in ("badframe", "unauth", "badcipher", "garbage", "empty"):
        subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, kind], capture_output=True,
                       timeout=60)
    # The real client: end-to-end encrypted text, its identity key.
    kari = Client(root, "kari").init(tokens[2])
    lena = Client(root, "lena").init(tokens[3])
    text = "Hemmelig: ingen skal lese dette i relayets logg 4711"
    kari.ok("send", lena.address, text)
    check([m["text"] for m in lena.receive()] == [text], "client message delivered")
    secrets["client text"] = text.encode()
    for c in (kari, lena):
        ik = c.json1("whoami")["identity_key"]
        secrets[c.name + " identity key"] = base64.urlsafe_b64decode(ik + "=" * (-len(ik) % 4))
    with open(os.path.join(relay.data, "relay.key"), "rb") as f:
        secrets["relay private key"] = f.read()
    pub = relay.status()["public_key"]
    secrets["relay public key"] = base64.urlsafe_b64decode(pub + "=" * (-len(pub) % 4))
    relay.stop()
    with open(relay.log_path, "rb") as f:
        log = f.read()
    check(b" info " in log and b"user=alice registered" in log and b"refused" in log,
          "the log saw the whole exercise")
    leaks = find_leaks(log, secrets)
    check(not leaks, "secrets in the relay log: %r" % leaks)
    # The search finds what it looks for (so an empty result means something).
    check(find_leaks(log + b" " + secrets["bob identity key"].hex().encode(), secrets),
          "the search finds a hex key")
    check(find_leaks(log + base64.b64encode(secrets["body 19"][1:]), secrets),
          "the search finds a base64 body fragment")


if __name__ == "__main__":
    main([test_no_secret_in_debug_log])
