"""kollega-bench smoke test: each workload runs end to end against a relay it
spawns itself, with tiny numbers, and reports complete JSON with no errors.
This proves the tool works; the numbers themselves are never checked."""
import json
import os
import subprocess

from kl import BIN, check, main

BENCH = os.path.join(BIN, "kollega-bench")
COMMON = ["ack", "delivery"]


def bench(*args, timeout=180):
    r = subprocess.run([BENCH, "--spawn", "--json", "--quiet"] + list(args),
                       capture_output=True, timeout=timeout)
    out = r.stdout.decode().strip()
    check(r.returncode == 0, "kollega-bench %s exited %d\nstdout: %s\nstderr: %s"
          % (" ".join(args), r.returncode, out, r.stderr.decode()[-3000:]))
    lines = out.splitlines()
    check(len(lines) == 1, "--json prints exactly one line: %r" % out)
    return json.loads(lines[0])


def check_hist(res, key, samples):
    for p in ("p50", "p90", "p99", "max"):
        v = res.get("%s_%s_us" % (key, p))
        check(isinstance(v, (int, float)) and v > 0, "%s_%s_us is a positive number: %r" % (key, p, res))
    check(res["%s_p50_us" % key] <= res["%s_p99_us" % key] <= res["%s_max_us" % key],
          "%s percentiles are ordered: %r" % (key, res))
    check(res["%s_samples" % key] == samples, "%s has %d samples: %r" % (key, samples, res))


def check_server(res):
    check(isinstance(res.get("server_pid"), int) and res["server_pid"] > 0, "relay pid reported: %r" % res)
    check(res.get("server_rss_kb", 0) > 0, "relay RSS read from /proc: %r" % res)


def test_direct(root, relays):
    res = bench("direct", "-P", "2", "-W", "4", "-N", "50")
    check(res["tool"] == "kollega-bench" and res["workload"] == "direct", "workload named: %r" % res)
    check(res["sync"] == "full", "spawned relay is durable (sync=full) by default: %r" % res)
    check((res["pairs"], res["window"], res["body"], res["messages"]) == (2, 4, 256, 50),
          "parameters echoed: %r" % res)
    check(res["errors"] == 0 and res["error_kinds"] == {}, "no errors: %r" % res)
    check(res["sent_ok"] == 50 and res["delivered"] == 50, "every message acknowledged and delivered: %r" % res)
    check(res["throughput"] > 0 and res["elapsed_s"] > 0, "throughput measured: %r" % res)
    for key in COMMON:
        check_hist(res, key, 50)
    check_server(res)


def test_latency(root, relays):
    res = bench("latency", "-P", "2", "-R", "100", "-T", "1")
    check(res["errors"] == 0, "no errors: %r" % res)
    check(res["rate"] == 100 and res["messages"] == 100, "offered rate and count echoed: %r" % res)
    check(res["sent_ok"] == 100 and res["delivered"] == 100, "all delivered: %r" % res)
    for key in COMMON:
        check_hist(res, key, 100)


def test_idle_and_connect(root, relays):
    res = bench("idle", "-C", "20", "-T", "1")
    check(res["errors"] == 0 and res["connects"] == 20, "20 idle connections held: %r" % res)
    # 20 connections may not move the relay's RSS by a whole page, so the
    # per-connection figure is reported only when RSS grew; when it is, it
    # must be consistent with the base.
    if "rss_per_conn_bytes" in res:
        check(res["rss_per_conn_bytes"] > 0 and res["server_rss_base_kb"] > 0,
              "idle reports relay memory per connection: %r" % res)
    check_server(res)
    res = bench("connect", "-C", "4", "-N", "40")
    check(res["errors"] == 0 and res["connects"] == 40, "40 connects: %r" % res)
    check_hist(res, "connect", 40)


def test_group(root, relays):
    # 2 groups of 4, 2 senders each: every message reaches the 3 other
    # members (the relay does not push it back to the sending connection).
    res = bench("group", "-P", "2", "-G", "4", "-S", "2", "-W", "4", "-N", "40")
    check(res["workload"] == "group", "workload named: %r" % res)
    check((res["pairs"], res["group_size"], res["senders"], res["window"], res["messages"])
          == (2, 4, 2, 4, 40), "parameters echoed: %r" % res)
    check(res["errors"] == 0 and res["error_kinds"] == {}, "no errors: %r" % res)
    check(res["sent_ok"] == 40 and res["delivered"] == 120,
          "every message acknowledged once and delivered to G-1 members: %r" % res)
    check(res["duplicates"] == 0, "no duplicate deliveries: %r" % res)
    check(res["deliveries_per_s"] > 0 and res["throughput"] > 0, "rates measured: %r" % res)
    check_hist(res, "ack", 40)
    check_hist(res, "delivery", 120)
    check_server(res)
    r = subprocess.run([BENCH, "--spawn", "group", "-G", "3", "-S", "4"], capture_output=True,
                       timeout=60)
    check(r.returncode == 2 and b"senders" in r.stderr, "more senders than members is a usage error: %r"
          % r.stderr)


