/* relay/storage_admin.h on real temporary sqlite files: invite ids, list
 * and revoke; user list and remove (the handle retired); reset invites
 * bound to a handle; backup and the check of a backup file. */
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
#include "storage/storage_admin.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define LATER (NOW + 3600000)
#define CODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CODE_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CODE_C "ccccccccccccccccccccccccccccccccccccccccccc"
#define CODE_R "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_storage_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-stadmin-XXXXXX", &f->st) != 0)
        return -1;
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

static void key_of(char c, uint8_t ik[32])
{
    memset(ik, c, 32);
}

static void add_user(kl_storage_t *st, const char *handle, const char *code, kl_storage_user_t *u)
{
    uint8_t ik[32];
    key_of(handle[0], ik);
    assert_int_equal(kl_storage_invite_create(st, code, 1, LATER, NOW), 0);
    assert_int_equal(kl_storage_register(st, handle, ik, code, NOW, u), 0);
    assert_int_equal(u->rekeyed, 0);
}

/* The id the relay shows for code: hex of SHA-256(code)[0..6). */
static void id_of(const char *code, char out[KL_INVITE_ID_LEN + 1])
{
    uint8_t h[32];
    kl_sha256((const uint8_t *)code, strlen(code), h);
    for (int i = 0; i < KL_INVITE_ID_LEN / 2; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_invite_list_shows_active_by_id(void **state)
{
    fixture_t *f = *state;
    kl_storage_invite_info_t *v = NULL;
    size_t n = 0;
    char a[KL_INVITE_ID_LEN + 1], b[KL_INVITE_ID_LEN + 1];
    id_of(CODE_A, a);
    id_of(CODE_B, b);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_A, 3, LATER, NOW), 0);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_B, 1, LATER, NOW + 1), 0);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_C, 1, NOW + 10, NOW + 2), 0);
    /* C has expired by NOW + 10. */
    assert_int_equal(kl_storage_invite_list(f->st, NOW + 10, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, a);
    assert_int_equal(v[0].uses_left, 3);
    assert_int_equal(v[0].created_ms, NOW);
    assert_int_equal(v[0].expires_ms, LATER);
    assert_string_equal(v[0].handle, "");
    assert_string_equal(v[1].id, b);
    free(v);
    /* A used invite counts down, and leaves the list when used up. */
    kl_storage_user_t u;
    uint8_t ik[32];
    key_of('x', ik);
    assert_int_equal(kl_storage_register(f->st, "xena", ik, CODE_B, NOW, &u), 0);
    assert_int_equal(kl_storage_invite_list(f->st, NOW, &v, &n), 0);
    assert_int_equal(n, 2); /* A and C */
    assert_string_equal(v[0].id, a);
    free(v);
}

static void test_invite_revoke(void **state)
{
    fixture_t *f = *state;
    char a[KL_INVITE_ID_LEN + 1];
    kl_storage_user_t u;
    uint8_t ik[32];
    key_of('x', ik);
    id_of(CODE_A, a);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_A, 2, LATER, NOW), 0);
    assert_int_equal(kl_storage_invite_revoke(f->st, "abc", NOW), KL_EINVAL); /* too short */
    assert_int_equal(kl_storage_invite_revoke(f->st, "zzzz", NOW), KL_EINVAL);
    assert_int_equal(kl_storage_invite_revoke(f->st, "0123456789abc", NOW), KL_EINVAL);
    char other[5];
    snprintf(other, sizeof other, "%c%.3s", a[0] == 'f' ? '0' : 'f', a + 1);
    assert_int_equal(kl_storage_invite_revoke(f->st, other, NOW), KL_ENOTFOUND);
    /* An expired invite is not revoked (it is no longer listed either). */
    assert_int_equal(kl_storage_invite_revoke(f->st, a, LATER), KL_ENOTFOUND);
    /* Upper-case prefix of the id works, and the code no longer registers. */
    char up[7];
    for (int i = 0; i < 6; i++)
        up[i] = (char)(a[i] >= 'a' ? a[i] - 32 : a[i]);
    up[6] = '\0';
    assert_int_equal(kl_storage_invite_revoke(f->st, up, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "xena", ik, CODE_A, NOW, &u), KL_EREFUSED);
    assert_int_equal(kl_storage_invite_revoke(f->st, a, NOW), KL_ENOTFOUND);
}

