"""The layering check (tools/check-layers.py): the tree passes it, and a
deliberately wrong include (or use of generated protobuf-c code where it
does not belong) in a copy of the tree fails it, naming the file, the line
and the rule."""
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
    for d in ("include", "proto", "cmdline", "relay", "client", "tools", "tests"):
        shutil.copytree(os.path.join(SRC, d), os.path.join(tree, d))
    check(run(tree).returncode == 0, "the copy passes before it is changed")
    wrong = [
        ("relay/cli/admin.c", '#include "../../client/contacts.h"',
         "relay/cli/admin.c:1: relay/cli may not include client/contacts.h"),
        ("proto/frame.c", "#include <uv.h>", "proto/frame.c:1: <uv.h> is not for proto"),
        ("relay/core/dispatch.c", "#include <sqlite3.h>",
         "relay/core/dispatch.c:1: <sqlite3.h> is not for relay/core"),
        ("relay/core/dispatch_group.c", '#include "fed/fed.h"',
         "relay/core/dispatch_group.c:1: relay/core may not include relay/fed/fed.h"),
        ("relay/jobs/jobs.c", '#include "storage/sqlite/storage_sqlite.h"',
         "relay/jobs/jobs.c:1: relay/jobs may not include relay/storage/sqlite/storage_sqlite.h"),
        ("relay/net/conn.c", '#include "fed/fed_int.h"',
         "relay/net/conn.c:1: relay/fed/fed_int.h is internal to relay/fed"),
        ("client/util.c", '#include "../relay/base/diag.h"',
         "client/util.c:1: client may not include relay/base/diag.h"),
        ("proto/group.c", '#include "cmdline/json.h"',
         "proto/group.c:1: proto may not include cmdline/json.h (cmdline)"),
        ("relay/core/dispatch_channel.c", '#include "cmdline/json.h"',
         "relay/core/dispatch_channel.c:1: relay/core may not include cmdline/json.h (cmdline)"),
        ("tests/unit/test_fed.c", '#include "fed/fed_int.h"',
         "tests/unit/test_fed.c:1: relay/fed/fed_int.h is internal to relay/fed"),
        ("tests/unit/test_client_group.c", '#include "store_int.h"',
         "tests/unit/test_client_group.c:1: client/store_int.h is internal to client"),
        # protobuf-c stays behind kl_wire_* and the client's rpc.h.
        ("include/kollega/wire.h", '#include "relay.pb-c.h"',
         "include/kollega/wire.h:1: includes generated relay.pb-c.h (public headers keep it "
         "behind kl_wire_*)"),
        ("include/kollega/group.h", "typedef Kollega__Group__V1__Op kl_group_op_t;",
         "include/kollega/group.h:1: names generated Kollega__Group__V1__Op (public headers "
         "keep it behind kl_wire_*)"),
        ("client/cmd_send.c", "#define QUOTA KOLLEGA__RELAY__V1__ERROR_CODE__QUOTA_EXCEEDED",
         "client/cmd_send.c:1: names generated KOLLEGA__RELAY__V1__ERROR_CODE__QUOTA_EXCEEDED "
         "(client commands talk to the relay through rpc.h)"),
        ("client/cli.c", '#include "relay.pb-c.h"',
         "client/cli.c:1: includes generated relay.pb-c.h (client commands talk to the relay "
         "through rpc.h)"),
    ]
    for path, line, _ in wrong:
        add_line(os.path.join(tree, path), line)
    r = run(tree)
    check(r.returncode == 1, "check-layers with wrong includes: rc %d" % r.returncode)
    for _, _, want in wrong:
        check(want in r.stdout, "missing %r in:\n%s" % (want, r.stdout))
    check(len(r.stdout.splitlines()) == len(wrong), "exactly the wrong includes:\n%s" % r.stdout)


if __name__ == "__main__":
    main([test_tree_follows_the_layers, test_wrong_includes_fail])
