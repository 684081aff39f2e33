/* Shared fixture of test_client_group.c and test_client_group_trust.c:
 * several client identities, each with its own temporary store, that share
 * group ops and bodies directly (no relay). The library
 * kl_test_client_group_fixture (client_group_fixture.c). */
#ifndef KOLLEGA_TEST_CLIENT_GROUP_FIXTURE_H
#define KOLLEGA_TEST_CLIENT_GROUP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "group.h"
#include "identity.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "session.h"
#include "store.h"
#include "store_group.h"
#include "sync.h"
#include "util.h"

#define GRP "#erfa@oslo.test"
#define NP 4

typedef struct party {
    char dir[64];
    char path[128];
    kl_cli_t cli;
    kl_prekey_batch_t batch;
    int next_opk;
    uint64_t next_seq;           /* inbox seq for kl_sync_entry */
} party_t;

typedef struct got {
    int n;
    char text[256];
    char sender[KL_ADDR_MAX + 1];
    char peer[KL_ADDR_MAX + 1];
} got_t;

extern party_t P[NP]; /* alice, bob, carol, dave */

void party_new(party_t *p, const char *address);
void party_free(party_t *p);
int setup(void **state);
int teardown(void **state);

/* The group log as the relay would hold it, kept in a validated state. */
typedef struct log {
    kl_group_t *g;
    uint8_t *ops[16];
    size_t len[16];
    size_t n;
} log_t;

void log_op(log_t *l, party_t *actor, kl_group_opdesc_t d);
kl_group_opdesc_t desc(kl_group_opkind_t kind, const party_t *target);

/* alice creates GRP (policy facilitators) and admits bob and carol. */
void make_group(log_t *l);
void log_free(log_t *l);

/* Give party p the ops it does not have yet (what kl_grp_sync_ops does
 * after validating them). */
void share(const log_t *l, party_t *p);
int on_msg(void *ud, const kl_message_t *m);

/* from's current sender key, at its current position, as the 1:1 body
 * that carries it to `to`. Returns the key_id. */
uint32_t key_body(party_t *from, party_t *to, uint8_t **body, size_t *blen);

/* `to` receives a key body through its inbox; sync.c stores the key. */
void take_key(party_t *to, uint8_t *body, size_t blen);
uint32_t give_key(party_t *from, party_t *to);
void seal(party_t *from, const char *text, uint8_t **body, size_t *blen);

/* to processes entry seq; returns the counters. */
kl_grp_rx_t deliver(party_t *to, uint64_t seq, const uint8_t *body, size_t blen, got_t *g);
size_t retry(party_t *to, got_t *g);

#endif