/* Two codes whose ids share their first 4 hex digits: a 4-digit prefix is
 * ambiguous and revokes nothing; the longer id revokes just one. */
static void test_invite_revoke_ambiguous(void **state)
{
    fixture_t *f = *state;
    static char codes[4096][16];
    char ida[KL_INVITE_ID_LEN + 1], idb[KL_INVITE_ID_LEN + 1];
    int x = -1, y = -1;
    static int seen[65536];
    memset(seen, -1, sizeof seen);
    for (int i = 0; i < 4096 && x < 0; i++) {
        uint8_t h[32];
        snprintf(codes[i], sizeof codes[i], "code-%05d", i);
        kl_sha256((const uint8_t *)codes[i], strlen(codes[i]), h);
        int k = h[0] << 8 | h[1];
        if (seen[k] >= 0) {
            x = seen[k];
            y = i;
        }
        seen[k] = i;
    }
    assert_true(x >= 0); /* 4096 codes in 65536 prefixes: a collision is certain enough */
    id_of(codes[x], ida);
    id_of(codes[y], idb);
    assert_int_equal(kl_storage_invite_create(f->st, codes[x], 1, LATER, NOW), 0);
    assert_int_equal(kl_storage_invite_create(f->st, codes[y], 1, LATER, NOW), 0);
    char p4[5];
    memcpy(p4, ida, 4);
    p4[4] = '\0';
    assert_int_equal(kl_storage_invite_revoke(f->st, p4, NOW), KL_EEXIST);
    kl_storage_invite_info_t *v = NULL;
    size_t n = 0;
    assert_int_equal(kl_storage_invite_list(f->st, NOW, &v, &n), 0);
    assert_int_equal(n, 2);
    free(v);
    assert_int_equal(kl_storage_invite_revoke(f->st, ida, NOW), 0);
    assert_int_equal(kl_storage_invite_list(f->st, NOW, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, idb);
    free(v);
}

static const kl_storage_quota_t BIG = {1000000, 1ull << 40};

static void give_state(kl_storage_t *st, const kl_storage_user_t *u)
{
    uint8_t spk[32], sig[64], tok[32];
    kl_storage_opk_t opk = {5, {0}};
    uint64_t seq;
    memset(spk, 9, sizeof spk);
    memset(sig, 8, sizeof sig);
    memset(tok, 7, sizeof tok);
    assert_int_equal(kl_storage_prekey_set_signed(st, u->id, 77, spk, sig), 0);
    assert_int_equal(kl_storage_prekey_add_onetime(st, u->id, &opk, 1), 0);
    assert_int_equal(kl_storage_token_set(st, u->id, tok), 0);
    assert_int_equal(kl_storage_log_append(st, u->inbox, NOW, LATER, (const uint8_t *)"hei", 3,
                                           &BIG, &seq),
                     0);
}

static void test_user_list_and_remove(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t bob, carl, u;
    kl_storage_user_info_t *v = NULL;
    kl_storage_stats_t s;
    size_t n = 0;
    uint64_t id = 0, inbox = 0, removed = 0;
    add_user(f->st, "carl", CODE_A, &carl);
    add_user(f->st, "bob", CODE_B, &bob);
    give_state(f->st, &bob);
    assert_int_equal(kl_storage_user_list(f->st, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].handle, "bob");
    assert_int_equal(v[0].entries, 1);
    assert_int_equal(v[0].bytes, 3);
    assert_int_equal(v[0].created_ms, NOW);
    assert_string_equal(v[1].handle, "carl");
    assert_int_equal(v[1].entries, 0);
    free(v);
    /* The route is cached on this connection now. */
    assert_int_equal(kl_storage_user_route(f->st, "bob", &id, &inbox), 0);
    assert_int_equal(kl_storage_user_remove(f->st, "bob", NOW, &removed), 0);
    assert_int_equal(removed, bob.id);
    assert_int_equal(kl_storage_user_get(f->st, "bob", &u), KL_ENOTFOUND);
    assert_int_equal(kl_storage_user_route(f->st, "bob", &id, &inbox), KL_ENOTFOUND);
    uint8_t tok[32];
    int ok = 1;
    memset(tok, 7, sizeof tok);
    assert_int_equal(kl_storage_token_check(f->st, "bob", tok, &ok), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.entries, 0);
    assert_int_equal(kl_storage_user_list(f->st, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].handle, "carl");
    free(v);
    assert_int_equal(kl_storage_user_remove(f->st, "bob", NOW, NULL), KL_ENOTFOUND);
    /* The handle is retired: a new invite cannot take it, and keeps its use. */
    uint8_t ik[32];
    key_of('z', ik);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_C, 1, LATER, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "bob", ik, CODE_C, NOW, &u), KL_EEXIST);
    assert_int_equal(kl_storage_register(f->st, "bobby", ik, CODE_C, NOW, &u), 0);
    assert_int_equal(kl_storage_user_get(f->st, "carl", &u), 0);
}

