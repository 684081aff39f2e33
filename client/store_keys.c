/* Key material in the client store: prekeys, ratchet sessions and contact
 * pins. Every secret (and every pin, so nobody can swap a contact's key in
 * the file without the store key) is sealed; see store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store_int.h"

/* Contact record: version, flags, pinned key, pending key and (version 2)
 * the key whose safety number `contact verify` showed last. */
#define CONTACT_REC_V1 1
#define CONTACT_REC_V1_LEN (2 + 32 + 32)
#define CONTACT_REC_VERSION 2
#define CONTACT_REC_LEN (2 + 32 + 32 + 32)
#define F_HAS_KEY 0x01
#define F_VERIFIED 0x02
#define F_KEY_CHANGED 0x04
#define F_HAS_PENDING 0x08
#define F_HAS_SHOWN 0x10

static int prekey_label(char *out, size_t cap, uint32_t id, int kind)
{
    char row[32];
    snprintf(row, sizeof row, "%s|%u", kind == KL_PREKEY_SPK ? "spk" : "opk", id);
    return kl_store_label(out, cap, "prekeys", row);
}

int kl_store_prekey_put(kl_store_t *st, uint32_t id, int kind, const uint8_t pub[32],
                        const uint8_t priv[32], uint64_t created_ms)
{
    char label[96];
    sqlite3_stmt *s;
    int r = prekey_label(label, sizeof label, id, kind);
    if (r || (r = kl_store_query(st, &s, "INSERT INTO prekeys(id, kind, pub, created_at, box)"
                                         " VALUES(?1, ?2, ?3, ?4, ?5)",
                                 KL_ARGS(KL_INT(id), KL_INT(kind), KL_BLOB(pub, 32),
                                         KL_INT(created_ms)))))
        return r;
    return kl_store_exec_sealed(st, s, 5, label, priv, 32);
}

int kl_store_prekey_get(kl_store_t *st, uint32_t id, int kind, uint8_t pub[32],
                        uint8_t priv[32])
{
    char label[96];
    sqlite3_stmt *s;
    int r = prekey_label(label, sizeof label, id, kind);
    if (r || (r = kl_store_first(st, &s, "SELECT pub, box FROM prekeys WHERE id = ?1 AND kind = ?2",
                                 KL_ARGS(KL_INT(id), KL_INT(kind)))))
        return r;
    if (sqlite3_column_bytes(s, 0) != 32) {
        r = KL_EPROTO;
    } else if ((r = kl_store_column_open(st, s, 1, label, priv, 32)) == 0) {
        memcpy(pub, sqlite3_column_blob(s, 0), 32);
        /* The public half is stored in the clear for uploads; make sure it
         * still belongs to the sealed private key. */
        uint8_t check[32];
        if (kl_x_public(priv, check) != 0 || kl_memcmp(check, pub, 32) != 0) {
            kl_memzero(priv, 32);
            r = KL_ECRYPTO;
        }
    }
    sqlite3_finalize(s);
    return r;
}

int kl_store_prekey_delete(kl_store_t *st, uint32_t id, int kind)
{
    return kl_store_run(st, "DELETE FROM prekeys WHERE id = ?1 AND kind = ?2",
                        KL_ARGS(KL_INT(id), KL_INT(kind)));
}

int kl_store_prekey_current_spk(kl_store_t *st, uint32_t *id, uint8_t pub[32],
                                uint64_t *created_ms)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, "SELECT id, pub, created_at FROM prekeys WHERE kind = 0"
                                   " ORDER BY id DESC LIMIT 1", NULL, 0);
    if (r)
        return r;
    if (sqlite3_column_bytes(s, 1) != 32) {
        r = KL_EPROTO;
    } else {
        *id = (uint32_t)sqlite3_column_int64(s, 0);
        memcpy(pub, sqlite3_column_blob(s, 1), 32);
        *created_ms = (uint64_t)sqlite3_column_int64(s, 2);
    }
    sqlite3_finalize(s);
    return r;
}

int kl_store_prekey_prune_spk(kl_store_t *st, uint64_t before_ms)
{
    int r = kl_store_run(st, "DELETE FROM prekeys WHERE kind = 0 AND id < (SELECT max(id)"
                             " FROM prekeys WHERE kind = 0 AND created_at < ?1)",
                         KL_ARGS(KL_INT(before_ms)));
    if (r)
        return r;
    /* The session starts answered under a deleted signed prekey can never
     * be answered again: their replay records can go too. */
    return kl_store_x3dh_used_prune(st);
}

int kl_store_prekey_count(kl_store_t *st, int kind, uint64_t *n)
{
    return kl_store_int(st, n, "SELECT count(*) FROM prekeys WHERE kind = ?1",
                        KL_ARGS(KL_INT(kind)));
}

