"""Harness for Kollega integration tests: real kollega-relay and kollega
processes on 127.0.0.1 with temporary directories. Each test file is one
ctest test; KL_BIN_DIR points at the build directory."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("KL_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
RELAY = os.path.join(BIN, "kollega-relay")
CLIENT = os.path.join(BIN, "kollega")
PROBE = os.environ.get("KL_PROBE", os.path.join(BIN, "tests", "kl-probe"))
TIMEOUT = 120
# No configuration file unless a test gives one: a /etc/kollega/relay.conf
# on the machine must not change what the tests run.
os.environ["KOLLEGA_RELAY_CONFIG"] = ""
# Handles appear in the relay's log only at debug: tests that watch for a
# user's login run their relay with this.
DEBUG_LOG = ["--log-level", "debug"]


def logins(relay, handle):
    """How often handle authenticated, from the log of a relay at debug."""
    return relay.read_log().count("user=%s authenticated" % handle)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Relay:
    """A kollega-relay serve process on an ephemeral port (kept across restarts)."""

    def __init__(self, root, name="oslo.test", extra=()):
        self.data = os.path.join(root, "relay-" + name)
        self.name = name
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.first_invite = None
        self.log_path = os.path.join(root, "relay-%s.log" % name)

    def start(self):
        listen = "127.0.0.1:%d" % self.port
        args = [RELAY, "serve", "--data", self.data, "--name", self.name, "--listen", listen] + self.extra
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise Fail("relay exited before listening (rc=%s); log:\n%s" % (self.proc.wait(), self.read_log()))
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise Fail("relay did not report its address")
        return self

    def read_first_invite(self):
        line = self.proc.stdout.readline().decode()
        m = re.search(r"(kollega:invite\?\S+)", line)
        return m.group(1) if m else None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None
        return rc

    def invite(self, *args):
        r = subprocess.run([RELAY, "invite", "--data", self.data] + list(args),
                           capture_output=True, timeout=TIMEOUT)
        check(r.returncode == 0, "invite failed: %s" % r.stderr.decode())
        m = re.search(r"(kollega:invite\?\S+)", r.stdout.decode())
        check(m is not None, "no token in invite output: %r" % r.stdout)
        return m.group(1)

    def status(self):
        r = subprocess.run([RELAY, "status", "--data", self.data, "--json"],
                           capture_output=True, timeout=TIMEOUT)
        check(r.returncode == 0, "status failed: %s" % r.stderr.decode())
        return json.loads(r.stdout.decode())

    def db_path(self):
        return os.path.join(self.data, "relay.db")


class Client:
    def __init__(self, root, name, passphrase=None):
        self.home = os.path.join(root, "client-" + name)
        self.name = name
        self.passphrase = passphrase
        self.address = None

    def env(self, passphrase=None):
        e = dict(os.environ)
        e.pop("KOLLEGA_HOME", None)
        p = passphrase if passphrase is not None else self.passphrase
        if p is not None:
            e["KOLLEGA_PASSPHRASE"] = p
        else:
            e.pop("KOLLEGA_PASSPHRASE", None)
        return e

    def run(self, *args, json_out=True, stdin=None, passphrase=None, timeout=TIMEOUT):
        cmd = [CLIENT, "--home", self.home] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, input=stdin, env=self.env(passphrase),
                           timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == 0, "kollega %s failed rc=%d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out

    def json1(self, *args, **kw):
        out = self.ok(*args, **kw)
        return json.loads(out.strip().splitlines()[-1])

    def jsonl(self, *args, **kw):
        out = self.ok(*args, **kw)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def init(self, token):
        extra = [] if self.passphrase is not None else ["--no-passphrase"]
        self.ok("init", "--invite", token, "--name", self.name, *extra)
        self.address = self.json1("whoami")["address"]
        return self

    def receive(self, timeout=2):
        return self.jsonl("receive", "--timeout", str(timeout))


def probe(relay, mode):
    key = relay.status()["public_key"]
    r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, mode], capture_output=True, timeout=60)
    out = r.stdout.decode().strip()
    check(out, "kl-probe %s printed nothing: %s" % (mode, r.stderr.decode()))
    return json.loads(out.splitlines()[-1])


def main(tests):
    """Run each test function with a fresh temp dir; print a summary; exit 1 on failure."""
    failed = 0
    for t in tests:
        root = tempfile.mkdtemp(prefix="kl-it-")
        relays = []
        t0 = time.time()
        try:
            t(root, relays)
            # A clean SIGTERM shutdown is part of every test: exit 0, and
            # under ASan no leak or error report in the relay's log.
            for r in relays:
                if r.proc is not None:
                    rc = r.stop()
                    check(rc == 0, "relay %s exited %d on SIGTERM" % (r.name, rc))
                check("Sanitizer" not in r.read_log(), "sanitizer report in relay %s log" % r.name)
            print("PASS %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
            shutil.rmtree(root, ignore_errors=True)
        except Exception as e:  # noqa: BLE001 - report every failure kind
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
            for r in relays:
                print("--- relay log %s ---\n%s" % (r.name, r.read_log()[-4000:]), flush=True)
            print("(kept %s)" % root, flush=True)
        finally:
            for r in relays:
                if r.proc is not None:
                    r.proc.kill()
                    r.proc.wait()
    sys.exit(1 if failed else 0)


def new_relay(root, relays, **kw):
    r = Relay(root, **kw)
    relays.append(r)
    r.start()
    r.first_invite = r.read_first_invite()
    return r
