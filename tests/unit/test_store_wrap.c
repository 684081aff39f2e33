/* The store key's wrap (client/store_wrap.c): Argon2id limits recorded
 * beside the salt, weak wraps re-wrapped at unlock, absurd stored limits
 * refused before any derivation, passphrase change, removal and addition.
 *
 * A MODERATE derivation takes 256 MiB and about half a second, so the tests
 * count them: stores that need no passphrase for setup are made without
 * one and given their wrap by hand (cheap INTERACTIVE or smaller limits)
 * with sqlite, as an old kollega or an attacker with write access would. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store.h"
#include "tmpdir.h"

#define WRAPPED_LEN (KL_AEAD_NONCE + 32 + KL_AEAD_TAG)
#define LABEL "kollega-store-v1|meta|store_key|"

typedef kl_test_files_t fixture_t;

static int setup(void **state)
{
    return kl_test_store_setup(state);
}

static int teardown(void **state)
{
    return kl_test_store_teardown(state);
}

/* The passphrase callback: ud is a struct counting the calls, so a test
 * can tell that no derivation was even attempted. */
typedef struct asker {
    const char *pass;
    int calls;
} asker_t;

static int ask(void *ud, char *buf, size_t cap)
{
    asker_t *a = ud;
    a->calls++;
    snprintf(buf, cap, "%s", a->pass);
    return 0;
}

static int open_with(const char *path, const char *pass, unsigned flags, kl_store_t **st)
{
    asker_t a = {pass, 0};
    return kl_store_open_flags(path, ask, &a, flags, st);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *b = kl_test_read_file(path, len);
    assert_non_null(b);
    return b;
}

static void assert_same_file(const uint8_t *before, size_t n1, const char *path)
{
    size_t n2;
    uint8_t *after = slurp(path, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    free(after);
}

/* ---- the file, seen with sqlite directly ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

/* Close, folding the WAL into the main file so a byte comparison of the
 * file alone sees everything. */
static void db_close(sqlite3 *db)
{
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                               NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

static void meta_set(sqlite3 *db, const char *k, const void *v, int len)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, v, len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
}

static void meta_set_int(sqlite3 *db, const char *k, sqlite3_int64 v)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
}

static void meta_del(sqlite3 *db, const char *k)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM meta WHERE k = '%s'", k);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* Meta value k into out[cap] (NUL-terminated for text); returns its
 * length, -1 if there is no such row. */
static int meta_blob(sqlite3 *db, const char *k, void *out, size_t cap)
{
    sqlite3_stmt *s;
    int n = -1;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?1", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(s, 0);
        n = sqlite3_column_bytes(s, 0);
        assert_true((size_t)n < cap);
        memcpy(out, v, (size_t)n);
        ((char *)out)[n] = '\0';
    }
    sqlite3_finalize(s);
    return n;
}

/* An INTEGER meta value; -1 if missing or of another type. */
static sqlite3_int64 meta_int(sqlite3 *db, const char *k)
{
    sqlite3_stmt *s;
    sqlite3_int64 v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?1", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_INTEGER)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void assert_recorded(const char *path, uint64_t ops, uint64_t mem)
{
    char kdf[64], alg[64];
    uint8_t salt[64];
    sqlite3 *db = db_open(path);
    assert_int_equal(meta_blob(db, "kdf", kdf, sizeof kdf), 6);
    assert_string_equal(kdf, "pwhash");
    assert_true(meta_blob(db, "kdf_alg", alg, sizeof alg) > 0);
    assert_string_equal(alg, "argon2id13");
    assert_int_equal(meta_int(db, "kdf_opslimit"), (sqlite3_int64)ops);
    assert_int_equal(meta_int(db, "kdf_memlimit"), (sqlite3_int64)mem);
    assert_int_equal(meta_blob(db, "salt", salt, sizeof salt), KL_PWHASH_SALT);
    sqlite3_close(db);
}

/* A store without passphrase holding a secret and a setting; *key gets its
 * store key, read back from the all-zero wrap. No derivation. */
static void make_plain_store(const fixture_t *f, uint8_t secret[32], uint8_t key[32])
{
    kl_store_t *st = NULL;
    uint8_t wrapped[WRAPPED_LEN + 1], zero[32] = {0};
    const char *label = LABEL "none";
    kl_random(secret, 32);
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_secret_put(st, "identity", secret, 32), 0);
    assert_int_equal(kl_store_set_str(st, "address", "kari@oslo.example.org"), 0);
    kl_store_close(st);
    sqlite3 *db = db_open(f->path);
    assert_int_equal(meta_blob(db, "store_key", wrapped, sizeof wrapped), WRAPPED_LEN);
    assert_int_equal(kl_aead_open(zero, wrapped, (const uint8_t *)label, strlen(label),
                                  wrapped + KL_AEAD_NONCE, WRAPPED_LEN - KL_AEAD_NONCE, key),
                     0);
    db_close(db);
}