int kl_store_session_get(kl_store_t *st, const char *peer, uint8_t **rec, size_t *len)
{
    return kl_store_named_get(st, "sessions", peer, "SELECT box FROM sessions WHERE peer = ?1",
                              rec, len);
}

int kl_store_session_put(kl_store_t *st, const char *peer, const uint8_t *rec, size_t len)
{
    return kl_store_named_put(st, "sessions", peer,
                              "INSERT OR REPLACE INTO sessions(peer, updated_at, box) VALUES(?1,"
                              " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), ?2)",
                              rec, len);
}

int kl_store_session_delete(kl_store_t *st, const char *peer)
{
    return kl_store_run(st, "DELETE FROM sessions WHERE peer = ?1", KL_ARGS(KL_TEXT(peer)));
}

static int contact_from_row(kl_store_t *st, sqlite3_stmt *s, kl_contact_t *c)
{
    char label[KL_ADDR_MAX + 64];
    uint8_t *pt = NULL;
    size_t n = 0;
    const unsigned char *addr = sqlite3_column_text(s, 0);
    int alen = sqlite3_column_bytes(s, 0);
    memset(c, 0, sizeof *c);
    if (addr == NULL || alen <= 0 || alen > KL_ADDR_MAX)
        return KL_EPROTO;
    memcpy(c->address, addr, (size_t)alen);
    c->added_at = (uint64_t)sqlite3_column_int64(s, 1);
    int r = kl_store_label(label, sizeof label, "contacts", c->address);
    if (r || (r = kl_store_column_unseal(st, s, 2, label, &pt, &n)))
        return r;
    if (!(n == CONTACT_REC_LEN && pt[0] == CONTACT_REC_VERSION) &&
        !(n == CONTACT_REC_V1_LEN && pt[0] == CONTACT_REC_V1)) {
        kl_free_wipe(pt, n);
        return KL_EPROTO;
    }
    uint8_t f = pt[1];
    c->has_key = !!(f & F_HAS_KEY);
    c->verified = !!(f & F_VERIFIED);
    c->key_changed = !!(f & F_KEY_CHANGED);
    c->has_pending = !!(f & F_HAS_PENDING);
    memcpy(c->key, pt + 2, 32);
    memcpy(c->pending, pt + 34, 32);
    if (pt[0] == CONTACT_REC_VERSION) {
        c->has_shown = !!(f & F_HAS_SHOWN);
        memcpy(c->shown, pt + 66, 32);
    }
    kl_free_wipe(pt, n);
    return 0;
}

int kl_store_contact_get(kl_store_t *st, const char *address, kl_contact_t *c)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, "SELECT address, added_at, box FROM contacts WHERE"
                                   " address = ?1", KL_ARGS(KL_TEXT(address)));
    if (r)
        return r;
    r = contact_from_row(st, s, c);
    sqlite3_finalize(s);
    return r;
}

int kl_store_contact_put(kl_store_t *st, const kl_contact_t *c)
{
    char label[KL_ADDR_MAX + 64];
    uint8_t rec[CONTACT_REC_LEN];
    sqlite3_stmt *s;
    int r = kl_store_label(label, sizeof label, "contacts", c->address);
    if (r)
        return r;
    memset(rec, 0, sizeof rec);
    rec[0] = CONTACT_REC_VERSION;
    rec[1] = (uint8_t)((c->has_key ? F_HAS_KEY : 0) | (c->verified ? F_VERIFIED : 0) |
                       (c->key_changed ? F_KEY_CHANGED : 0) |
                       (c->has_pending ? F_HAS_PENDING : 0) |
                       (c->has_shown ? F_HAS_SHOWN : 0));
    if (c->has_key)
        memcpy(rec + 2, c->key, 32);
    if (c->has_pending)
        memcpy(rec + 34, c->pending, 32);
    if (c->has_shown)
        memcpy(rec + 66, c->shown, 32);
    if ((r = kl_store_query(st, &s, "INSERT OR REPLACE INTO contacts(address, added_at, box)"
                                    " VALUES(?1, ?2, ?3)",
                            KL_ARGS(KL_TEXT(c->address), KL_INT(c->added_at)))))
        return r;
    return kl_store_exec_sealed(st, s, 3, label, rec, sizeof rec);
}

int kl_store_contact_delete(kl_store_t *st, const char *address)
{
    return kl_store_run(st, "DELETE FROM contacts WHERE address = ?1", KL_ARGS(KL_TEXT(address)));
}

int kl_store_contact_list(kl_store_t *st, int (*cb)(void *ud, const kl_contact_t *c), void *ud)
{
    sqlite3_stmt *s;
    kl_contact_t c;
    int rc, r = kl_store_query(st, &s, "SELECT address, added_at, box FROM contacts"
                                       " ORDER BY address", NULL, 0);
    if (r)
        return r;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((r = contact_from_row(st, s, &c)) || (r = cb(ud, &c)))
            break;
    return kl_store_done(s, r, rc);
}