/* A removal inside a batch frees the highest id for a register in the
 * same batch; if the batch rolls back, no route to that register may stay
 * cached. */
static void test_remove_then_rollback_caches_nothing(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t bob, carl;
    uint8_t ik[32];
    uint64_t id = 0, inbox = 0;
    key_of('c', ik);
    add_user(f->st, "bob", CODE_A, &bob);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_B, 1, LATER, NOW), 0);
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_user_remove(f->st, "bob", NOW, NULL), 0);
    assert_int_equal(kl_storage_register(f->st, "carl", ik, CODE_B, NOW, &carl), 0);
    assert_int_equal(carl.id, bob.id); /* sqlite hands out the freed id again */
    assert_int_equal(kl_storage_user_route(f->st, "carl", &id, &inbox), 0);
    kl_storage_batch_rollback(f->st);
    assert_int_equal(kl_storage_user_route(f->st, "carl", &id, &inbox), KL_ENOTFOUND);
    assert_int_equal(kl_storage_user_route(f->st, "bob", &id, &inbox), 0);
    assert_int_equal(id, bob.id);
    assert_int_equal(inbox, bob.inbox);
}

static void test_reset_invite(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t lena, astrid, u;
    kl_prekey_bundle_t b;
    uint8_t nk[32], ik[32];
    key_of('N', nk);
    key_of('x', ik);
    add_user(f->st, "lena", CODE_A, &lena);
    add_user(f->st, "astrid", CODE_B, &astrid);
    give_state(f->st, &lena);
    assert_int_equal(kl_storage_invite_create_for(f->st, CODE_R, 1, LATER, NOW, "nobody"),
                     KL_ENOTFOUND);
    assert_int_equal(kl_storage_invite_create_for(f->st, CODE_R, 1, LATER, NOW, "lena"), 0);
    kl_storage_invite_info_t *v = NULL;
    size_t n = 0;
    assert_int_equal(kl_storage_invite_list(f->st, NOW, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].handle, "lena");
    free(v);
    /* Bound to lena: no other handle, taken or free, registers with it. */
    assert_int_equal(kl_storage_register(f->st, "astrid", nk, CODE_R, NOW, &u), KL_EREFUSED);
    assert_int_equal(kl_storage_register(f->st, "newbie", nk, CODE_R, NOW, &u), KL_EREFUSED);
    /* An ordinary invite never takes lena. */
    assert_int_equal(kl_storage_invite_create(f->st, CODE_C, 1, LATER, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "lena", nk, CODE_C, NOW, &u), KL_EEXIST);
    /* The reset: same account and inbox, the new key, nothing of the old one. */
    assert_int_equal(kl_storage_register(f->st, "lena", nk, CODE_R, NOW, &u), 0);
    assert_int_equal(u.rekeyed, 1);
    assert_int_equal(u.id, lena.id);
    assert_int_equal(u.inbox, lena.inbox);
    assert_memory_equal(u.identity_key, nk, 32);
    assert_int_equal(kl_storage_user_get(f->st, "lena", &u), 0);
    assert_memory_equal(u.identity_key, nk, 32);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "lena", 1, NOW, &b), KL_ENOTFOUND);
    uint32_t opks = 9;
    assert_int_equal(kl_storage_prekey_count(f->st, lena.id, &opks), 0);
    assert_int_equal(opks, 0);
    uint8_t tok[32];
    int ok = 1;
    memset(tok, 7, sizeof tok);
    assert_int_equal(kl_storage_token_check(f->st, "lena", tok, &ok), 0);
    assert_int_equal(ok, 0);
    kl_storage_entry_t *e = NULL;
    size_t ne = 9;
    int more = 1;
    assert_int_equal(kl_storage_log_read(f->st, lena.inbox, 0, NOW, 10, 1 << 20, &e, &ne, &more), 0);
    assert_int_equal(ne, 0);
    kl_storage_entries_free(e, ne);
    /* Used once: it cannot re-key lena again. */
    assert_int_equal(kl_storage_register(f->st, "lena", ik, CODE_R, NOW, &u), KL_EREFUSED);
    /* New mail reaches the account as before. */
    uint64_t seq = 0;
    assert_int_equal(kl_storage_log_append(f->st, lena.inbox, NOW, LATER, (const uint8_t *)"ny", 2,
                                           &BIG, &seq),
                     0);
    assert_true(seq > 1);
    /* A reset invite for a user removed meanwhile registers nobody. */
    assert_int_equal(kl_storage_invite_create_for(f->st, CODE_A "x", 1, LATER, NOW, "astrid"), 0);
    assert_int_equal(kl_storage_user_remove(f->st, "astrid", NOW, NULL), 0);
    assert_int_equal(kl_storage_register(f->st, "astrid", ik, CODE_A "x", NOW, &u), KL_EREFUSED);
}

