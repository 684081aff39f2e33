"""The relay's configuration file (serve --config, config check, the
etc/relay.conf reference), SIGHUP reload without dropping connections
(limits, a broken file, settings that need a restart, federation peers),
what the log keeps at info and at debug (and its JSON form), and invites
of a relay listening on every interface."""
import json
import os
import re
import signal
import subprocess
import time

from kl import (CLIENT, DEBUG_LOG, RELAY, TIMEOUT, Client, Relay, check, logins, main,
                new_relay)
from probe_user import TOO_LARGE, UNAVAILABLE, ProbeUser
from test_federation import free_port, peer_state, relay_cmd, wait_for

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../etc/relay.conf")


def run(*args, env=None):
    r = subprocess.run([RELAY] + list(args), capture_output=True, timeout=TIMEOUT, env=env)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def check_json(path):
    rc, out, err = run("config", "check", path, "--json")
    check(rc == 0, "config check %s: rc=%d %s" % (path, rc, err))
    return json.loads(out)


def test_reference_documents_every_key(root, relays):
    settings = check_json(REFERENCE)["settings"]
    keys = list(settings)
    check("max-body" in keys and "log-format" in keys and "config" not in keys,
          "the keys are the serve flags without --: %r" % keys)
    check(all(v["from"] == "default" for v in settings.values()),
          "the reference as shipped sets nothing")
    with open(REFERENCE) as f:
        ref = f.read()
    rc, usage, _ = run("serve", "--help")
    for k in keys:
        check(re.search(r"^# %s = \S" % re.escape(k), ref, re.M),
              "etc/relay.conf has no '# %s = ...' example" % k)
        check(re.search(r"^# %s: \S" % re.escape(k), ref, re.M),
              "etc/relay.conf does not describe %s" % k)
        check("--" + k in usage, "serve --help names --%s" % k)
    # Every documented value parses, and where a key has a built-in value
    # the example is that value: the reference's defaults are the code's.
    uncommented = write(os.path.join(root, "all.conf"),
                        re.sub(r"^# ([a-z-]+ = )", r"\1", ref, flags=re.M))
    mine = check_json(uncommented)["settings"]
    for k, v in settings.items():
        check(mine[k]["from"] == "file" and mine[k]["value"] is not None,
              "%s is set by the uncommented reference (and config check shows it)" % k)
        if v["value"] is not None:
            check(mine[k]["value"] == v["value"],
                  "etc/relay.conf says %s = %r, the default is %r" % (k, mine[k]["value"], v["value"]))
    rc, out, _ = run("config", "check", REFERENCE)
    check(rc == 0 and "max-body" in out and "61440" in out, "human output: %r" % out)


def test_bad_files_are_refused_with_line_and_key(root, relays):
    cases = [
        ("[relay]\nrate = 10\nmax-body = 70000\n", ":3: key 'max-body': must be a whole number "
         "from 1 to 65000, got '70000'"),
        ("[relay]\n# fine\nmax-bdy = 10\n", ":3: unknown key 'max-bdy'"),
        ("[relay]\nrate = 1\n[server]\nrate = 2\n", ":4: unknown section [server]"),
        ("rate = 1\n", ":1: key 'rate' is outside a section"),
        ("[relay]\nsync = sometimes\n", ":2: key 'sync': must be full or normal"),
        ("[relay]\nlisten = nowhere\n", ":2: key 'listen': must be HOST:PORT"),
        ("[relay]\nlog-format = xml\n", ":2: key 'log-format': must be text or json"),
        ("[relay]\nrate = 5\nrate = 6\n", ":3: key 'rate' is set twice (first on line 2)"),
        ("[relay]\nrate\n", ":2: not a 'key = value' line"),
        ("[relay]\nname = " + "a" * 300 + "\n", ":2: line too long"),
        ("[relay]\nconfig = /x\n", ":2: unknown key 'config'"),
    ]
    for i, (text, want) in enumerate(cases):
        path = write(os.path.join(root, "bad%d.conf" % i), text)
        rc, out, err = run("config", "check", path)
        check(rc == 2 and path + want in err, "config check %r: rc=%d %r" % (text, rc, err))
        rc, out, _ = run("config", "check", path, "--json")
        j = json.loads(out)
        check(rc == 2 and j["valid"] is False and want in j["error"], "--json: %r" % out)
    rc, _, err = run("config", "check", os.path.join(root, "missing.conf"))
    check(rc == 2 and "cannot read" in err, "a missing file: %r" % err)
    # serve refuses to start on a bad file, saying where.
    bad = write(os.path.join(root, "serve-bad.conf"), "[relay]\nburst = lots\n")
    rc, _, err = run("serve", "--data", os.path.join(root, "d"), "--config", bad)
    check(rc == 2 and bad + ":2: key 'burst'" in err, "serve with a bad file: rc=%d %r" % (rc, err))
    check(not os.path.exists(os.path.join(root, "d")), "and touches nothing")


