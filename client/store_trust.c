/* Trust records in the client store: contacts' delivery tokens (sealed, as
 * named secrets), the X3DH session starts already used, and the ids of
 * key-carrying messages already applied. See store.h.
 *
 * A session start is recorded as (signed prekey id, SHA-256 of a label and
 * the initiator's ephemeral key): enough to recognise the same start again,
 * and nothing that says who it came from. The rows of a signed prekey go
 * with it (kl_store_prekey_prune_spk), since a start under a deleted signed
 * prekey can no longer be answered anyway. */
#include <stdio.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store_int.h"

#define START_TAG_LABEL "kollega-x3dh-start-v1"

static const char TRUST_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS x3dh_used(spk_id INTEGER NOT NULL, tag BLOB NOT NULL,"
    " at INTEGER NOT NULL, PRIMARY KEY(spk_id, tag));"
    "CREATE TABLE IF NOT EXISTS key_msgs(msg_id BLOB PRIMARY KEY, at INTEGER NOT NULL);";

int kl_store_trust_schema(kl_store_t *st)
{
    return sqlite3_exec(st->db, TRUST_SCHEMA, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

static void start_tag(const uint8_t ek[32], uint8_t tag[32])
{
    uint8_t in[sizeof START_TAG_LABEL - 1 + 32];
    memcpy(in, START_TAG_LABEL, sizeof START_TAG_LABEL - 1);
    memcpy(in + sizeof START_TAG_LABEL - 1, ek, 32);
    kl_sha256(in, sizeof in, tag);
}

int kl_store_x3dh_used_has(kl_store_t *st, uint32_t spk_id, const uint8_t ek[32], int *used)
{
    uint8_t tag[32];
    start_tag(ek, tag);
    return kl_store_exists(st, used, "SELECT 1 FROM x3dh_used WHERE spk_id = ?1 AND tag = ?2",
                           KL_ARGS(KL_INT(spk_id), KL_BLOB(tag, 32)));
}

int kl_store_x3dh_used_add(kl_store_t *st, uint32_t spk_id, const uint8_t ek[32], uint64_t now)
{
    uint8_t tag[32];
    start_tag(ek, tag);
    return kl_store_run(st, "INSERT OR IGNORE INTO x3dh_used(spk_id, tag, at) VALUES(?1, ?2, ?3)",
                        KL_ARGS(KL_INT(spk_id), KL_BLOB(tag, 32), KL_INT(now)));
}

int kl_store_x3dh_used_prune(kl_store_t *st)
{
    return kl_store_run(st, "DELETE FROM x3dh_used WHERE spk_id NOT IN"
                            " (SELECT id FROM prekeys WHERE kind = 0)", NULL, 0);
}

int kl_store_key_msg_add(kl_store_t *st, const uint8_t id[KL_MSG_ID], uint64_t now,
                         uint64_t keep_ms, int *added)
{
    uint64_t n = 0;
    *added = 0;
    int r = kl_store_run_changes(st, &n, "INSERT OR IGNORE INTO key_msgs(msg_id, at)"
                                         " VALUES(?1, ?2)",
                                 KL_ARGS(KL_BLOB(id, KL_MSG_ID), KL_INT(now)));
    if (r)
        return r;
    *added = n == 1;
    /* Ids older than any entry a relay may still hold are of no use: a
     * replay of something older fails its ratchet decryption anyway. */
    if (now <= keep_ms)
        return 0;
    return kl_store_run(st, "DELETE FROM key_msgs WHERE at < ?1", KL_ARGS(KL_INT(now - keep_ms)));
}

/* A contact's delivery token is a named secret ("peer_token:" address). */
static int token_name(char *out, size_t cap, const char *peer)
{
    int n = snprintf(out, cap, "peer_token:%s", peer);
    return n < 0 || (size_t)n >= cap ? KL_ETOOBIG : 0;
}

int kl_store_peer_token_get(kl_store_t *st, const char *peer, uint8_t token[32])
{
    char name[KL_ADDR_MAX + 16];
    int r = token_name(name, sizeof name, peer);
    return r ? r : kl_store_secret_get(st, name, token, 32);
}

int kl_store_peer_token_put(kl_store_t *st, const char *peer, const uint8_t token[32])
{
    char name[KL_ADDR_MAX + 16];
    int r = token_name(name, sizeof name, peer);
    return r ? r : kl_store_secret_put(st, name, token, 32);
}

int kl_store_peer_token_delete(kl_store_t *st, const char *peer)
{
    char name[KL_ADDR_MAX + 16];
    int r = token_name(name, sizeof name, peer);
    return r ? r : kl_store_run(st, "DELETE FROM secrets WHERE name = ?1",
                                KL_ARGS(KL_TEXT(name)));
}
