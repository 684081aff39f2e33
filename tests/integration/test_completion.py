"""Bash completion (packaging/bash-completion) offers exactly the commands,
subcommands and options that the binaries' --help texts list: a command or
option added to kollega or kollega-relay without its completion (or dropped
from the program but not from the completion) fails here."""
import os
import re
import subprocess

from kl import BIN, check, main

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
SCRIPTS = os.path.join(SRC, "packaging", "bash-completion")

# Drive a completion function the way bash does for the line typed so far
# (cursor at its end): COMP_LINE/COMP_POINT, and COMP_WORDS/COMP_CWORD split
# at blanks (bash splits at @ : = too; the functions read COMP_LINE for that).
DRIVER = r'''
source "$1" || exit 3
complete -p "$2" | grep -q -- "-F $3 $2\$" || { echo "no complete -F $3 $2" >&2; exit 3; }
COMP_LINE=$4
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ -z $COMP_LINE || $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMPREPLY=()
"$3"
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(prog, line):
    func = "_" + prog.replace("-", "_")
    r = subprocess.run(["bash", "-c", DRIVER, "bash", os.path.join(SCRIPTS, prog), prog, func,
                        prog + " " + line], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "completing %r: rc %d %s" % (line, r.returncode, r.stderr))
    return set(w for w in r.stdout.split("\n") if w)


def help_text(prog, *args):
    r = subprocess.run([os.path.join(BIN, prog)] + list(args) + ["--help"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "%s %s --help exited %d" % (prog, " ".join(args), r.returncode))
    return r.stdout


def flags(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))


def section(text, start, end_re):
    """The lines after the line `start` up to the first matching end_re."""
    lines = text.split("\n")
    i = lines.index(start) + 1
    out = []
    while i < len(lines) and not re.match(end_re, lines[i]):
        out.append(lines[i])
        i += 1
    return out


def offered_below(prog, path):
    """Every option completed for path and the subcommands below it."""
    got = set()
    pending = [list(path)]
    while pending:
        p = pending.pop()
        got |= complete(prog, " ".join(p + ["--"]))
        for s in complete(prog, " ".join(p + [""])):
            pending.append(p + [s])
    return got


def check_tree(prog, path, subs_of, mentioned_only=()):
    """Subcommands and options offered below `path` match `prog path --help`:
    subs_of(help) gives the subcommands the help lists under path. Options
    in the help that belong to another command (mentioned_only) are left out."""
    text = help_text(prog, *path)
    line = " ".join(path) + " "
    subs = subs_of(text, path)
    offered = complete(prog, line)
    check(offered == set(subs), "%s %s<TAB> offers %s, --help lists %s"
          % (prog, line, sorted(offered), sorted(subs)))
    # Options offered anywhere below path, against those its help names.
    got = offered_below(prog, path)
    want = flags(text) - set(mentioned_only)
    check(want <= got, "%s %s: --help names %s, not completed" % (prog, line, sorted(want - got)))
    extra = got - want - {"--home", "--json", "--help"}
    check(not extra, "%s %s: completes %s, which --help does not name" % (prog, line, sorted(extra)))


def relay_subs(text, path):
    if not path:
        return [re.match(r"  (\w+)", l).group(1) for l in section(text, "commands:", r"\S")]
    return set(re.findall(r"kollega-relay %s ([a-z]+)\b" % " ".join(path), text))


def client_subs(text, path):
    if not path:
        cmds = section(text, "Commands:", r"$")
        return set(re.match(r"  ([a-z]+)", l).group(1) for l in cmds if re.match(r"  [a-z]", l))
    return set(re.findall(r"kollega %s ([a-z]+)\b" % " ".join(path), text))


def test_relay_completion(root, relays):
    top = relay_subs(help_text("kollega-relay"), [])
    check("serve" in top and "peer" in top, "kollega-relay --help lists %s" % top)
    check(complete("kollega-relay", "") == set(top), "kollega-relay <TAB>: %s"
          % sorted(complete("kollega-relay", "")))
    check(complete("kollega-relay", "--") == {"--help", "--version"}, "kollega-relay --<TAB>")
    for cmd in top:
        # peer's help mentions serve's --federation-listen (the peer's port).
        check_tree("kollega-relay", [cmd], relay_subs,
                   ("--federation-listen",) if cmd == "peer" else ())
    check(complete("kollega-relay", "serve --sync ") == {"full", "normal"}, "--sync values")
    check(complete("kollega-relay", "serve --log-level ") == {"debug", "info", "warn", "error"},
          "--log-level values")
    # Option values are not taken for commands, in either form.
    check(complete("kollega-relay", "peer --data /x ") == {"add", "list", "remove"},
          "peer --data /x <TAB>")
    check(complete("kollega-relay", "peer --data=/x ") == {"add", "list", "remove"},
          "peer --data=/x <TAB>")


def test_client_completion(root, relays):
    text = help_text("kollega")
    top = client_subs(text, [])
    check({"init", "send", "group", "channel"} <= top, "kollega --help lists %s" % sorted(top))
    check(complete("kollega", "") == top, "kollega <TAB>: %s" % sorted(complete("kollega", "")))
    check(complete("kollega", "--") == {"--home", "--json", "--help", "--version"},
          "kollega --<TAB>: %s" % sorted(complete("kollega", "--")))
    missing = flags(text) - offered_below("kollega", [])
    check(not missing, "kollega --help names %s, not completed" % sorted(missing))
    for cmd in sorted(top):
        check_tree("kollega", [cmd], client_subs)
    chan = help_text("kollega", "channel")
    for sub in ("publisher", "member"):
        want = client_subs(chan, ["channel", sub])
        check(want and complete("kollega", "channel %s " % sub) == want,
              "kollega channel %s <TAB>: %s" % (sub, sorted(complete("kollega", "channel %s " % sub))))
    check(complete("kollega", "--home /tmp group create --policy ")
          == {"all", "majority", "facilitators"}, "--policy values")
    # Addresses hold an @, which bash also splits words at.
    check(complete("kollega", "group role #erfa lena@oslo.example ") == {"facilitator", "member"},
          "group role values")


if __name__ == "__main__":
    main([test_relay_completion, test_client_completion])