/* Wrap key under pass the way kdf does (with p's limits), by hand, and
 * write it as the store's wrap: what an older kollega left on disk. */
static void write_wrap(const fixture_t *f, const uint8_t key[32], const char *kdf,
                       const char *pass, const kl_pwhash_params_t *p)
{
    uint8_t salt[KL_PWHASH_SALT], wkey[32], wrapped[WRAPPED_LEN];
    char label[128];
    snprintf(label, sizeof label, LABEL "%s", kdf);
    kl_random(salt, sizeof salt);
    kl_random(wrapped, KL_AEAD_NONCE);
    assert_int_equal(kl_pwhash(wkey, pass, strlen(pass), salt, p), 0);
    assert_int_equal(kl_aead_seal(wkey, wrapped, (const uint8_t *)label, strlen(label), key, 32,
                                  wrapped + KL_AEAD_NONCE),
                     0);
    sqlite3 *db = db_open(f->path);
    meta_set(db, "kdf", kdf, (int)strlen(kdf));
    meta_set(db, "salt", salt, sizeof salt);
    meta_set(db, "store_key", wrapped, sizeof wrapped);
    if (strcmp(kdf, "pwhash") == 0) {
        meta_set(db, "kdf_alg", "argon2id13", 10);
        meta_set_int(db, "kdf_opslimit", (sqlite3_int64)p->opslimit);
        meta_set_int(db, "kdf_memlimit", (sqlite3_int64)p->memlimit);
    }
    db_close(db);
}

static void assert_holds(kl_store_t *st, const uint8_t secret[32])
{
    uint8_t back[32];
    char addr[64];
    assert_int_equal(kl_store_secret_get(st, "identity", back, sizeof back), 0);
    assert_memory_equal(secret, back, 32);
    assert_int_equal(kl_store_get_str(st, "address", addr, sizeof addr), 0);
    assert_string_equal(addr, "kari@oslo.example.org");
}

/* ---- tests ---- */

static void test_new_store_uses_moderate_and_records_limits(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    kl_pwhash_params_t p;
    kl_pwhash_params_default(&p);
    assert_int_equal(p.alg, KL_PWHASH_ALG_ARGON2ID13);
    assert_int_equal(p.opslimit, KL_PWHASH_OPS_MODERATE);
    assert_int_equal(p.memlimit, KL_PWHASH_MEM_MODERATE);
    assert_int_equal(kl_store_create(f->path, "riktig hest", &st), 0); /* 1 derivation */
    assert_int_equal(kl_store_has_passphrase(st), 1);
    kl_store_close(st);
    assert_recorded(f->path, 3, 256u << 20);
}

/* A store wrapped by an older kollega (kdf "argon2id13-interactive", no
 * limits recorded): the wrong passphrase fails and writes nothing; the
 * right one opens it and re-wraps under MODERATE with a new salt, once; the
 * store key and everything sealed with it stay as they were. */
static void test_interactive_store_rewrapped_at_unlock(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[32], key[32], salt0[64], salt1[64], *before;
    kl_pwhash_params_t inter = {KL_PWHASH_ALG_ARGON2ID13, KL_PWHASH_OPS_INTERACTIVE,
                                KL_PWHASH_MEM_INTERACTIVE};
    size_t n;
    make_plain_store(f, secret, key);
    write_wrap(f, key, "argon2id13-interactive", "gammel hest", &inter);
    sqlite3 *db = db_open(f->path);
    assert_int_equal(meta_blob(db, "salt", salt0, sizeof salt0), KL_PWHASH_SALT);
    sqlite3_close(db);

    before = slurp(f->path, &n);
    assert_int_equal(open_with(f->path, "feil hest", 0, &st), KL_EPASS);
    assert_null(st);
    assert_same_file(before, n, f->path);
    free(before);

    assert_int_equal(open_with(f->path, "gammel hest", 0, &st), 0); /* 1 + 1 derivations */
    assert_int_equal(kl_store_upgraded(st), 1);
    assert_holds(st, secret);
    kl_store_close(st);
    assert_recorded(f->path, 3, 256u << 20);
    db = db_open(f->path);
    assert_int_equal(meta_blob(db, "salt", salt1, sizeof salt1), KL_PWHASH_SALT);
    assert_memory_not_equal(salt0, salt1, KL_PWHASH_SALT);
    sqlite3_close(db);

    assert_int_equal(open_with(f->path, "gammel hest", 0, &st), 0); /* 1 derivation */
    assert_int_equal(kl_store_upgraded(st), 0);
    assert_holds(st, secret);
    kl_store_close(st);
}

