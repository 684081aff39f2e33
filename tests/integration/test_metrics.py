"""Prometheus metrics (serve --metrics-listen): a real relay with real clients
is scraped over HTTP; the counters follow what happened, nothing names a user
or an address, junk HTTP gets an error without harming the relay, too many
or too slow scrapers are cut off, and without the flag no port is opened."""
import http.client
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from kl import PROBE, RELAY, Client, Fail, check, main, new_relay
from test_federation import NAMES, federation, receive_until, users

METRICS = ["--metrics-listen", "127.0.0.1:0"]
# The storage counts are refreshed every 5 s; polls wait for a change up to this.
POLL_S = 30


def metrics_url(relay):
    """The human output's metrics line comes after the listening line and
    the invite line, if any (Relay.start has read the former)."""
    lines = []
    for _ in range(2):
        lines.append(relay.proc.stdout.readline().decode())
        m = re.search(r"^metrics on (http://127\.0\.0\.1:\d+/metrics)$", lines[-1])
        if m:
            return m.group(1)
    raise Fail("serve must print the metrics address, got %r" % lines)


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        check(r.status == 200, "GET /metrics: %d" % r.status)
        ctype = r.headers.get("Content-Type", "")
        check(ctype.startswith("text/plain; version=0.0.4"), "content type: %r" % ctype)
        return r.read().decode()


def samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def poll(url, cond, what, refused_ok=False):
    """Scrape until cond holds. refused_ok: a connection the relay closes
    at once (its cap of metrics connections was still full) is retried."""
    deadline = time.time() + POLL_S
    while True:
        try:
            s = samples(scrape(url))
        except (ConnectionResetError, urllib.error.URLError, http.client.RemoteDisconnected):
            if not refused_ok or time.time() > deadline:
                raise
            time.sleep(0.25)
            continue
        if cond(s):
            return s
        if time.time() > deadline:
            raise Fail("%s: never seen in the metrics; last scrape: %r" % (what, s))
        time.sleep(0.25)


def storm(relay, kind, n):
    key = relay.status()["public_key"]
    r = subprocess.run([PROBE, "127.0.0.1", str(relay.port), key, "storm", kind, str(n)],
                       capture_output=True, timeout=120)
    check(r.returncode == 0, "storm %s failed: %s" % (kind, r.stderr.decode()))


def http_raw(url, data, shut=True):
    """Send raw bytes to the metrics port; return everything answered before the close."""
    host, port = re.match(r"http://([\d.]+):(\d+)/", url).groups()
    s = socket.create_connection((host, int(port)), timeout=20)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got


def closed_unanswered(sock):
    """The relay closed sock without sending anything (FIN, or a reset
    because what we sent was never read)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def listening_ports(pid):
    """Local ports of the TCP sockets process pid listens on."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_follow_activity_and_name_nobody(root, relays):
    relay = new_relay(root, relays, extra=METRICS)
    url = metrics_url(relay)
    text = scrape(url)
    check('kollega_relay_build_info{version="' in text, "build_info: %s" % text)
    for fam, kind in [("connections", "gauge"), ("connections_accepted_total", "counter"),
                      ("frames_received_total", "counter"), ("errors_sent_total", "counter"),
                      ("storage_commits_total", "counter"),
                      ("storage_commit_duration_seconds", "histogram")]:
        check("# HELP kollega_relay_%s " % fam in text, "HELP of %s" % fam)
        check("# TYPE kollega_relay_%s %s\n" % (fam, kind) in text, "TYPE of %s" % fam)
    before = samples(text)
    check(before["kollega_relay_connections"] == 0, "no client yet: %r" % before)

    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    for i in range(3):
        alice.ok("send", bob.address, "melding %d" % i)
    # Bob has not fetched: his inbox holds the three (once the storage
    # thread's counts are refreshed).
    s = poll(url, lambda s: s.get("kollega_relay_stored_entries", 0) >= 3, "3 stored entries")
    check(s["kollega_relay_users"] == 2, "two users: %r" % s)
    check(s["kollega_relay_stored_entry_bytes"] > 0, "entry bytes: %r" % s)
    got = bob.receive()
    check(len(got) == 3, "bob gets the three: %r" % got)
    s = poll(url, lambda s: s.get("kollega_relay_stored_entries") == 0, "inbox emptied by acks")

    f = 'kollega_relay_frames_received_total{type="%s"}'
    check(s[f % "register"] == 2, "two registrations: %r" % s)
    check(s[f % "send"] >= 3, "three sends at least: %r" % s)
    for t in ("auth", "fetch", "ack"):
        check(s[f % t] >= 1, "%s frames counted: %r" % (t, s))
    check(s["kollega_relay_connections_accepted_total"] >= 5, "client connections: %r" % s)
    check(s["kollega_relay_storage_commits_total"] > before["kollega_relay_storage_commits_total"],
          "commits counted: %r" % s)
    h = "kollega_relay_storage_commit_duration_seconds"
    check(s[h + "_count"] > before[h + "_count"], "commit durations observed")
    check(s[h + '_bucket{le="+Inf"}'] == s[h + "_count"], "+Inf bucket is the count")
    buckets = [v for k, v in s.items() if k.startswith(h + "_bucket")]
    check(buckets == sorted(buckets), "buckets are cumulative: %r" % buckets)

    # Errors by code: a deliver frame sent to the relay is refused with
    # BAD_REQUEST, a fetch before auth with UNAUTHENTICATED.
    storm(relay, "wrongbody", 3)
    storm(relay, "unauth", 2)
    s2 = samples(scrape(url))
    e = 'kollega_relay_errors_sent_total{code="%s"}'
    check(s2[e % "BAD_REQUEST"] == s[e % "BAD_REQUEST"] + 3, "3 BAD_REQUEST: %r" % s2)
    check(s2[e % "UNAUTHENTICATED"] == s[e % "UNAUTHENTICATED"] + 2, "2 UNAUTHENTICATED")
    check(s2[f % "deliver"] == s[f % "deliver"] + 3, "the deliver frames counted by type")

    # Nothing that names a user, an address or the relay's clients.
    final = scrape(url)
    for secret in ("alice", "bob", "@", "oslo.test", "127.0.0.1"):
        check(secret not in final, "%r must not appear in the metrics" % secret)
    labels = set(re.findall(r'(\w+)="', final))
    check(labels <= {"version", "type", "code", "le"}, "only fixed label names: %r" % labels)


