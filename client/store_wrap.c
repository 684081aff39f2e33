/* The store key's wrap: how the passphrase (or its absence) opens the
 * random store key, and how that wrap is replaced. See store.h.
 *
 * The wrap lives in the meta table:
 *   kdf           "pwhash": Argon2id via crypto_pwhash with the limits below;
 *                 "none": --no-passphrase (all-zero wrapping key);
 *                 "argon2id13-interactive": stores made before the limits
 *                 were recorded (Argon2id, INTERACTIVE limits, implied).
 *   kdf_alg       "argon2id13"             (pwhash only)
 *   kdf_opslimit  INTEGER, passes          (pwhash only)
 *   kdf_memlimit  INTEGER, bytes           (pwhash only)
 *   salt          16 random bytes, new for every wrap
 *   store_key     nonce(24) || XChaCha20-Poly1305(store key), with the
 *                 label "kollega-store-v1|meta|store_key|<kdf>" as AD.
 *
 * Re-wrapping replaces these rows in one transaction, so a crash leaves
 * either the old wrap or the new one, each complete. The store key never
 * changes: nothing else in the file is re-encrypted. */
#include <stdio.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store_int.h"

#define KDF_PWHASH "pwhash"
#define KDF_LEGACY "argon2id13-interactive"
#define KDF_NONE "none"
#define ALG_ARGON2ID13 "argon2id13"

static int exec(kl_store_t *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

#define META_PUT "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)"

int kl_store_meta_put(kl_store_t *st, const char *k, const void *v, size_t len)
{
    return kl_store_run(st, META_PUT, KL_ARGS(KL_TEXT(k), KL_BLOB(v, len)));
}

static int meta_put_u64(kl_store_t *st, const char *k, uint64_t v)
{
    return kl_store_run(st, META_PUT, KL_ARGS(KL_TEXT(k), KL_INT(v)));
}

static int meta_delete(kl_store_t *st, const char *k)
{
    return kl_store_run(st, "DELETE FROM meta WHERE k = ?1", KL_ARGS(KL_TEXT(k)));
}

int kl_store_meta_get(kl_store_t *st, const char *k, uint8_t *out, size_t cap, size_t *len)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "SELECT v FROM meta WHERE k = ?1", &s);
    if (r)
        return KL_EPROTO; /* no meta table: not a Kollega store */
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    r = KL_EPROTO;
    if (sqlite3_step(s) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 0);
        const void *v = sqlite3_column_blob(s, 0);
        if (n >= 0 && (size_t)n <= cap && (n == 0 || v != NULL)) {
            if (n)
                memcpy(out, v, (size_t)n);
            *len = (size_t)n;
            r = 0;
        }
    }
    sqlite3_finalize(s);
    return r;
}

/* A positive INTEGER meta value; KL_EPROTO if missing or of another type. */
static int meta_get_u64(kl_store_t *st, const char *k, uint64_t *v)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "SELECT v FROM meta WHERE k = ?1", &s);
    if (r)
        return KL_EPROTO;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    r = KL_EPROTO;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_INTEGER) {
        sqlite3_int64 x = sqlite3_column_int64(s, 0);
        if (x > 0) {
            *v = (uint64_t)x;
            r = 0;
        }
    }
    sqlite3_finalize(s);
    return r;
}

/* A NUL-terminated text meta value into out[cap]. */
static int meta_get_str(kl_store_t *st, const char *k, char *out, size_t cap)
{
    size_t n = 0;
    int r = kl_store_meta_get(st, k, (uint8_t *)out, cap - 1, &n);
    if (r)
        return r;
    out[n] = '\0';
    return strlen(out) == n ? 0 : KL_EPROTO;
}

static int wrap_label(char *out, size_t cap, const char *kdf)
{
    char row[128];
    int n = snprintf(row, sizeof row, "store_key|%s", kdf);
    if (n < 0 || (size_t)n >= sizeof row)
        return KL_EPROTO;
    return kl_store_label(out, cap, "meta", row);
}