/* A recorded wrap weaker than the default in one dimension is re-wrapped
 * too, keeping the dimension where it is stronger (never weakened). */
static void test_weaker_recorded_limits_rewrapped_keep_stronger(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[32], key[32];
    kl_pwhash_params_t small = {KL_PWHASH_ALG_ARGON2ID13, 4, 8u << 20};
    make_plain_store(f, secret, key);
    write_wrap(f, key, "pwhash", "hest", &small);
    assert_int_equal(open_with(f->path, "hest", 0, &st), 0); /* 1 small + 1 derivation */
    assert_int_equal(kl_store_upgraded(st), 1);
    assert_holds(st, secret);
    kl_store_close(st);
    assert_recorded(f->path, 4, 256u << 20);
}

/* Limits a tampered (or future) file names that we will not run: refused
 * before the passphrase is even asked for, so nothing is derived or
 * allocated, and the file is left as it was. */
static void test_absurd_limits_refused_before_deriving(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[32], key[32];
    static const struct {
        const char *alg;
        sqlite3_int64 ops, mem;
        int err;
    } cases[] = {
        {"argon2id13", 3, (1ll << 30) + 1024, KL_ELIMIT},
        {"argon2id13", 3, 64ll << 30, KL_ELIMIT},
        {"argon2id13", 3, INT64_MAX, KL_ELIMIT},
        {"argon2id13", 17, 256ll << 20, KL_ELIMIT},
        {"argon2id13", 1ll << 40, 8192, KL_ELIMIT},
        {"argon2id13", 3, 4096, KL_EPROTO},
        {"argon2id13", 0, 256ll << 20, KL_EPROTO},
        {"argon2id13", 3, -1, KL_EPROTO},
        {"argon2i13", 3, 256ll << 20, KL_EPROTO},
    };
    make_plain_store(f, secret, key);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sqlite3 *db = db_open(f->path);
        meta_set(db, "kdf", "pwhash", 6);
        meta_set(db, "kdf_alg", cases[i].alg, (int)strlen(cases[i].alg));
        meta_set_int(db, "kdf_opslimit", cases[i].ops);
        meta_set_int(db, "kdf_memlimit", cases[i].mem);
        db_close(db);
        size_t n;
        uint8_t *before = slurp(f->path, &n);
        asker_t a = {"hest", 0};
        assert_int_equal(kl_store_open(f->path, ask, &a, &st), cases[i].err);
        assert_null(st);
        assert_int_equal(a.calls, 0);
        assert_same_file(before, n, f->path);
        free(before);
    }
    /* A limit stored as text, or missing, is not a store we can read. */
    sqlite3 *db = db_open(f->path);
    meta_set_int(db, "kdf_opslimit", 3);
    meta_set(db, "kdf_alg", "argon2id13", 10);
    meta_set(db, "kdf_memlimit", "268435456", 9);
    db_close(db);
    assert_int_equal(open_with(f->path, "hest", 0, &st), KL_EPROTO);
    db = db_open(f->path);
    meta_del(db, "kdf_memlimit");
    db_close(db);
    assert_int_equal(open_with(f->path, "hest", 0, &st), KL_EPROTO);

    /* kl_pwhash itself refuses them too, at once, and takes the edges. */
    kl_pwhash_params_t p = {KL_PWHASH_ALG_ARGON2ID13, 3, (1ull << 30) + 1};
    uint8_t out[32], salt[KL_PWHASH_SALT] = {0};
    assert_int_equal(kl_pwhash(out, "x", 1, salt, &p), KL_ELIMIT);
    p.memlimit = 1ull << 30;
    assert_int_equal(kl_pwhash_params_check(&p), 0);
    p.opslimit = 16;
    assert_int_equal(kl_pwhash_params_check(&p), 0);
    p.opslimit = 17;
    assert_int_equal(kl_pwhash_params_check(&p), KL_ELIMIT);
}