def test_broadcast(root, relays):
    # One publisher, S subscribers: every post reaches every subscriber, and
    # the relay stores each post once whatever S is (read from its status).
    per_post = []
    for subs in (2, 8):
        res = bench("broadcast", "-S", str(subs), "-W", "4", "-N", "20")
        check(res["workload"] == "broadcast", "workload named: %r" % res)
        check((res["subscribers"], res["window"], res["messages"]) == (subs, 4, 20),
              "parameters echoed: %r" % res)
        check(res["errors"] == 0 and res["error_kinds"] == {}, "no errors: %r" % res)
        check(res["sent_ok"] == 20 and res["delivered"] == 20 * subs,
              "every post acknowledged once and delivered to every subscriber: %r" % res)
        check(res["duplicates"] == 0, "no duplicate deliveries: %r" % res)
        check(res["deliveries_per_s"] > 0, "delivery rate measured: %r" % res)
        check(res.get("entries_per_post") == 1.0, "one stored entry per post: %r" % res)
        check(res.get("bytes_per_post", 0) > 0, "bytes per post read: %r" % res)
        check_hist(res, "ack", 20)
        check_hist(res, "delivery", 20 * subs)
        check_server(res)
        per_post.append(res["bytes_per_post"])
    check(per_post[0] == per_post[1], "storage per post does not grow with S: %r" % per_post)


def test_direct_cross_relay(root, relays):
    # Two federated relays: senders on one, recipients on the other, so every
    # message goes through the first relay's outbox and the federation link.
    res = bench("--cross-relay", "direct", "-P", "2", "-W", "4", "-N", "40")
    check(res.get("cross_relay") is True, "cross-relay mode reported: %r" % res)
    check(res["errors"] == 0 and res["error_kinds"] == {}, "no errors: %r" % res)
    check(res["sent_ok"] == 40 and res["delivered"] == 40 and res["duplicates"] == 0,
          "every message acknowledged and delivered once across relays: %r" % res)
    for key in COMMON:
        check_hist(res, key, 40)
    check_server(res)
    r = subprocess.run([BENCH, "--spawn", "--cross-relay", "group"], capture_output=True,
                       timeout=60)
    check(r.returncode == 2 and b"--cross-relay" in r.stderr,
          "--cross-relay with another workload is a usage error: %r" % r.stderr)


def test_broadcast_cross_relay(root, relays):
    # The channel, its publisher and the first half of the subscribers on
    # one relay, the other half on a federated second relay that mirrors the
    # channel: every post reaches every subscriber once, and each relay
    # stores each post once whatever the number of its subscribers: with
    # 1,000 subscribers (500 on each relay) as much as with 2.
    per_post = []
    for subs in (2, 1000):
        res = bench("--cross-relay", "broadcast", "-S", str(subs), "-W", "4", "-N", "20")
        check(res.get("cross_relay") is True and res["subscribers"] == subs,
              "cross-relay broadcast reported: %r" % res)
        check(res["errors"] == 0 and res["error_kinds"] == {}, "no errors: %r" % res)
        check(res["sent_ok"] == 20 and res["delivered"] == 20 * subs and res["duplicates"] == 0,
              "every post delivered once to every subscriber on both relays: %r" % res)
        storage = res.get("storage", [])
        check(len(storage) == 2 and storage[0]["relay"] != storage[1]["relay"],
              "storage read on both relays: %r" % res)
        for s in storage:
            check(s["entries_after"] - s["entries_before"] == 20 and s["entries_per_post"] == 1.0,
                  "one stored entry per post on %s: %r" % (s["relay"], res))
            check(s["bytes_per_post"] > 0, "bytes per post read on %s: %r" % (s["relay"], res))
        check(res["entries_per_post"] == storage[0]["entries_per_post"],
              "the top-level figure is the home relay's: %r" % res)
        check_hist(res, "delivery", 20 * subs)
        per_post.append([s["bytes_per_post"] for s in storage])
    check(per_post[0] == per_post[1], "storage per post on each relay does not grow with S: %r"
          % per_post)
    r = subprocess.run([BENCH, "--spawn", "--cross-relay", "broadcast", "-S", "1"],
                       capture_output=True, timeout=60)
    check(r.returncode == 2 and b"-S 2" in r.stderr,
          "cross-relay broadcast with one subscriber is a usage error: %r" % r.stderr)


if __name__ == "__main__":
    main([test_direct, test_latency, test_idle_and_connect, test_group, test_broadcast,
          test_direct_cross_relay, test_broadcast_cross_relay])
