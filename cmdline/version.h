/* `--version` of every command line (kollega, kollega-relay, kollega-bench). */
#ifndef KOLLEGA_CMDLINE_VERSION_H
#define KOLLEGA_CMDLINE_VERSION_H

/* `PROG --version [--json]`: when argv[1..] is --version, alone or with
 * --json (in either order), prints "PROG VERSION" (or
 * {"program":PROG,"version":VERSION}) on stdout and returns 0 (the exit
 * status), or prints "PROG: out of memory" on stderr and returns 1. Anything
 * else is not a version request: returns -1, prints nothing, and the caller
 * parses argv as usual. prog and argv are only read. */
int kl_version_cli(const char *prog, int argc, char **argv);

#endif