/* No passphrase -> one -> another -> none again: after each change only
 * the new passphrase opens the store, a wrong one changes nothing, and the
 * sealed rows are the very same bytes (the store key did not change). */
static void test_passphrase_added_changed_removed(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[32], key[32], box0[128], box1[128], *before;
    size_t n;
    make_plain_store(f, secret, key);
    sqlite3 *db = db_open(f->path);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT box FROM secrets WHERE name = 'identity'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int boxlen = sqlite3_column_bytes(s, 0);
    assert_true(boxlen > 0 && boxlen <= (int)sizeof box0);
    memcpy(box0, sqlite3_column_blob(s, 0), (size_t)boxlen);
    sqlite3_finalize(s);
    sqlite3_close(db);

    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), 0);
    assert_int_equal(kl_store_has_passphrase(st), 0);
    assert_int_equal(kl_store_begin(st), 0);
    assert_int_equal(kl_store_rekey(st, "gammel"), KL_ESTATE); /* not inside a transaction */
    kl_store_rollback(st);
    assert_int_equal(kl_store_rekey(st, "gammel"), 0); /* 1 derivation */
    assert_int_equal(kl_store_has_passphrase(st), 1);
    assert_holds(st, secret);
    kl_store_close(st);
    assert_recorded(f->path, 3, 256u << 20);
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), KL_EPASS);

    assert_int_equal(open_with(f->path, "gammel", KL_STORE_OPEN_NO_UPGRADE, &st), 0); /* 1 */
    assert_int_equal(kl_store_rekey(st, "ny hest"), 0);                             /* 1 */
    kl_store_close(st);
    before = slurp(f->path, &n);
    assert_int_equal(open_with(f->path, "gammel", 0, &st), KL_EPASS); /* 1 */
    assert_same_file(before, n, f->path);
    free(before);
    assert_int_equal(open_with(f->path, "ny hest", 0, &st), 0); /* 1 */
    assert_holds(st, secret);
    assert_int_equal(kl_store_rekey(st, NULL), 0);
    assert_int_equal(kl_store_has_passphrase(st), 0);
    kl_store_close(st);

    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), 0);
    assert_holds(st, secret);
    kl_store_close(st);
    char kdf[64];
    db = db_open(f->path);
    assert_int_equal(meta_blob(db, "kdf", kdf, sizeof kdf), 4);
    assert_string_equal(kdf, "none");
    assert_int_equal(meta_blob(db, "kdf_alg", kdf, sizeof kdf), -1);
    assert_int_equal(meta_int(db, "kdf_opslimit"), -1);
    assert_int_equal(meta_int(db, "kdf_memlimit"), -1);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT box FROM secrets WHERE name = 'identity'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(s, 0), boxlen);
    memcpy(box1, sqlite3_column_blob(s, 0), (size_t)boxlen);
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_memory_equal(box0, box1, (size_t)boxlen);
}

/* Two kollega processes hold the store open; one changes the passphrase.
 * The other's re-wrap (its own change, or an upgrade at unlock) must not
 * write over that and bring the old passphrase back. */
static void test_rekey_refused_when_wrap_changed_meanwhile(void **state)
{
    fixture_t *f = *state;
    kl_store_t *a = NULL, *b = NULL;
    uint8_t secret[32], key[32], wrapped[WRAPPED_LEN + 1], again[WRAPPED_LEN + 1];
    make_plain_store(f, secret, key);
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &a), 0);
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &b), 0);
    assert_int_equal(kl_store_rekey(a, "ny"), 0); /* 1 derivation */
    sqlite3 *db = db_open(f->path);
    assert_int_equal(meta_blob(db, "store_key", wrapped, sizeof wrapped), WRAPPED_LEN);
    sqlite3_close(db);
    assert_int_equal(kl_store_rekey(b, NULL), KL_ESTATE);
    db = db_open(f->path);
    assert_int_equal(meta_blob(db, "store_key", again, sizeof again), WRAPPED_LEN);
    sqlite3_close(db);
    assert_memory_equal(wrapped, again, WRAPPED_LEN);
    kl_store_close(a);
    kl_store_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_store_uses_moderate_and_records_limits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interactive_store_rewrapped_at_unlock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_weaker_recorded_limits_rewrapped_keep_stronger,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_absurd_limits_refused_before_deriving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_passphrase_added_changed_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_refused_when_wrap_changed_meanwhile, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