def body_limit(relay):
    m = re.findall(r"body <= (\d+) bytes", relay.read_log())
    check(m, "no start line in the log:\n%s" % relay.read_log())
    return int(m[-1])


def test_file_flags_and_default_path(root, relays):
    conf = write(os.path.join(root, "relay.conf"), "[relay]\nmax-body = 1000\nmax-connections = 7\n")
    a = new_relay(root, relays, name="a.test", extra=["--config", conf])
    check(body_limit(a) == 1000 and "max 7 connections" in a.read_log(), "the file applies")
    b = new_relay(root, relays, name="b.test", extra=["--config", conf, "--max-body", "5000"])
    check(body_limit(b) == 5000 and "max 7 connections" in b.read_log(), "a flag wins over its key")
    # Without --config: $KOLLEGA_RELAY_CONFIG (the stand-in for /etc/kollega/relay.conf).
    os.environ["KOLLEGA_RELAY_CONFIG"] = conf
    try:
        c = new_relay(root, relays, name="c.test")
        check(body_limit(c) == 1000, "the default file applies")
        rc, out, _ = run("config", "check", "--json")
        check(rc == 0 and json.loads(out)["file"] == conf, "config check reads it too")
    finally:
        os.environ["KOLLEGA_RELAY_CONFIG"] = ""
    d = new_relay(root, relays, name="d.test")
    check(body_limit(d) == 61440, "an empty KOLLEGA_RELAY_CONFIG means no file")
    # Keys in the file reach what serve does beyond limits: data and name.
    data = os.path.join(root, "from-file")
    conf2 = write(os.path.join(root, "where.conf"),
                  "[relay]\ndata = %s\nname = e.test\nlisten = 127.0.0.1:0\n" % data)
    p = subprocess.Popen([RELAY, "serve", "--config", conf2, "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        ev = json.loads(p.stdout.readline().decode())
        check(ev["name"] == "e.test" and os.path.exists(os.path.join(data, "relay.db")),
              "data and name from the file: %r" % ev)
    finally:
        p.send_signal(signal.SIGTERM)
        check(p.wait(timeout=30) == 0, "serve stops cleanly")
        p.stdout.close()


def wait_log(relay, text, after=0, limit=30):
    return wait_for("%r in the relay log" % text, lambda: text in relay.read_log()[after:], limit)


def reload(relay, text=None):
    mark = len(relay.read_log())
    relay.proc.send_signal(signal.SIGHUP)
    wait_log(relay, text or "config reload", mark)
    return relay.read_log()[mark:]


def test_sighup_applies_limits_live(root, relays):
    conf = write(os.path.join(root, "relay.conf"), "[relay]\nmax-body = 60000\n")
    relay = new_relay(root, relays, extra=["--config", conf] + DEBUG_LOG)
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    p1 = ProbeUser(root, relay, "p1").register()
    p2 = ProbeUser(root, relay, "p2").register()
    acked, errors, _ = p1.send(p2, 1, "--size", 5000)
    check(len(acked) == 1 and not errors, "5000 bytes pass under max-body 60000: %r" % errors)
    before = logins(relay, "bob")
    follow = subprocess.Popen([CLIENT, "--home", bob.home, "--json", "receive", "--timeout", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bob.env(),
                              stdin=subprocess.DEVNULL)
    try:
        wait_for("bob's receive to log in", lambda: logins(relay, "bob") > before)
        time.sleep(0.3)  # its first fetch is done: what follows is a push
        write(conf, "[relay]\nmax-body = 3000\nrate = 500\n")
        log = reload(relay, "setting(s) applied")
        check("max-body 60000 -> 3000" in log and "rate 2000 -> 500" in log,
              "the changes are logged: %r" % log)
        acked, errors, _ = p1.send(p2, 1, "--size", 5000)
        check(not acked and [e["error_code"] for e in errors] == [TOO_LARGE],
              "5000 bytes now get TOO_LARGE: %r %r" % (acked, errors))
        acked, errors, _ = p1.send(p2, 1, "--size", 1000)
        check(len(acked) == 1 and not errors, "1000 bytes still pass")
        alice.ok("send", bob.address, "etter omlasting")
        got = None
        deadline = time.time() + 30
        while time.time() < deadline and got is None:
            line = follow.stdout.readline().decode()
            if not line:
                break
            m = json.loads(line)
            if m.get("text") == "etter omlasting":
                got = m
        check(got is not None, "bob's connection, open across the reload, gets the message")
        check(logins(relay, "bob") == before + 1, "on the same connection (no new login)")
        check(follow.poll() is None, "and it is still open")
    finally:
        follow.terminate()
        follow.wait()
        follow.stdout.close()
        follow.stderr.close()


def test_bad_reload_keeps_serving(root, relays):
    conf = write(os.path.join(root, "relay.conf"), "[relay]\nmax-body = 4000\n")
    relay = new_relay(root, relays, extra=["--config", conf, "--rate", "300"])
    p1 = ProbeUser(root, relay, "p1").register(relay.first_invite)
    p2 = ProbeUser(root, relay, "p2").register()
    write(conf, "[relay]\nmax-body = 100\nmystery = 1\n")
    log = reload(relay, "keeping the running settings")
    check(conf + ":3: unknown key 'mystery'" in log, "the error names file, line, key: %r" % log)
    acked, errors, _ = p1.send(p2, 1, "--size", 3000)
    check(len(acked) == 1 and not errors, "the running max-body (4000) still holds")
    # Settings bound at start: a warning, the running value stays.
    write(conf, "[relay]\nmax-body = 4000\nsync = normal\nrate = 50\n")
    log = reload(relay, "setting(s) applied")
    check(re.search(r"warn config reload: sync changed \(unset -> normal\) but needs a restart", log),
          "sync needs a restart: %r" % log)
    check("config reload: rate" not in log, "--rate on the command line still wins: %r" % log)
    acked, errors, _ = p1.send(p2, 1, "--size", 3000)
    check(len(acked) == 1 and not errors, "still serving")


def test_sighup_sets_and_lifts_the_db_cap(root, relays):
    conf = write(os.path.join(root, "relay.conf"), "[relay]\n")
    relay = new_relay(root, relays, extra=["--config", conf])
    alice = ProbeUser(root, relay, "alice").register(relay.first_invite)
    bob = ProbeUser(root, relay, "bob").register()
    acked, errors, _ = alice.send(bob, 5, "--size", 60000)
    check(len(acked) == 5 and not errors, "no cap: sends pass")
    write(conf, "[relay]\nmax-db-bytes = %d\n" % (2 << 20))
    reload(relay, "config reload: database cap now")
    acked, errors, _ = alice.send(bob, 200, "--size", 60000, "--start", 100, "--until-error")
    check(len(acked) < 200 and [e["error_code"] for e in errors] == [UNAVAILABLE],
          "a 2 MiB cap set live refuses sends once reached: %d %r" % (len(acked), errors))
    write(conf, "[relay]\n")
    reload(relay, "config reload: database cap now")
    acked, errors, _ = alice.send(bob, 3, "--size", 60000, "--start", 500)
    check(len(acked) == 3 and not errors, "the cap is lifted live: %r" % errors)


def test_sighup_reloads_peers(root, relays):
    # oslo starts with no peer and no federation port (no federation at
    # all); stockholm accepts links. Peers are added while both run.
    oslo = Relay(root, name="oslo.test")
    sthlm = Relay(root, name="stockholm.test")
    sthlm.fed_port = free_port()
    sthlm.extra = ["--federation-listen", "127.0.0.1:%d" % sthlm.fed_port,
                   "--federation-retry-max", "1"]
    oslo.extra = ["--federation-retry-max", "1"]
    for r in (oslo, sthlm):
        relays.append(r)
        r.start()
        r.first_invite = r.read_first_invite()
        r.key = r.status()["public_key"]
    alice = Client(root, "alice").init(oslo.first_invite)
    kari = Client(root, "kari").init(sthlm.first_invite)

    def link_up(a, b):
        wait_for("link %s -> %s" % (a.name, b.name),
                 lambda: (peer_state(a, b.name) or {}).get("link") == "up")

    def crosses(text):
        alice.ok("send", kari.address, text)
        got = []
        deadline = time.time() + 30
        while not got and time.time() < deadline:
            got = [m["text"] for m in kari.receive(1) if "text" in m]
        check(got == [text], "a message crosses the link: %r" % got)

    # stockholm needs oslo as a peer to accept its link; oslo has no port
    # for stockholm to dial yet.
    oslo.fed_port = free_port()
    relay_cmd("peer", "add", "--data", sthlm.data, oslo.name, "127.0.0.1:%d" % oslo.fed_port,
              oslo.key)
    relay_cmd("peer", "add", "--data", oslo.data, sthlm.name, "127.0.0.1:%d" % sthlm.fed_port,
              sthlm.key)
    for r in (oslo, sthlm):
        reload(r, "federation: 1 peer(s) added, 0 removed")
    link_up(oslo, sthlm)
    # Both ways for messages (kari's client looks alice up through
    # stockholm): oslo restarts with a federation port.
    oslo.stop()
    oslo.extra += ["--federation-listen", "127.0.0.1:%d" % oslo.fed_port]
    oslo.start()
    link_up(oslo, sthlm)
    link_up(sthlm, oslo)
    crosses("hei over ny lenke")
    relay_cmd("peer", "remove", "--data", oslo.data, sthlm.name)
    mark = len(oslo.read_log())
    reload(oslo, "federation: 0 peer(s) added, 1 removed")
    wait_log(oslo, "link to stockholm.test closed (peer removed)", mark)
    rc, out, err = alice.run("send", kari.address, "ikke lenger")
    check(rc != 0, "stockholm is no longer a peer of oslo: %r %r" % (out, err))
    time.sleep(1.5)  # over the redial backoff cap: a removed peer is never dialled again
    check(oslo.read_log()[mark:].count("link to stockholm.test") == 1,
          "no link to a removed peer: %r" % oslo.read_log()[mark:])
    # Added again (a new peer entry): links come back, messages cross.
    relay_cmd("peer", "add", "--data", oslo.data, sthlm.name, "127.0.0.1:%d" % sthlm.fed_port,
              sthlm.key)
    reload(oslo, "federation: 1 peer(s) added, 0 removed")
    link_up(oslo, sthlm)
    link_up(sthlm, oslo)
    crosses("hei igjen")


def private_relay(root, relays, name, extra):
    relay = new_relay(root, relays, name=name, extra=extra)
    lena = Client(root, "lena-" + name[0]).init(relay.first_invite)
    kari = Client(root, "kari-" + name[0]).init(relay.invite())
    lena.ok("send", kari.address, "hei")
    kari.receive(0)
    relay.stop()
    own = "127.0.0.1:%d" % relay.port  # the relay's own listen address, in its start line
    return relay.read_log(), own, (lena.name, kari.name)


def test_log_keeps_no_handle_or_address_at_info(root, relays):
    log, own, handles = private_relay(root, relays, "info.test", [])
    check("authenticated" in log and "registered" in log, "the events are there:\n%s" % log)
    for h in handles:
        check(h not in log, "handle %s in the info log:\n%s" % (h, log))
    check("127.0.0.1" not in log.replace(own, ""), "a client address in the info log:\n%s" % log)
    log, own, handles = private_relay(root, relays, "debug.test", DEBUG_LOG)
    for h in handles:
        check("user=%s" % h in log, "at debug, %s appears:\n%s" % (h, log))
    check(re.search(r"peer=127\.0\.0\.1:\d+", log.replace(own, "")), "and client addresses")
    log, own, handles = private_relay(root, relays, "json.test", ["--log-format", "json"])
    lines = [json.loads(l) for l in log.splitlines() if l.strip()]
    check(len(lines) > 5 and all({"ts", "level", "msg"} <= set(l) for l in lines),
          "every line is an object with ts, level, msg: %r" % lines[:3])
    check(any(l["msg"] == "authenticated" and isinstance(l.get("conn"), int) for l in lines),
          "connection events carry conn: %r" % lines)
    check(not any("user" in l or "peer" in l for l in lines), "no user or peer fields at info")
    for h in handles:
        check(h not in log, "no handle in the JSON log")


def test_wildcard_without_advertise(root, relays):
    data = os.path.join(root, "wild")
    rc, out, err = run("init", "--data", data, "--name", "wild.test", "--listen", "0.0.0.0:0")
    check(rc == 0, "init on 0.0.0.0: %s" % err)
    rc, usage, _ = run("init", "--help")
    check("0.0.0.0" in usage and "--advertise" in usage, "init --help explains advertise")
    logp = os.path.join(root, "wild.log")
    with open(logp, "wb") as logf:
        p = subprocess.Popen([RELAY, "serve", "--data", data], stdout=subprocess.PIPE, stderr=logf)
        try:
            first = p.stdout.readline().decode()
            port = int(re.search(r"listening on 0\.0\.0\.0:(\d+)", first).group(1))
            second = p.stdout.readline().decode()
            check(second.startswith("no invite:") and
                  "kollega-relay invite --data %s --advertise HOST:PORT" % data in second,
                  "no first invite, and what to run instead: %r" % second)
            rc, out, err = run("invite", "--data", data)
            check(rc == 1 and "--advertise HOST:PORT" in err and "kollega:invite" not in out,
                  "invite refuses to guess: %r" % err)
            rc, out, err = run("invite", "--data", data, "--advertise", "127.0.0.1:%d" % port)
            check(rc == 0 and "addr=127.0.0.1:%d" % port in out, "with --advertise: %r" % err)
            rc, out, _ = run("invite", "--data", data)
            check(rc == 0 and "addr=127.0.0.1:%d" % port in out, "remembered: %r" % out)
            rc, _, err = run("invite", "--data", data, "--advertise", "0.0.0.0:1")
            check(rc == 2 and "not 0.0.0.0" in err, "a wildcard is no advertise: %r" % err)
            c = Client(root, "wild").init(out.strip())
            check(c.address == "wild@wild.test", "the token works")
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            p.stdout.close()
    with open(logp) as f:
        log = f.read()
    check(re.search(r"warn listening on every interface \(0\.0\.0\.0:0\) without an advertised "
                    r"address", log), "serve warns at start: %r" % log)


if __name__ == "__main__":
    main([test_reference_documents_every_key, test_bad_files_are_refused_with_line_and_key,
          test_file_flags_and_default_path, test_sighup_applies_limits_live,
          test_bad_reload_keeps_serving, test_sighup_sets_and_lifts_the_db_cap,
          test_sighup_reloads_peers,
          test_log_keeps_no_handle_or_address_at_info, test_wildcard_without_advertise])
