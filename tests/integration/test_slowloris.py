"""Slowloris: connections that never finish the Noise handshake are closed
by the relay's handshake timeout, and a legitimate client is served while
they are held open."""
import errno
import select
import socket
import time

from kl import DEBUG_LOG, check, main, new_relay
from probe_user import ProbeUser, raise_fd_limit

CONNS = 1000
TIMEOUT_S = 2


def open_loris(port, k):
    """One stalled connection. Three flavours: silent, one byte of a length
    prefix, and a complete prefix with part of the handshake message (the
    relay then holds a partial-frame buffer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if k % 3 == 1:
        s.sendall(b"\x00")
    elif k % 3 == 2:
        s.sendall(b"\x00\x30" + b"\x01" * 20)
    s.setblocking(False)
    return s


def reap(open_socks, timeout_ms):
    """One poll over the still-open sockets ({fd: socket}); drops those the
    relay has closed (EOF or reset) and checks it never wrote to one."""
    poller = select.poll()
    for fd in open_socks:
        poller.register(fd, select.POLLIN)
    for fd, _ in poller.poll(timeout_ms):
        try:
            data = open_socks[fd].recv(4096)
        except BlockingIOError:
            continue
        except OSError as e:
            check(e.errno in (errno.ECONNRESET, errno.EPIPE), "unexpected error %r" % e)
            data = b""
        check(data == b"", "the relay sent %d bytes to a half-open handshake" % len(data))
        del open_socks[fd]


def test_half_open_handshakes_time_out(root, relays):
    limit = raise_fd_limit(CONNS + 256)
    check(limit >= CONNS + 64, "need an open-file limit of at least %d, have %d"
          % (CONNS + 64, limit))
    relay = new_relay(root, relays, extra=["--handshake-timeout", str(TIMEOUT_S)] + DEBUG_LOG)
    alice = ProbeUser(root, relay, "alice")
    bob = ProbeUser(root, relay, "bob")
    tokens = [relay.first_invite, relay.invite()]
    socks = [open_loris(relay.port, k) for k in range(CONNS)]
    try:
        # Served meanwhile: register, send, receive and ack while the
        # thousand stalled handshakes are held.
        alice.register(tokens[0])
        bob.register(tokens[1])
        acked, errors, _ = alice.send(bob, 20, "--size", 300)
        check(len(acked) == 20 and not errors, "legitimate sends acknowledged: %r" % errors)
        entries, last = bob.receive()
        check([e["i"] for e in entries] == list(range(20)) and last["acked"],
              "legitimate receive: %r" % entries[:3])
        open_socks = {s.fileno(): s for s in socks}
        reap(open_socks, 0)
        still_open = len(open_socks)
        end = time.time() + 60
        while open_socks and time.time() < end:
            reap(open_socks, 500)
        left = len(open_socks)
    finally:
        for s in socks:
            s.close()
    check(left == 0, "%d stalled connections were never closed" % left)
    log = relay.read_log()
    timeouts = log.count("closed (handshake timeout)")
    check(timeouts >= CONNS, "closed by the handshake timeout: %d of %d" % (timeouts, CONNS))
    # The relay's log is in event order (one loop thread): bob's ack was
    # served before the last stalled handshake timed out.
    served = log.rfind("user=bob authenticated")
    check(0 <= served < log.rfind("closed (handshake timeout)"),
          "the legitimate client was served while the stalled connections were open")
    print("%d stalled connections closed by the timeout (%d still open after the legitimate "
          "exchange)" % (timeouts, still_open), flush=True)
    # And the relay still accepts and serves afterwards.
    acked, _, _ = alice.send(bob, 1)
    check(len(acked) == 1, "relay serves after the storm")


if __name__ == "__main__":
    main([test_half_open_handshakes_time_out])
