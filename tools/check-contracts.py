#!/usr/bin/env python3
"""Check that every function declared in the headers of the given folders
has a contract comment (what it does, ownership, errors), as the code base
asks of every public function (docs/DESIGN.md).

  tools/check-contracts.py DIR...      exit 0: clean; 1: problems (listed)

A declaration is covered by the comment that ends on the line right above
it, or by a comment on its own last line; a comment may cover a small group
of related declarations written on consecutive lines (at most 8, no blank
line between them). What the covering comment must say:
  - something at all (an empty comment is none);
  - for a function returning int: its errors or that it cannot fail
    (a KL_E* code, "error", "fail", "-1", "0 or ...", "never", "1 if" ...);
  - for a function returning a pointer, or with an out-pointer-to-pointer
    parameter: who owns what (free, owned, caller, malloc'd, borrowed,
    valid until, lives, points into, static, copied, NULL ...);
  - either may be said by reference: a comment that names another kl_
    function ("as kl_x", "kl_x when ...") or says "same" takes its contract.
Headers are read as text: preprocessor lines, and struct, union and enum
bodies, are skipped."""
import os
import re
import sys

GROUP_MAX = 8
ERRORS = re.compile(r"KL_E[A-Z]+|error|fail|-1\b|\b0 or\b|\b0,|never|nonzero|non-zero|negative|"
                    r"cannot|returns? 0\b|1 if|0 if|1 while|else 0|otherwise|whether|boolean|\b1 \(|count|number",
                    re.IGNORECASE)
OWNERSHIP = re.compile(r"free|own|caller|malloc|borrow|valid|live|point|static|cop(y|ies|ied)|"
                       r"release|wipe|NULL|kept|lifetime|guarded|inside|into",
                       re.IGNORECASE)
DECL = re.compile(r"^(?P<ret>[A-Za-z_][\w\s\*]*?[\s\*])(?P<name>[A-Za-z_]\w*)\s*\((?P<args>.*)\)"
                  r"\s*(__attribute__\s*\(\(.*\)\))?\s*$", re.DOTALL)


def strip_comments(text):
    """The text with comments blanked (newlines kept) and the comments as
    (first line, last line, body) triples (1-based)."""
    out, comments, i, line = [], [], 0, 1
    while i < len(text):
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = len(text) if j < 0 else j + 2
            body = text[i:j]
            comments.append((line, line + body.count("\n"), body))
            out.append("".join("\n" if c == "\n" else " " for c in body))
            line += body.count("\n")
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            comments.append((line, line, text[i:j]))
            out.append(" " * (j - i))
            i = j
        else:
            if text[i] == "\n":
                line += 1
            out.append(text[i])
            i += 1
    return "".join(out), comments


def declarations(code):
    """(first line, last line, statement) of each top-level statement that
    ends in ';' outside braces, preprocessor lines skipped."""
    lines = code.split("\n")
    for k, l in enumerate(lines):
        if l.lstrip().startswith("#"):
            lines[k] = ""
            # a continued macro
            while lines[k].endswith("\\") and k + 1 < len(lines):
                k += 1
                lines[k] = ""
    stmts, depth, cur, start = [], 0, [], None
    for ln, l in enumerate(lines, 1):
        for ch in l:
            if ch == "{":
                depth += 1
                cur = []
                start = None
                continue
            if ch == "}":
                depth -= 1
                continue
            if depth > 0:
                continue
            if start is None and not ch.isspace():
                start = ln
            if ch == ";":
                if start is not None:
                    stmts.append((start, ln, "".join(cur).strip()))
                cur, start = [], None
                continue
            cur.append(ch)
        if depth == 0 and start is not None:
            cur.append("\n")
    return stmts


def check_file(path, shown):
    with open(path, errors="replace") as f:
        text = f.read()
    code, comments = strip_comments(text)
    ends = {c[1]: c for c in comments}
    blank = [l.strip() == "" for l in text.split("\n")]
    problems = []
    prev = None  # (last line, covering comment, group size) of the last declaration
    for first, last, stmt in declarations(code):
        if stmt.startswith(("typedef", "extern \"C\"")):
            prev = None
            continue
        m = DECL.match(" ".join(stmt.split()))
        if not m or "=" in m.group("ret") or m.group("ret").strip() in ("return", "else"):
            prev = None
            continue
        name, ret, args = m.group("name"), m.group("ret"), m.group("args")
        cover = None
        trailing = [c for c in comments if c[0] == last and c[1] == last]
        if first - 1 in ends and not blank[first - 2]:
            cover, size = ends[first - 1], 1
        elif prev and prev[0] == first - 1 and prev[1] is not None and prev[2] < GROUP_MAX:
            cover, size = prev[1], prev[2] + 1
        elif trailing:
            cover, size = trailing[0], 1
        else:
            size = 1
        prev = (last, cover, size) if cover else None
        where = "%s:%d: %s" % (shown, first, name)
        if cover is None:
            problems.append(where + " has no contract comment")
            continue
        body = cover[2].strip("/* \n")
        by_ref = re.search(r"\bsame\b", body, re.IGNORECASE) or \
            any(f != name for f in re.findall(r"\bkl_\w+", body))
        if len(body) < 8:
            problems.append(where + ": its comment says nothing")
            continue
        if re.match(r"(static\s+|extern\s+|const\s+)*int\b", ret.strip()) and "*" not in ret \
                and not ERRORS.search(body) and not by_ref:
            problems.append(where + ": its comment names no error (or that it cannot fail)")
        if ("*" in ret or "**" in args) and not OWNERSHIP.search(body) and not by_ref:
            problems.append(where + ": its comment says nothing of ownership")
    return problems


def main():
    dirs = sys.argv[1:]
    if not dirs or any(d.startswith("-") for d in dirs):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    problems = []
    for d in dirs:
        if not os.path.isdir(d):
            print("check-contracts: no folder %s" % d, file=sys.stderr)
            return 2
        for dirpath, _, names in sorted(os.walk(d)):
            for n in sorted(names):
                if n.endswith((".h", ".h.in")):
                    p = os.path.join(dirpath, n)
                    problems += check_file(p, os.path.normpath(p))
    for p in problems:
        print(p)
    if problems:
        print("check-contracts: %d function(s) without a full contract comment" % len(problems),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