/* The key that wraps the store key: Argon2id of the passphrase, or all
 * zeros for a store without one. */
static int wrapping_key(const kl_store_wrap_t *w, const char *pass, uint8_t key[32])
{
    if (!w->has_pass) {
        memset(key, 0, 32);
        return 0;
    }
    if (pass == NULL)
        return KL_EPASS;
    return kl_pwhash(key, pass, strlen(pass), w->salt, &w->params);
}

int kl_store_wrap_read(kl_store_t *st, kl_store_wrap_t *w)
{
    char alg[32];
    size_t n = 0;
    int r;
    memset(w, 0, sizeof *w);
    if ((r = meta_get_str(st, "kdf", w->kdf, sizeof w->kdf)))
        return r;
    if ((r = kl_store_meta_get(st, "salt", w->salt, sizeof w->salt, &n)) ||
        n != sizeof w->salt ||
        (r = kl_store_meta_get(st, "store_key", w->wrapped, sizeof w->wrapped, &n)) ||
        n != sizeof w->wrapped)
        return KL_EPROTO;
    if (strcmp(w->kdf, KDF_NONE) == 0)
        return 0;
    w->has_pass = 1;
    if (strcmp(w->kdf, KDF_LEGACY) == 0) {
        w->params.alg = KL_PWHASH_ALG_ARGON2ID13;
        w->params.opslimit = KL_PWHASH_OPS_INTERACTIVE;
        w->params.memlimit = KL_PWHASH_MEM_INTERACTIVE;
        return 0;
    }
    if (strcmp(w->kdf, KDF_PWHASH) != 0)
        return KL_EPROTO;
    if ((r = meta_get_str(st, "kdf_alg", alg, sizeof alg)) ||
        (r = meta_get_u64(st, "kdf_opslimit", &w->params.opslimit)) ||
        (r = meta_get_u64(st, "kdf_memlimit", &w->params.memlimit)))
        return r;
    if (strcmp(alg, ALG_ARGON2ID13) != 0)
        return KL_EPROTO;
    w->params.alg = KL_PWHASH_ALG_ARGON2ID13;
    /* Checked here, before anyone is asked for a passphrase: a tampered
     * file must not make us allocate many GiB. */
    return kl_pwhash_params_check(&w->params);
}

int kl_store_wrap_open(kl_store_t *st, const kl_store_wrap_t *w, const char *pass)
{
    uint8_t wkey[32];
    char label[128];
    int r = wrapping_key(w, pass, wkey);
    if (r || (r = wrap_label(label, sizeof label, w->kdf)))
        goto out;
    if (kl_aead_open(wkey, w->wrapped, (const uint8_t *)label, strlen(label),
                     w->wrapped + KL_AEAD_NONCE, sizeof w->wrapped - KL_AEAD_NONCE,
                     st->key) != 0)
        r = KL_EPASS;
out:
    kl_memzero(wkey, sizeof wkey);
    return r;
}

int kl_store_wrap_seal(const kl_store_t *st, const char *pass, const kl_pwhash_params_t *p,
                       kl_store_wrap_t *w)
{
    uint8_t wkey[32];
    char label[128];
    int r;
    memset(w, 0, sizeof *w);
    w->has_pass = pass != NULL;
    snprintf(w->kdf, sizeof w->kdf, "%s", pass ? KDF_PWHASH : KDF_NONE);
    if (pass)
        w->params = *p;
    kl_random(w->salt, sizeof w->salt);
    kl_random(w->wrapped, KL_AEAD_NONCE);
    if ((r = wrapping_key(w, pass, wkey)) || (r = wrap_label(label, sizeof label, w->kdf)))
        goto out;
    r = kl_aead_seal(wkey, w->wrapped, (const uint8_t *)label, strlen(label), st->key, 32,
                     w->wrapped + KL_AEAD_NONCE);
out:
    kl_memzero(wkey, sizeof wkey);
    return r;
}

