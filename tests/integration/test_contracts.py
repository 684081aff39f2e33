"""The contract-comment check (tools/check-contracts.py): every function of
libkollega's headers (include/), of the command lines' library (cmdline/),
of the client (client/), of kollega-bench (tools/bench/) and of the relay
(relay/) has a contract comment, and a copy of a header with a declaration left bare, or with a
comment that names no error, fails it, naming the file, the line and the
function."""
import os
import shutil
import subprocess
import sys

from kl import check, main

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
TOOL = os.path.join(SRC, "tools", "check-contracts.py")
def run(cwd, *dirs):
    return subprocess.run([sys.executable, TOOL] + list(dirs), cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_headers_have_contracts(root, relays):
    dirs = ["include", "cmdline", "client", "tools/bench", "relay"]
    r = run(SRC, *dirs)
    check(r.returncode == 0,
          "check-contracts on %s: rc %d\n%s%s" % (", ".join(dirs), r.returncode, r.stdout,
                                                  r.stderr))


def test_bare_declarations_fail(root, relays):
    tree = os.path.join(root, "tree")
    shutil.copytree(os.path.join(SRC, "include"), os.path.join(tree, "include"))
    check(run(tree, "include").returncode in (0, 1), "the copy can be checked")
    path = os.path.join(tree, "include", "kollega", "hkdf.h")
    with open(path) as f:
        text = f.read()
    n = text[:text.index("#endif")].count("\n") + 1
    text = text.replace("#endif", "int kl_bare(void);\n\n/* Hashes things. */\n"
                        "int kl_no_errors(const uint8_t *p);\n\n"
                        "/* Hashes things; 0 or KL_EINVAL. */\nint kl_fine(const uint8_t *p);\n"
                        "#endif")
    with open(path, "w") as f:
        f.write(text)
    r = run(tree, "include")
    check(r.returncode == 1, "check-contracts with bare declarations: rc %d" % r.returncode)
    want = ["include/kollega/hkdf.h:%d: kl_bare has no contract comment" % n,
            "include/kollega/hkdf.h:%d: kl_no_errors: its comment names no error" % (n + 3)]
    for w in want:
        check(w in r.stdout, "missing %r in:\n%s" % (w, r.stdout))
    check("kl_fine" not in r.stdout, "a declaration with its contract passes:\n%s" % r.stdout)


if __name__ == "__main__":
    main([test_headers_have_contracts, test_bare_declarations_fail])
