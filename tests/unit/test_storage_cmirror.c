/* relay/storage_cmirror.h on a real temporary sqlite file: a mirror's
 * placeholder row that its first op fills, the watermark and active flag,
 * the list of a peer's mirrors, and (home side) which peers subscribe to a
 * channel. */
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
#include "storage/storage_cmirror.h"
#include "storage/storage_gfed.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define INV "inviteinviteinviteinvite"
#define REMOTE "!news@oslo.test"
#define REMOTE2 "!jobs@oslo.test"
#define OTHER "!news@riga.test"
#define LOCAL "!local@stockholm.test"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_storage_t *st;
    kl_storage_user_t u[2];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    uint8_t key[32];
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-scmirror-XXXXXX", &f->st) != 0 ||
        kl_storage_invite_create(f->st, INV, 10, NOW + 1000, NOW) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        char h[8];
        snprintf(h, sizeof h, "u%d", i);
        kl_random(key, 32);
        if (kl_storage_register(f->st, h, key, INV, NOW, &f->u[i]) != 0)
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

static void test_placeholder_then_first_op(void **state)
{
    fixture_t *f = *state;
    kl_storage_channel_t c, c2;
    kl_storage_cmirror_t m;
    uint8_t head[32] = {1};
    const uint8_t op[] = "create";
    assert_int_equal(kl_storage_cmirror_get(f->st, REMOTE, &m), KL_ENOTFOUND);
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE, &c), 0);
    assert_int_equal(c.next_index, 0);
    /* Ensuring again finds the same row. */
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE, &c2), 0);
    assert_int_equal(c2.id, c.id);
    assert_int_equal(kl_storage_cmirror_get(f->st, REMOTE, &m), 0);
    assert_int_equal(m.home_seq, 0);
    assert_true(m.active);
    assert_int_equal(m.n_subs, 0);
    /* The placeholder takes op 0 (a real channel would say EEXIST). */
    assert_int_equal(kl_storage_channel_append_op(f->st, REMOTE, 0, op, sizeof op, head, &c2), 0);
    assert_int_equal(c2.id, c.id);
    assert_int_equal(c2.next_index, 1);
    assert_int_equal(kl_storage_channel_append_op(f->st, REMOTE, 0, op, sizeof op, head, NULL),
                     KL_EEXIST);
    /* A channel of this relay is not a mirror. */
    assert_int_equal(kl_storage_channel_append_op(f->st, LOCAL, 0, op, sizeof op, head, NULL), 0);
    assert_int_equal(kl_storage_cmirror_get(f->st, LOCAL, &m), KL_ENOTFOUND);
    assert_int_equal(kl_storage_cmirror_ensure(f->st, LOCAL, &c2), KL_EEXIST);
}

static void test_watermark_active_subscribers(void **state)
{
    fixture_t *f = *state;
    kl_storage_channel_t c;
    kl_storage_cmirror_t m;
    uint64_t cur;
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE, &c), 0);
    assert_int_equal(kl_storage_channel_subscribe(f->st, &c, f->u[0].id, 0, NOW, &cur), 0);
    assert_int_equal(kl_storage_channel_subscribe(f->st, &c, f->u[1].id, 0, NOW, &cur), 0);
    assert_int_equal(kl_storage_cmirror_set(f->st, c.id, 42, 1), 0);
    assert_int_equal(kl_storage_cmirror_get(f->st, REMOTE, &m), 0);
    assert_int_equal(m.home_seq, 42);
    assert_int_equal(m.n_subs, 2);
    assert_int_equal(kl_storage_channel_unsubscribe(f->st, &c, f->u[0].id), 0);
    assert_int_equal(kl_storage_cmirror_set(f->st, c.id, 43, 0), 0);
    assert_int_equal(kl_storage_cmirror_get(f->st, REMOTE, &m), 0);
    assert_int_equal(m.n_subs, 1);
    assert_false(m.active);
    /* Ensuring an inactive mirror makes it active, watermark kept. */
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE, &c), 0);
    assert_int_equal(kl_storage_cmirror_get(f->st, REMOTE, &m), 0);
    assert_true(m.active);
    assert_int_equal(m.home_seq, 43);
}

static void test_list_by_relay(void **state)
{
    fixture_t *f = *state;
    kl_storage_channel_t c;
    char *names = NULL;
    size_t len = 0, n = 0;
    assert_int_equal(kl_storage_cmirror_list(f->st, "oslo.test", &names, &len, &n), 0);
    assert_null(names);
    assert_int_equal(n, 0);
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE, &c), 0);
    assert_int_equal(kl_storage_cmirror_ensure(f->st, REMOTE2, &c), 0);
    assert_int_equal(kl_storage_cmirror_ensure(f->st, OTHER, &c), 0);
    assert_int_equal(kl_storage_cmirror_set(f->st, c.id, 0, 0), 0); /* riga's: inactive */
    assert_int_equal(kl_storage_cmirror_list(f->st, "oslo.test", &names, &len, &n), 0);
    assert_int_equal(n, 2);
    assert_true((strcmp(names, REMOTE) == 0 && strcmp(names + strlen(names) + 1, REMOTE2) == 0) ||
                (strcmp(names, REMOTE2) == 0 && strcmp(names + strlen(names) + 1, REMOTE) == 0));
    assert_int_equal(len, strlen(REMOTE) + strlen(REMOTE2) + 2);
    free(names);
    /* A relay whose name only matches as a LIKE pattern is not listed. */
    assert_int_equal(kl_storage_cmirror_list(f->st, "oslo_test", &names, &len, &n), 0);
    assert_int_equal(n, 0);
    assert_null(names);
    assert_int_equal(kl_storage_cmirror_list(f->st, "riga.test", &names, &len, &n), 0);
    assert_int_equal(n, 0);
}

static void test_home_relay_subscribers(void **state)
{
    fixture_t *f = *state;
    kl_storage_channel_t c;
    uint8_t head[32] = {2}, k1[32], k2[32];
    const uint8_t op[] = "create";
    uint64_t sto = 0, riga = 0, remote_user = 0, cur;
    char *names = NULL;
    size_t len = 0, n = 0;
    kl_random(k1, 32);
    kl_random(k2, 32);
    assert_int_equal(kl_storage_channel_append_op(f->st, LOCAL, 0, op, sizeof op, head, &c), 0);
    assert_int_equal(kl_storage_shadow_user(f->st, "@stockholm.test", k1, 1, &sto), 0);
    assert_int_equal(kl_storage_shadow_user(f->st, "@riga.test", k2, 1, &riga), 0);
    assert_int_equal(kl_storage_shadow_user(f->st, "kari@riga.test", k2, 1, &remote_user), 0);
    assert_int_equal(kl_storage_channel_relays(f->st, c.id, &names, &len, &n), 0);
    assert_int_equal(n, 0);
    assert_null(names);
    uint64_t who[] = {f->u[0].id, sto, riga, remote_user};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(kl_storage_channel_subscribe(f->st, &c, who[i], 0, NOW, &cur), 0);
    assert_int_equal(kl_storage_channel_relays(f->st, c.id, &names, &len, &n), 0);
    /* The two relays (names without '@'), not the local or remote user. */
    assert_int_equal(n, 2);
    assert_true((strcmp(names, "stockholm.test") == 0 &&
                 strcmp(names + strlen(names) + 1, "riga.test") == 0) ||
                (strcmp(names, "riga.test") == 0 &&
                 strcmp(names + strlen(names) + 1, "stockholm.test") == 0));
    free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_placeholder_then_first_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watermark_active_subscribers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_by_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_relay_subscribers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