static void test_backup_and_check(void **state)
{
    fixture_t *f = *state;
    char copy[160], junk[160], name[64], key[64];
    kl_storage_user_t u;
    kl_storage_t *st2 = NULL;
    snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
    snprintf(junk, sizeof junk, "%s/junk.db", f->dir);
    add_user(f->st, "bob", CODE_A, &u);
    /* Not a relay database yet: no name. */
    assert_int_equal(kl_storage_backup(f->st, copy), 0);
    assert_int_equal(kl_storage_check_file(copy, name, sizeof name, key, sizeof key), KL_EPROTO);
    unlink(copy);
    assert_int_equal(kl_storage_meta_set(f->st, "name", "oslo.test"), 0);
    assert_int_equal(kl_storage_meta_set(f->st, "public_key", "PUBKEY"), 0);
    assert_int_equal(kl_storage_backup(f->st, copy), 0);
    assert_int_equal(kl_storage_check_file(copy, name, sizeof name, key, sizeof key), 0);
    assert_string_equal(name, "oslo.test");
    assert_string_equal(key, "PUBKEY");
    /* The copy stands alone (no write-ahead log beside it) and is whole. */
    char wal[170];
    snprintf(wal, sizeof wal, "%s-wal", copy);
    assert_int_not_equal(access(wal, F_OK), 0);
    assert_int_equal(kl_storage_open(&st2, copy, 0), 0);
    assert_int_equal(kl_storage_user_get(st2, "bob", &u), 0);
    kl_storage_close(st2);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", copy);
    unlink(wal);
    /* Garbage and missing files are refused. */
    FILE *j = fopen(junk, "w");
    assert_non_null(j);
    fputs("this is not a database, but it is long enough to look like a header of one....", j);
    fclose(j);
    assert_int_equal(kl_storage_check_file(junk, name, sizeof name, key, sizeof key), KL_EPROTO);
    unlink(junk);
    assert_int_equal(kl_storage_check_file(junk, name, sizeof name, key, sizeof key),
                     KL_ENOTFOUND);
    unlink(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invite_list_shows_active_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_revoke_ambiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_list_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_then_rollback_caches_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_invite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_and_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
