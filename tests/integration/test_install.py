"""What an operator installs: every binary answers --version with the
project's version, `cmake --install` puts each file where the packaging
and the docs say (bin, sbin, man1/5/8, bash completions, the systemd unit;
kollega-bench only on request), and the unit's ExecStart is a serve command
line the installed relay runs."""
import json
import os
import re
import shlex
import signal
import subprocess

from kl import BIN, check, main

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(kollega VERSION (\S+)", f.read())
    check(m, "no project(kollega VERSION ...) in CMakeLists.txt")
    return m.group(1)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def test_version(root, relays):
    v = project_version()
    for prog in ("kollega", "kollega-relay", "kollega-bench"):
        r = run([os.path.join(BIN, prog), "--version"])
        check(r.returncode == 0 and r.stdout == "%s %s\n" % (prog, v),
              "%s --version: rc %d, %r" % (prog, r.returncode, r.stdout))
        r = run([os.path.join(BIN, prog), "--version", "--json"])
        check(r.returncode == 0, "%s --version --json: rc %d" % (prog, r.returncode))
        check(json.loads(r.stdout) == {"program": prog, "version": v},
              "%s --version --json printed %r" % (prog, r.stdout))
    # The client takes global options before the command, --json among them.
    r = run([os.path.join(BIN, "kollega"), "--json", "--version"])
    check(json.loads(r.stdout)["version"] == v, "kollega --json --version: %r" % r.stdout)
    # --version with anything else is not a version request.
    r = run([os.path.join(BIN, "kollega-relay"), "--version", "serve"])
    check(r.returncode == 2, "kollega-relay --version serve exited %d, not 2" % r.returncode)


def install(root, *extra):
    dest = os.path.join(root, "dest")
    env = dict(os.environ, DESTDIR=dest)
    r = run(["cmake", "--install", BIN, "--prefix", "/usr"] + list(extra), env=env)
    check(r.returncode == 0, "cmake --install failed: %s%s" % (r.stdout, r.stderr))
    files = set()
    for d, _, names in os.walk(dest):
        for n in names:
            files.add(os.path.relpath(os.path.join(d, n), dest))
    return dest, files


def test_install_layout(root, relays):
    dest, files = install(root)
    want = {
        "usr/bin/kollega",
        "usr/sbin/kollega-relay",
        "usr/share/man/man1/kollega.1",
        "usr/share/man/man5/relay.conf.5",
        "usr/share/man/man8/kollega-relay.8",
        "usr/share/bash-completion/completions/kollega",
        "usr/share/bash-completion/completions/kollega-relay",
        "usr/lib/systemd/system/kollega-relay.service",
    }
    has_conf = os.path.exists(os.path.join(SRC, "etc", "relay.conf"))
    if has_conf:
        want.add("etc/kollega/relay.conf")
    check(files == want, "installed %s; missing %s, unexpected %s"
          % (sorted(files), sorted(want - files), sorted(files - want)))
    for b in ("usr/bin/kollega", "usr/sbin/kollega-relay"):
        check(os.access(os.path.join(dest, b), os.X_OK), "%s is not executable" % b)
        r = run([os.path.join(dest, b), "--version"])
        check(r.returncode == 0 and project_version() in r.stdout, "installed %s --version" % b)
    # The load generator only on request.
    _, files = install(root, "--component", "bench")
    check(files >= {"usr/bin/kollega-bench"}, "--component bench did not install kollega-bench")
    if has_conf:
        # A second install keeps an operator's edited config.
        conf = os.path.join(dest, "etc/kollega/relay.conf")
        with open(conf, "a") as f:
            f.write("# edited by the operator\n")
        install(root)
        with open(conf) as f:
            check("# edited by the operator" in f.read(), "cmake --install replaced relay.conf")


def unit_exec_start(path):
    with open(path) as f:
        lines = [l.strip() for l in f]
    starts = [l.split("=", 1)[1] for l in lines if l.startswith("ExecStart=")]
    check(len(starts) == 1, "the unit has %d ExecStart lines" % len(starts))
    return shlex.split(starts[0]), lines


def test_unit_command_runs(root, relays):
    dest, _ = install(root)
    argv, lines = unit_exec_start(os.path.join(dest, "usr/lib/systemd/system/kollega-relay.service"))
    check(argv[:4] == ["/usr/sbin/kollega-relay", "serve", "--data", "/var/lib/kollega-relay"],
          "unexpected ExecStart %r" % argv)
    check("StateDirectory=kollega-relay" in lines, "the unit does not create /var/lib/kollega-relay")
    # The same command line with the installed binary, another data
    # directory and a free port: it initialises, listens and stops cleanly
    # on SIGTERM (what `systemctl stop` sends).
    data = os.path.join(root, "state")
    os.mkdir(data, 0o700)
    cmd = [dest + argv[0]] + argv[1:3] + [data] + argv[4:] + ["--listen", "127.0.0.1:0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        check(re.match(r"listening on 127\.0\.0\.1:\d+ ", line), "serve printed %r" % line)
        check(os.path.exists(os.path.join(data, "relay.key")), "no relay.key in the data directory")
        p.send_signal(signal.SIGTERM)
        check(p.wait(timeout=60) == 0, "relay exited %s on SIGTERM" % p.returncode)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


if __name__ == "__main__":
    main([test_version, test_install_layout, test_unit_command_runs])
