"""Bad input gets an error and a close, and the relay keeps serving others."""
from kl import Client, check, main, new_relay, probe

BAD_REQUEST = 1
UNAUTHENTICATED = 2


def test_malformed_clients_are_closed_others_served(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    r = probe(relay, "badframe")
    check(r["error_code"] == BAD_REQUEST and r["closed"], "undecodable frame -> BAD_REQUEST + close: %r" % r)
    alice.ok("send", bob.address, "midt i angrepet")
    r = probe(relay, "unauth")
    check(r["error_code"] == UNAUTHENTICATED and r["closed"], "request before auth -> UNAUTHENTICATED + close: %r" % r)
    r = probe(relay, "garbage")
    check(r["closed"], "garbage instead of a handshake -> close: %r" % r)
    r = probe(relay, "truncated")
    check(r["closed"], "truncated frame then EOF -> close: %r" % r)
    r = probe(relay, "badcipher")
    check(r["closed"], "failed decryption -> close: %r" % r)
    r = probe(relay, "ping")
    check(r["error"] == "pong", "ping works before auth: %r" % r)
    check([m["text"] for m in bob.receive()] == ["midt i angrepet"], "legitimate clients are served")
    check(relay.proc.poll() is None, "relay still running")


if __name__ == "__main__":
    main([test_malformed_clients_are_closed_others_served])
