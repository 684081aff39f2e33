/* relay/storage.h's group functions on a real temporary sqlite file: the
 * row and its ops, the membership rewrite, cursors that follow it, and
 * deletion of entries once every current member has acked them. The ops
 * stored here are opaque bytes (validation is the caller's job). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define INV "inviteinviteinviteinvite"
#define GA "#erfa@oslo.test"
#define NUSERS 6

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_storage_t *st;
    kl_storage_user_t u[NUSERS];
    uint8_t key[NUSERS][32];
    uint8_t head[32];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-sgroup-XXXXXX", &f->st) != 0)
        return -1;
    if (kl_storage_invite_create(f->st, INV, 10, NOW + 1000, NOW) != 0)
        return -1;
    for (int i = 0; i < NUSERS; i++) {
        char h[8];
        snprintf(h, sizeof h, "u%d", i);
        kl_random(f->key[i], 32);
        if (kl_storage_register(f->st, h, f->key[i], INV, NOW, &f->u[i]) != 0)
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kl_storage_close(f->st);
    kl_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* The membership list: users in mem[] are members, in cand[] candidates
 * (indexes into the fixture, -1 terminated). */
static size_t members(const fixture_t *f, const int *mem, const int *cand,
                      kl_storage_gmember_t *m)
{
    size_t n = 0;
    for (; mem && *mem >= 0; mem++, n++) {
        memset(&m[n], 0, sizeof m[n]);
        memcpy(m[n].identity_key, f->key[*mem], 32);
        m[n].user = f->u[*mem].id;
        m[n].state = KL_GSTATE_MEMBER;
        m[n].role = 1;
    }
    for (; cand && *cand >= 0; cand++, n++) {
        memset(&m[n], 0, sizeof m[n]);
        memcpy(m[n].identity_key, f->key[*cand], 32);
        m[n].user = f->u[*cand].id;
        m[n].state = KL_GSTATE_CANDIDATE;
    }
    return n;
}

static int append(fixture_t *f, uint64_t index, const int *mem, const int *cand,
                  kl_storage_group_t *g)
{
    kl_storage_gmember_t m[NUSERS];
    uint8_t op[8] = {'o', 'p', (uint8_t)index};
    size_t n = members(f, mem, cand, m);
    f->head[0] = (uint8_t)(index + 1);
    return kl_storage_group_append_op(f->st, GA, index, op, sizeof op, f->head, 0, m, n, g);
}

static int state_of(fixture_t *f, const kl_storage_group_t *g, int u, uint64_t *join)
{
    kl_storage_gstatus_t gs;
    assert_int_equal(kl_storage_group_status(f->st, g->id, f->u[u].id, &gs), 0);
    if (join)
        *join = gs.join_seq;
    return gs.state;
}

static uint64_t post(fixture_t *f, const kl_storage_group_t *g)
{
    uint64_t seq = 0;
    assert_int_equal(kl_storage_log_append(f->st, g->log, NOW, NOW + 1000, (const uint8_t *)"m", 1,
                                           NULL, &seq),
                     0);
    return seq;
}

static uint64_t entries(fixture_t *f)
{
    kl_storage_stats_t s;
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    return s.entries;
}

static void test_create_append_and_conflicts(void **state)
{
    fixture_t *f = *state;
    kl_storage_group_t g, g2;
    const int m0[] = {0, -1};
    assert_int_equal(kl_storage_group_get(f->st, GA, &g), KL_ENOTFOUND);
    assert_int_equal(append(f, 1, m0, NULL, &g), KL_ENOTFOUND);
    assert_int_equal(append(f, 0, m0, NULL, &g), 0);
    assert_int_equal(g.next_index, 1);
    assert_int_equal(g.head[0], 1);
    assert_int_equal(append(f, 0, m0, NULL, &g2), KL_EEXIST);
    assert_int_equal(append(f, 2, m0, NULL, &g2), KL_ESTATE);
    const int m01[] = {0, 1, -1};
    assert_int_equal(append(f, 1, m01, NULL, &g), 0);
    assert_int_equal(kl_storage_group_get(f->st, GA, &g2), 0);
    assert_int_equal(g2.id, g.id);
    assert_int_equal(g2.next_index, 2);
    assert_int_equal(g2.head[0], 2);
    /* The ops come back in order, from any index. */
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    assert_int_equal(kl_storage_group_ops(f->st, g.id, 0, 10, 100000, &e, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].seq, 0);
    assert_int_equal(e[1].seq, 1);
    assert_int_equal(e[1].body[2], 1);
    assert_false(more);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_group_ops(f->st, g.id, 1, 1, 100000, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].seq, 1);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_group_ops(f->st, g.id, 0, 1, 100000, &e, &n, &more), 0);
    assert_true(more);
    kl_storage_entries_free(e, n);
}