def test_metrics_junk_http_and_slow_scrapers(root, relays):
    relay = new_relay(root, relays, extra=METRICS)
    url = metrics_url(relay)
    path = url.split("/metrics")[0]
    cases = [
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 "),
        (b"\x00\xff\x16\x03\x01 junk\n\n", b"HTTP/1.1 400 "),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"HTTP/1.1 405 "),
        (b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 404 "),
        (b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 8000 + b"\r\n\r\n",
         b"HTTP/1.1 431 "),
    ]
    for req, want in cases:
        got = http_raw(url, req)
        check(got.startswith(want), "%r... must get %r, got %r" % (req[:20], want, got[:80]))
        check(b"Connection: close\r\n" in got, "every answer closes: %r" % got[:200])
        check(b"kollega_relay_" not in got, "no metrics outside GET /metrics")
    # A request in pieces, split inside its final blank line, is put together.
    host, port = re.match(r"http://([\d.]+):(\d+)/", url).groups()
    s = socket.create_connection((host, int(port)), timeout=20)
    for piece in (b"GET /metrics HTTP/1.0\r", b"\nHost: x\r\n\r", b"\n"):
        s.sendall(piece)
        time.sleep(0.2)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    check(got.startswith(b"HTTP/1.1 200 ") and b"kollega_relay_build_info" in got,
          "a request sent in pieces is answered: %r" % got[:100])
    try:
        urllib.request.urlopen(path + "/other", timeout=10)
        raise Fail("GET /other must fail")
    except urllib.error.HTTPError as e:
        check(e.code == 404, "GET /other: %d" % e.code)
    # A query string is ignored; the answer is the metrics.
    check("kollega_relay_build_info" in scrape(url + "?x=1"), "GET /metrics?x=1 serves")

    # Slow scrapers: connections that send half a request and wait. The
    # relay holds a few of them; past its cap the next is closed at once,
    # and none of them keeps a scrape or a client from being served once
    # they are gone.
    slow = []
    for _ in range(8):
        s = socket.create_connection((host, int(port)), timeout=20)
        s.sendall(b"GET /metr")
        slow.append(s)
    extra = socket.create_connection((host, int(port)), timeout=20)
    extra.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    check(closed_unanswered(extra), "a connection over the cap is closed without an answer")
    extra.close()
    # The relay itself is unharmed meanwhile: clients register and send.
    alice = Client(root, "alice").init(relay.first_invite)
    bob = Client(root, "bob").init(relay.invite())
    alice.ok("send", bob.address, "hei")
    check([m["text"] for m in bob.receive()] == ["hei"], "messaging works beside slow scrapers")
    # A slow scraper is cut off at the deadline (10 s) without an answer.
    slow[0].settimeout(60)
    check(closed_unanswered(slow[0]), "a request never finished is closed at the deadline")
    for s in slow:
        s.close()
    # Until the relay has seen them go, a scrape may still find the cap full.
    poll(url, lambda s: s['kollega_relay_frames_received_total{type="send"}'] >= 1,
         "scrapes work again", refused_ok=True)


