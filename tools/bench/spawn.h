/* --spawn: a kollega-relay of our own on a free loopback port with a
 * temporary data directory, a multi-use invite for the run's users, and
 * cleanup (SIGTERM, wait, remove the directory). */
#ifndef KOLLEGA_BENCH_SPAWN_H
#define KOLLEGA_BENCH_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

#include "kollega/addr.h"

typedef struct kb_relay {
    pid_t pid;
    char bin[4096];
    char dir[256];
    char host[64];
    uint16_t port;
    char name[KL_RELAYNAME_MAX + 1];
    char key[64];                 /* base64url public key */
    int out_fd;                   /* the relay's stdout */
} kb_relay_t;

typedef struct kb_spawn_cfg {
    const char *bin;              /* NULL: kollega-relay next to this binary */
    const char *sync;             /* "full" or "normal" */
    const char *log_level;
    uint64_t idle_timeout_s;
    const char *name;             /* relay name, NULL: bench.local */
    uint16_t fed_port;            /* federation listen port on 127.0.0.1, 0: none */
} kb_spawn_cfg_t;

/* Start the relay; fills pid, dir, host, port, name, key. 0 or a kl_err
 * (with a message on stderr). */
int kb_relay_spawn(kb_relay_t *r, const kb_spawn_cfg_t *cfg);
/* Two relays "bench-a.local" and "bench-b.local", each the other's
 * federation peer (no rate limit on the link), started and waited for
 * until both links are up. On failure both are stopped. 0 or a kl_err. */
int kb_relay_pair_spawn(kb_relay_t *a, kb_relay_t *b, const kb_spawn_cfg_t *cfg);
/* An invite admitting uses registrations, valid one day (`kollega-relay
 * invite` on r's data directory); the code goes to code (cap). 0, or
 * KL_EIO (with a message on stderr) when the command fails or its code does
 * not fit. */
int kb_relay_invite(kb_relay_t *r, uint64_t uses, char *code, size_t cap);
/* The relay's stored entries and their bytes, read with `kollega-relay
 * status --json` while it serves (a read-only look at its database). 0 or
 * KL_EIO. */
int kb_relay_stored(kb_relay_t *r, uint64_t *entries, uint64_t *bytes);
/* SIGTERM, wait (then SIGKILL after 30 s), print the log's tail if the
 * relay did not exit 0, remove the directory unless keep. Returns the
 * relay's exit status (0 clean), or -1 if it had to be killed. */
int kb_relay_stop(kb_relay_t *r, int keep);

#endif