static void test_membership_and_cursors(void **state)
{
    fixture_t *f = *state;
    kl_storage_group_t g;
    uint64_t join = 99, *users = NULL;
    size_t n = 0;
    const int m0[] = {0, -1}, m01[] = {0, 1, -1}, m012[] = {0, 1, 2, -1}, c3[] = {3, -1};
    assert_int_equal(append(f, 0, m0, NULL, &g), 0);
    assert_int_equal(append(f, 1, m01, NULL, &g), 0);
    uint64_t base = entries(f);
    assert_int_equal(post(f, &g), 1);
    assert_int_equal(post(f, &g), 2);
    /* u2 joins after seq 2, u3 asks to join. */
    assert_int_equal(kl_storage_group_get(f->st, GA, &g), 0);
    assert_int_equal(append(f, 2, m012, c3, &g), 0);
    assert_int_equal(state_of(f, &g, 2, &join), KL_GSTATE_MEMBER);
    assert_int_equal(join, 2);
    assert_int_equal(state_of(f, &g, 0, &join), KL_GSTATE_MEMBER);
    assert_int_equal(join, 0);
    assert_int_equal(state_of(f, &g, 3, NULL), KL_GSTATE_CANDIDATE);
    assert_int_equal(state_of(f, &g, 4, NULL), KL_GSTATE_NONE);
    /* Push lists: members, or members and candidates. */
    assert_int_equal(kl_storage_group_users(f->st, g.id, 0, &users, &n), 0);
    assert_int_equal(n, 3);
    free(users);
    assert_int_equal(kl_storage_group_users(f->st, g.id, 1, &users, &n), 0);
    assert_int_equal(n, 4);
    free(users);
    /* Cursors: u2 has one at 2 already, u3 (candidate) has none. */
    assert_int_equal(kl_storage_log_ack(f->st, g.log, f->u[3].id, 2), KL_ENOTFOUND);
    assert_int_equal(kl_storage_log_ack(f->st, g.log, f->u[0].id, 2), 0);
    assert_int_equal(entries(f), base + 2);
    assert_int_equal(kl_storage_log_ack(f->st, g.log, f->u[1].id, 1), 0);
    assert_int_equal(entries(f), base + 1);
    /* u1 leaves holding seq 2: its cursor goes, and with it what it held. */
    assert_int_equal(kl_storage_group_get(f->st, GA, &g), 0);
    const int m02[] = {0, 2, -1};
    assert_int_equal(append(f, 3, m02, c3, &g), 0);
    assert_int_equal(state_of(f, &g, 1, NULL), KL_GSTATE_FORMER);
    assert_int_equal(kl_storage_log_ack(f->st, g.log, f->u[1].id, 2), KL_ENOTFOUND);
    assert_int_equal(entries(f), base);
    /* The refused candidate becomes former too; list and push lists drop it. */
    assert_int_equal(kl_storage_group_get(f->st, GA, &g), 0);
    assert_int_equal(append(f, 4, m02, NULL, &g), 0);
    assert_int_equal(state_of(f, &g, 3, NULL), KL_GSTATE_FORMER);
    assert_int_equal(kl_storage_group_users(f->st, g.id, 1, &users, &n), 0);
    assert_int_equal(n, 2);
    free(users);
    /* group_list: u0 member, u1 nothing. */
    kl_storage_ginfo_t *gi = NULL;
    assert_int_equal(kl_storage_group_list(f->st, f->u[0].id, &gi, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(gi[0].address, GA);
    assert_true(gi[0].member);
    assert_int_equal(gi[0].next_index, 5);
    assert_int_equal(gi[0].last_seq, 2);
    free(gi);
    assert_int_equal(kl_storage_group_list(f->st, f->u[1].id, &gi, &n), 0);
    assert_int_equal(n, 0);
    assert_null(gi);
}

/* A member named by a key that is not its relay account's (user 0): no
 * cursor, no push; once it is bound to a user it gets one at that time. */
static void test_unbound_member(void **state)
{
    fixture_t *f = *state;
    kl_storage_group_t g;
    kl_storage_gmember_t m[2];
    uint64_t *users = NULL, join = 0;
    size_t n = 0;
    const int m0[] = {0, -1};
    assert_int_equal(append(f, 0, m0, NULL, &g), 0);
    members(f, (const int[]){0, 4, -1}, NULL, m);
    m[1].user = 0;
    f->head[0] = 9;
    assert_int_equal(kl_storage_group_append_op(f->st, GA, 1, (const uint8_t *)"x", 1, f->head,
                                                3, m, 2, &g),
                     0);
    assert_int_equal(g.retention_days, 3);
    assert_int_equal(kl_storage_group_users(f->st, g.id, 1, &users, &n), 0);
    assert_int_equal(n, 1);
    free(users);
    assert_int_equal(post(f, &g), 1);
    assert_int_equal(kl_storage_group_get(f->st, GA, &g), 0);
    assert_int_equal(g.last_seq, 1);
    m[1].user = f->u[4].id;
    assert_int_equal(kl_storage_group_append_op(f->st, GA, 2, (const uint8_t *)"y", 1, f->head,
                                                3, m, 2, &g),
                     0);
    assert_int_equal(state_of(f, &g, 4, &join), KL_GSTATE_MEMBER);
    assert_int_equal(join, 1);
    assert_int_equal(kl_storage_log_ack(f->st, g.log, f->u[4].id, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_append_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_and_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_member, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