def test_metrics_off_by_default_json_and_warning(root, relays):
    plain = new_relay(root, relays)
    ports = listening_ports(plain.proc.pid)
    check(ports == {plain.port}, "without --metrics-listen only the client port is open: %r"
          % ports)
    on = new_relay(root, relays, name="bergen.test", extra=METRICS)
    url = metrics_url(on)
    mport = int(re.search(r":(\d+)/metrics", url).group(1))
    check(listening_ports(on.proc.pid) == {on.port, mport}, "metrics add exactly one port")
    check("reachable from the network" not in on.read_log(), "no warning on loopback")

    # --json: the listening event names the metrics address; a wildcard
    # address is served but warned about.
    data = os.path.join(root, "relay-json")
    p = subprocess.Popen([RELAY, "serve", "--json", "--data", data, "--name", "json.test",
                          "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ev = json.loads(p.stdout.readline().decode())
        check(ev["event"] == "listening" and re.match(r"0\.0\.0\.0:\d+$", ev["metrics_address"]),
              "metrics_address in the listening event: %r" % ev)
        port = ev["metrics_address"].rsplit(":", 1)[1]
        check("kollega_relay_connections 0" in scrape("http://127.0.0.1:%s/metrics" % port),
              "served on the wildcard address")
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    check(p.returncode == 0, "clean stop: %d" % p.returncode)
    check(re.search(r" warn metrics on 0\.0\.0\.0:\d+ are reachable from the network",
                    err.decode()), "warning for a non-loopback address: %s" % err.decode())
    # The configuration file's key does the same as the flag.
    conf = os.path.join(root, "relay.conf")
    with open(conf, "w") as f:
        f.write("[relay]\nmetrics-listen = 127.0.0.1:0\n")
    p = subprocess.Popen([RELAY, "serve", "--json", "--config", conf, "--data", data,
                          "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ev = json.loads(p.stdout.readline().decode())
        check(re.match(r"127\.0\.0\.1:\d+$", ev.get("metrics_address", "")),
              "metrics-listen from the config file: %r" % ev)
        scrape("http://%s/metrics" % ev["metrics_address"])
    finally:
        p.terminate()
        p.communicate(timeout=30)
    check(p.returncode == 0, "clean stop: %d" % p.returncode)
    # Usage: the flag is documented and checked.
    r = subprocess.run([RELAY, "serve", "--help"], capture_output=True, timeout=30)
    check(r.returncode == 0 and b"--metrics-listen" in r.stdout, "serve --help names the flag")
    r = subprocess.run([RELAY, "serve", "--data", data, "--metrics-listen", "nonsense"],
                       capture_output=True, timeout=30)
    check(r.returncode == 2 and b"--metrics-listen" in r.stderr,
          "a malformed address is a usage error: %d %r" % (r.returncode, r.stderr))
    r = subprocess.run([RELAY, "serve", "--data", data, "--listen", "127.0.0.1:0",
                        "--metrics-listen", "127.0.0.1:%d" % mport], capture_output=True,
                       timeout=30)
    check(r.returncode == 1 and b"metrics" in r.stderr,
          "a taken metrics port fails the start (exit 1) and says so: %d %r"
          % (r.returncode, r.stderr))


def test_metrics_federation_peer_state_and_outbox(root, relays):
    rs = federation(root, relays, names=NAMES[:2])
    oslo = rs["oslo"]
    oslo.stop()
    oslo.extra += METRICS
    oslo.start()
    url = metrics_url(oslo)
    alice, bob = users(root, rs)
    up = 'kollega_relay_federation_peer_up{peer="stockholm.test"}'
    depth = 'kollega_relay_federation_outbox_entries{peer="stockholm.test"}'
    poll(url, lambda s: s.get(up) == 1 and s.get(depth) == 0, "link to stockholm up")
    alice.ok("send", bob.address, "første")
    check([m["text"] for m in receive_until(bob, 1)] == ["første"], "first message")
    rs["stockholm"].stop()
    for t in ("andre", "tredje"):
        alice.ok("send", bob.address, t)  # durable in oslo's outbox
    s = poll(url, lambda s: s.get(up) == 0 and s.get(depth) == 2,
             "stockholm down, two entries queued for it")
    check(s['kollega_relay_federation_outbox_bytes{peer="stockholm.test"}'] > 0, "outbox bytes")
    rs["stockholm"].start()
    check(len(receive_until(bob, 2)) == 2, "the queued messages arrive")
    s = poll(url, lambda s: s.get(up) == 1 and s.get(depth) == 0, "outbox drained, link up")
    check(s["kollega_relay_federation_links"] >= 1, "links counted: %r" % s)
    text = scrape(url)
    check(set(re.findall(r'peer="([^"]*)"', text)) == {"stockholm.test"},
          "peer labels are the configured peers only")
    for secret in ("alice", "bob", "@"):
        check(secret not in text, "%r must not appear in the metrics" % secret)


if __name__ == "__main__":
    main([test_metrics_follow_activity_and_name_nobody, test_metrics_junk_http_and_slow_scrapers,
          test_metrics_off_by_default_json_and_warning,
          test_metrics_federation_peer_state_and_outbox])
