"""Users driven by kl-probe (raw protocol, fast) for the crash and abuse
tests, a hostile group member (probe_member), and small helpers those tests share: relay RSS, invite codes, fd
limits, and sanitizer settings for memory measurements."""
import json
import os
import re
import resource
import subprocess

from kl import PROBE, check

BAD_REQUEST = 1
UNAUTHENTICATED = 2
TOO_LARGE = 6
RATE_LIMITED = 7
QUOTA_EXCEEDED = 8
UNAVAILABLE = 10


def probe_member(relay, member, mode, *args):
    """kl-probe plays a group member (a kollega Client's home) on the wire
    (kl_probe_group.c): the mode's one JSON line."""
    key = relay.status()["public_key"]
    r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, mode, member.home] +
                       [str(a) for a in args], capture_output=True, timeout=60)
    out = r.stdout.decode().strip().splitlines()
    check(r.returncode == 0 and out, "kl-probe %s failed (rc=%d): %r %r" %
          (mode, r.returncode, out, r.stderr.decode()))
    return json.loads(out[-1])


def invite_code(token):
    m = re.search(r"[?&]code=([A-Za-z0-9_-]+)", token)
    check(m is not None, "no code in invite %r" % token)
    return m.group(1)


def rss_kib(pid):
    """Resident set size of a process, from /proc/PID/status (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def raise_fd_limit(want):
    """Raise this process's open-file limit towards want (children inherit
    it); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def small_asan_quarantine():
    """Under ASan, freed memory sits in a quarantine of up to 256 MiB before
    it is reused, so RSS would grow with every byte a storm allocates and
    frees even without any leak. Relays started after this call keep a
    small quarantine (use-after-free detection is weaker, but these tests
    are about memory bounds, and every other test keeps the default).
    No effect on builds without ASan."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    extra = "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    os.environ["ASAN_OPTIONS"] = (opts + ":" + extra) if opts else extra


class ProbeUser:
    """A user registered through an invite, whose key lives in a file that
    every later kl-probe run reads."""

    def __init__(self, root, relay, handle):
        self.relay = relay
        self.handle = handle
        self.keyfile = os.path.join(root, "probe-%s.key" % handle)
        self.address = "%s@%s" % (handle, relay.name)

    def args(self, mode, *rest):
        key = self.relay.status()["public_key"]
        return [PROBE, "127.0.0.1", str(self.relay.port), key, mode] + [str(a) for a in rest]

    def register(self, token=None):
        token = token or self.relay.invite()
        r = subprocess.run(self.args("register", self.keyfile, self.handle, invite_code(token)),
                           capture_output=True, timeout=60)
        out = r.stdout.decode().strip().splitlines()
        check(r.returncode == 0 and out and json.loads(out[-1])["ok"],
              "register %s failed: %r %r" % (self.handle, out, r.stderr.decode()))
        return self

    def run(self, mode, *rest, timeout=300):
        """Run a mode to completion; returns the list of JSON lines."""
        r = subprocess.run(self.args(mode, self.keyfile, self.address, *rest),
                           capture_output=True, timeout=timeout)
        lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
        check(lines, "kl-probe %s printed nothing (rc=%d): %s" % (mode, r.returncode,
                                                                 r.stderr.decode()))
        return r.returncode, lines

    def start(self, mode, *rest):
        """Start a mode in the background (stdin and stdout are pipes)."""
        return subprocess.Popen(self.args(mode, self.keyfile, self.address, *rest),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def send(self, to, n, *opts):
        """sendloop: returns ({i: seq} of acknowledged sends, [error lines], final line)."""
        rc, lines = self.run("sendloop", to.address, n, *opts)
        acked = {l["i"]: l["seq"] for l in lines if "seq" in l}
        errors = [l for l in lines if "error_code" in l]
        check(lines[-1].get("done"), "sendloop did not finish (rc=%d): %r" % (rc, lines[-3:]))
        return acked, errors, lines[-1]

    def receive(self, *opts):
        """recv: returns (entries, final line)."""
        rc, lines = self.run("recv", *opts)
        check(rc == 0 and lines[-1].get("done"), "recv failed (rc=%d): %r" % (rc, lines[-3:]))
        return [l for l in lines if "seq" in l], lines[-1]
