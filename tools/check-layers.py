#!/usr/bin/env python3
"""Check that every #include follows the layering of the code base
(docs/DESIGN.md "Layout"): which component may include which, and which
system libraries each component may use directly.

  tools/check-layers.py [--root DIR]      exit 0: clean; 1: violations (listed)

Components are folders; the relay's are its layers, each of which may use
the layers below it (an *_int.h header is private to its own folder).
cmdline/ (the JSON writer and --version) is for the command lines only.
tests/ may include the headers of every component but never an *_int.h
(a test goes through a header meant for it), and any system header.
A quoted include is resolved the way the build does (the including file's
folder, then include/, the component's own search folders, then the top of
the tree, as in "cmdline/json.h"; generated headers such as *.pb-c.h and
kollega/version.h are skipped); the component of the header it finds must
be one the including component may use. Angle-bracket includes of the
libraries below are allowed only in the components listed for them.

protobuf-c stays behind kl_wire_* (include/kollega/wire.h) and the client's
request modules (client/rpc.h): no public header and no client command
(client/cmd_*, cli, main) includes a generated *.pb-c.h or names a generated
symbol (Kollega__..., KOLLEGA__..., kollega__...). A public header may
declare a generated struct only opaquely (typedef struct Kollega__X kl_x_t;)."""
import os
import re
import sys

# The relay's layers, top to bottom (docs/DESIGN.md "Relay layers"): each
# may include its own headers and those of the layers below it.
RELAY_LAYERS = ["relay/cli", "relay/net", "relay/fed", "relay/core", "relay/jobs",
                "relay/storage/sqlite", "relay/storage", "relay/base"]

# component -> components whose headers it may include
MAY_USE = {
    "include": {"include"},
    "proto": {"proto", "include"},
    "cmdline": {"cmdline"},
    "client": {"client", "include", "cmdline"},
    "tools/bench": {"tools/bench", "include", "cmdline"},
    "tools/mqtt-bench": {"tools/mqtt-bench", "tools/bench"},
}
for i, layer in enumerate(RELAY_LAYERS):
    below = set(RELAY_LAYERS[i:])
    if layer != "relay/storage/sqlite":
        below.discard("relay/storage/sqlite")  # the backend is reached through storage/
    MAY_USE[layer] = below | {"include"}
# The command lines' library: the relay's operator commands, and its log
# (base/diag.c writes JSON log lines with the same JSON writer).
MAY_USE["relay/cli"].add("cmdline")
MAY_USE["relay/base"].add("cmdline")
# Tests use every component's headers (their own fixtures too), and no
# *_int.h of another folder (the check below); system headers freely: a
# test may reach below an interface on purpose (a deterministic RNG in
# libsodium, a damaged sqlite file).
MAY_USE["tests"] = set(MAY_USE) | {"tests"}
# include directories a component's build adds beyond its own and include/
SEARCH = {"tools/mqtt-bench": ["tools/bench"],
          "tests": ["relay", "client", "proto", "tools/bench"]}
SEARCH.update({layer: ["relay"] for layer in RELAY_LAYERS})
# system header -> (components that may include it, why)
SYSTEM = {
    "sodium.h": ({"proto"}, "libsodium is used through kollega/crypto.h"),
    "sqlite3.h": ({"relay/storage/sqlite", "client"},
                  "the relay's sqlite stays in its storage backend"),
    "uv.h": ({"relay/cli", "relay/net", "relay/fed", "relay/jobs", "relay/base", "tools/bench"},
             "request handling and storage do no I/O of their own"),
    "protobuf-c/protobuf-c.h": ({"proto", "relay/cli", "relay/net", "relay/fed", "relay/core",
                                 "relay/jobs", "relay/storage", "relay/storage/sqlite",
                                 "relay/base", "client", "tools/bench"}, ""),
}
GENERATED = re.compile(r"(^|/)[a-z0-9_]+\.pb-c\.h$|^kollega/version\.h$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# Files that see no protobuf-c code (module docstring), and what they use instead.
NO_PROTOBUF = [(re.compile(r"^include/"), "public headers keep it behind kl_wire_*"),
               (re.compile(r"^client/(cmd_[^/]*|cli|main)\.[ch]$"),
                "client commands talk to the relay through rpc.h")]
PROTOBUF_HEADER = re.compile(r"(^|/)[a-z0-9_]+\.pb-c\.h$")
PROTOBUF_NAME = re.compile(r"\b(Kollega__|KOLLEGA__|kollega__)\w*")
OPAQUE_DECL = re.compile(r"^\s*typedef\s+struct\s+Kollega__\w+\s+kl_\w+_t\s*;\s*$")


def component(rel):
    for c in sorted(MAY_USE, key=len, reverse=True):
        if rel == c or rel.startswith(c + "/"):
            return c
    return None


def system_scope(rel):
    """The scope names a file belongs to for SYSTEM rules."""
    c = component(rel)
    return {c} if c else set()


def no_protobuf_rule(rel):
    for pattern, why in NO_PROTOBUF:
        if pattern.search(rel):
            return why
    return None


def check_protobuf(rel, lineno, line, why):
    """A problem if line of rel (a file under NO_PROTOBUF) uses protobuf-c code."""
    m = INCLUDE.match(line)
    if m and PROTOBUF_HEADER.search(m.group(2)):
        return "%s:%d: includes generated %s (%s)" % (rel, lineno, m.group(2), why)
    m = PROTOBUF_NAME.search(line)
    if m and not (rel.startswith("include/") and OPAQUE_DECL.match(line)):
        return "%s:%d: names generated %s (%s)" % (rel, lineno, m.group(0), why)
    return None


def resolve(root, rel, name):
    here = os.path.dirname(rel)
    for d in [here, "include"] + SEARCH.get(component(rel), []) + ["."]:
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def check(root):
    problems = []
    for top in MAY_USE:
        d = os.path.join(root, top)
        if not os.path.isdir(d):
            continue
        for dirpath, _, names in os.walk(d):
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, n), root)
                comp = component(rel)
                if comp != top and comp in MAY_USE and top != comp:
                    continue  # a nested component is walked on its own
                no_pb = no_protobuf_rule(rel)
                with open(os.path.join(root, rel), errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        problem = no_pb and check_protobuf(rel, lineno, line, no_pb)
                        if problem:
                            problems.append(problem)
                            continue
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        kind, name = m.groups()
                        if kind == "<":
                            rule = SYSTEM.get(name)
                            if rule and comp != "tests" and not (system_scope(rel) & rule[0]):
                                problems.append("%s:%d: <%s> is not for %s%s" % (
                                    rel, lineno, name, comp, " (" + rule[1] + ")" if rule[1] else ""))
                            continue
                        if GENERATED.search(name):
                            continue
                        target = resolve(root, rel, name)
                        if target is None:
                            problems.append("%s:%d: \"%s\" is not a header of the tree" % (rel, lineno, name))
                            continue
                        tc = component(target)
                        if tc != comp and target.endswith("_int.h"):
                            problems.append("%s:%d: %s is internal to %s" % (rel, lineno, target, tc))
                        elif tc not in MAY_USE[comp]:
                            problems.append("%s:%d: %s may not include %s (%s)" % (
                                rel, lineno, comp, target, tc or "outside every component"))
    return problems


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if len(sys.argv) == 3 and sys.argv[1] == "--root":
        root = sys.argv[2]
    elif len(sys.argv) != 1:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("check-layers: %d line(s) against the layering" % len(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
