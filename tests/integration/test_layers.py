"""The layering check (tools/check-layers.py): the tree passes it, and a
deliberately wrong include in a copy of the tree fails it, naming the file,
the line and the rule."""
import os
import shutil
import subprocess
import sys

from kl import check, main

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
TOOL = os.path.join(SRC, "tools", "check-layers.py")


def run(root=None):
    args = [sys.executable, TOOL] + (["--root", root] if root else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_tree_follows_the_layers(root, relays):
    r = run()
    check(r.returncode == 0, "check-layers on the tree: rc %d\n%s%s" % (r.returncode, r.stdout,
                                                                         r.stderr))


def add_line(path, line):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(line + "\n" + text)


def test_wrong_includes_fail(root, relays):
    tree = os.path.join(root, "tree")
    for d in ("include", "proto", "relay", "client", "tools"):
        shutil.copytree(os.path.join(SRC, d), os.path.join(tree, d))
    check(run(tree).returncode == 0, "the copy passes before it is changed")
    add_line(os.path.join(tree, "relay", "admin.c"), '#include "../client/contacts.h"')
    add_line(os.path.join(tree, "proto", "frame.c"), "#include <uv.h>")
    add_line(os.path.join(tree, "relay", "dispatch.c"), "#include <sqlite3.h>")
    add_line(os.path.join(tree, "client", "util.c"), '#include "../relay/log.h"')
    r = run(tree)
    check(r.returncode == 1, "check-layers with wrong includes: rc %d" % r.returncode)
    for want in ("relay/admin.c:1: relay may not include client/contacts.h",
                 "proto/frame.c:1: <uv.h> is not for proto",
                 "relay/dispatch.c:1: <sqlite3.h> is not for relay",
                 "client/util.c:1: client may not include relay/log.h"):
        check(want in r.stdout, "missing %r in:\n%s" % (want, r.stdout))
    check(len(r.stdout.splitlines()) == 4, "exactly the four wrong includes:\n%s" % r.stdout)


if __name__ == "__main__":
    main([test_tree_follows_the_layers, test_wrong_includes_fail])