int kl_store_wrap_write(kl_store_t *st, const kl_store_wrap_t *w)
{
    int r;
    if ((r = kl_store_meta_put(st, "kdf", w->kdf, strlen(w->kdf))) ||
        (r = kl_store_meta_put(st, "salt", w->salt, sizeof w->salt)) ||
        (r = kl_store_meta_put(st, "store_key", w->wrapped, sizeof w->wrapped)))
        return r;
    if (!w->has_pass) {
        if ((r = meta_delete(st, "kdf_alg")) || (r = meta_delete(st, "kdf_opslimit")) ||
            (r = meta_delete(st, "kdf_memlimit")))
            return r;
        return 0;
    }
    if ((r = kl_store_meta_put(st, "kdf_alg", ALG_ARGON2ID13, strlen(ALG_ARGON2ID13))) ||
        (r = meta_put_u64(st, "kdf_opslimit", w->params.opslimit)) ||
        (r = meta_put_u64(st, "kdf_memlimit", w->params.memlimit)))
        return r;
    return 0;
}

/* The limits for a new wrap: the default, or the stored one where it is
 * stronger, so a re-wrap never weakens either dimension. */
static void new_params(const kl_store_wrap_t *old, kl_pwhash_params_t *p)
{
    kl_pwhash_params_default(p);
    if (!old->has_pass)
        return;
    if (old->params.opslimit > p->opslimit)
        p->opslimit = old->params.opslimit;
    if (old->params.memlimit > p->memlimit)
        p->memlimit = old->params.memlimit;
}

int kl_store_wrap_weak(const kl_store_wrap_t *w)
{
    kl_pwhash_params_t p;
    if (!w->has_pass)
        return 0;
    kl_pwhash_params_default(&p);
    return strcmp(w->kdf, KDF_PWHASH) != 0 || w->params.opslimit < p.opslimit ||
           w->params.memlimit < p.memlimit;
}

/* Replace the wrap st opened with nw, in one transaction, and only if the
 * file still holds the wrap st opened: another kollega process may have
 * changed the passphrase meanwhile, and writing over its wrap would bring
 * the old passphrase back (KL_ESTATE). Then the WAL is checkpointed and
 * truncated so the old wrap's bytes (secure_delete overwrites them in the
 * database pages) do not linger in the log either; that is best effort, a
 * busy reader can delay it to the next checkpoint. */
static int wrap_replace(kl_store_t *st, const kl_store_wrap_t *nw)
{
    uint8_t cur[KL_STORE_WRAPPED_LEN];
    size_t n = 0;
    int r;
    if ((r = exec(st, "BEGIN IMMEDIATE;")))
        return r;
    if ((r = kl_store_meta_get(st, "store_key", cur, sizeof cur, &n)) || n != sizeof cur ||
        kl_memcmp(cur, st->wrap.wrapped, sizeof cur) != 0) {
        r = r ? r : KL_ESTATE;
        goto fail;
    }
    if ((r = kl_store_wrap_write(st, nw)) || (r = exec(st, "COMMIT;")))
        goto fail;
    st->wrap = *nw;
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return 0;
fail:
    exec(st, "ROLLBACK;");
    return r;
}

int kl_store_rekey(kl_store_t *st, const char *pass)
{
    kl_pwhash_params_t p;
    kl_store_wrap_t nw;
    if (st->in_txn)
        return KL_ESTATE;
    new_params(&st->wrap, &p);
    int r = kl_store_wrap_seal(st, pass, &p, &nw);
    return r ? r : wrap_replace(st, &nw);
}

int kl_store_has_passphrase(const kl_store_t *st)
{
    return st->wrap.has_pass;
}

int kl_store_upgraded(const kl_store_t *st)
{
    return st->upgraded;
}
