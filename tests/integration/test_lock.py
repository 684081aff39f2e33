"""One relay per data directory, and what `status` says of it (real
kollega-relay and kollega processes):

- a second `serve` on a running relay's data directory refuses and names
  the running relay's pid; `init` and `restore` refuse too;
- a relay killed with SIGKILL leaves relay.lock and control.sock behind,
  and neither blocks the next `serve`;
- `status` says whether the relay runs: pid, uptime, connections and
  version from the running relay over its control socket (mode 0600), and
  "not running" (JSON "running": false) when it is stopped;
- the control socket answers only its small requests: junk and an
  over-long request get an error, and the relay goes on serving."""
import os
import re
import socket
import stat
import subprocess
import time

from kl import BIN, RELAY, Client, check, main, new_relay


def relay_cmd(*args):
    r = subprocess.run([RELAY] + list(args), capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def version():
    with open(os.path.join(BIN, "gen", "kollega", "version.h")) as f:
        return re.search(r'#define KL_VERSION "([^"]+)"', f.read()).group(1)


def status(relay):
    import json
    rc, out, err = relay_cmd("status", "--data", relay.data, "--json")
    check(rc == 0, "status works: %s" % err)
    return json.loads(out)


def test_second_serve_refused(root, relays):
    relay = new_relay(root, relays)
    pid = relay.proc.pid
    rc, out, err = relay_cmd("serve", "--data", relay.data, "--listen", "127.0.0.1:0")
    check(rc == 1, "a second serve fails: rc=%d %r" % (rc, err))
    check("already running on %s (pid %d)" % (relay.data, pid) in err,
          "the error names the data directory and the running pid: %r" % err)
    rc, out, err = relay_cmd("init", "--data", relay.data, "--name", "other.test")
    check(rc == 1 and "(pid %d)" % pid in err, "init refuses too: %r" % err)
    rc, out, err = relay_cmd("restore", os.path.join(relay.data, "relay.db"), "--data",
                             relay.data, "--force")
    check(rc == 1 and "(pid %d)" % pid in err, "restore refuses too: %r" % err)
    # The first relay is untouched by all this.
    s = status(relay)
    check(s["running"] is True and s["pid"] == pid, "still the same relay: %r" % s)
    Client(root, "alice").init(relay.first_invite)


def test_kill9_leaves_nothing_that_blocks(root, relays):
    relay = new_relay(root, relays)
    old = relay.proc.pid
    relay.kill9()
    check(os.path.exists(os.path.join(relay.data, "relay.lock")), "the lock file stays behind")
    check(os.path.exists(os.path.join(relay.data, "control.sock")), "so does the socket file")
    s = status(relay)
    check(s["running"] is False, "a killed relay is not running: %r" % s)
    relay.start()
    s = status(relay)
    check(s["running"] is True and s["pid"] == relay.proc.pid and s["pid"] != old,
          "the new relay runs and answers on a new socket: %r" % s)


def test_status_running_and_stopped(root, relays):
    relay = new_relay(root, relays)
    alice = Client(root, "alice").init(relay.first_invite)
    s = status(relay)
    check(s["running"] is True and s["pid"] == relay.proc.pid, "running, with its pid: %r" % s)
    check(s["version"] == version(), "the relay's version: %r" % s)
    check(isinstance(s["uptime_s"], int) and s["federation_links"] == 0,
          "uptime and federation links are reported: %r" % s)
    check(s["users"] == 1 and s["name"] == "oslo.test", "what status showed before stays: %r" % s)
    mode = stat.S_IMODE(os.stat(os.path.join(relay.data, "control.sock")).st_mode)
    check(mode == 0o600, "the control socket is private: %o" % mode)
    # A client waiting for messages is one connection.
    waiting = subprocess.Popen(["%s/kollega" % BIN, "--home", alice.home, "receive",
                                "--timeout", "60"], env=alice.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if status(relay)["clients"] >= 1:
                break
            time.sleep(0.1)
        check(status(relay)["clients"] == 1, "the waiting client is counted")
    finally:
        waiting.kill()
        waiting.wait()
    rc, out, err = relay_cmd("status", "--data", relay.data)
    check(rc == 0 and re.search(r"state\s+running \(pid %d, up " % relay.proc.pid, out),
          "human status says running with the pid: %r" % out)
    check(relay.stop() == 0, "relay stops cleanly")
    check(not os.path.exists(os.path.join(relay.data, "control.sock")),
          "a clean stop removes the control socket")
    s = status(relay)
    check(s["running"] is False and "pid" not in s, "stopped: running false: %r" % s)
    check(s["users"] == 1, "the rest of status still works: %r" % s)
    rc, out, err = relay_cmd("status", "--data", relay.data)
    check(rc == 0 and re.search(r"state\s+not running", out), "human status: %r" % out)


def ask(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    s.sendall(data)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    return got.decode()


def test_control_socket_refuses_junk(root, relays):
    relay = new_relay(root, relays)
    path = os.path.join(relay.data, "control.sock")
    check(ask(path, b"status\n").startswith("ok pid=%d " % relay.proc.pid), "status answers")
    check(ask(path, b"format-disk\n").startswith("error usage"), "an unknown verb is refused")
    check(ask(path, b"user-remove ../../etc\n").startswith("error usage"),
          "a handle that is not one is refused")
    check(ask(path, b"x" * 300).startswith("error usage request too long"),
          "an over-long request is cut off")
    check(ask(path, b"user-remove nobody\n").startswith("error not-found"), "unknown user")
    Client(root, "alice").init(relay.first_invite)
    check(status(relay)["users"] == 1, "the relay goes on serving")


if __name__ == "__main__":
    main([test_second_serve_refused, test_kill9_leaves_nothing_that_blocks,
          test_status_running_and_stopped, test_control_socket_refuses_junk])
