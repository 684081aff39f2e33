/* Messages, held inbox entries and decryption failures in the client store.
 * Message texts are padded to 256-byte blocks before sealing so the file
 * does not reveal their exact lengths. See store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/sealed.h"
#include "store_int.h"

/* The label binds a message text to its row's metadata: moving a text to
 * another conversation, direction or time makes it fail to open. */
static int message_label(char *out, size_t cap, const uint8_t id[KL_MSG_ID], int outgoing,
                         const char *peer, uint64_t sent_at, uint64_t seq, const char *sender)
{
    char hex[2 * KL_MSG_ID + 1];
    char row[2 * KL_ADDR_MAX + 128];
    kl_hex_encode(id, KL_MSG_ID, hex, sizeof hex);
    /* Group messages also bind their author (1:1 labels stay as they were). */
    int n = snprintf(row, sizeof row, "%s|%s|%s|%llu|%llu%s%s", hex, outgoing ? "out" : "in", peer,
                     (unsigned long long)sent_at, (unsigned long long)seq, sender[0] ? "|" : "",
                     sender);
    if (n < 0 || (size_t)n >= sizeof row)
        return KL_ETOOBIG;
    return kl_store_label(out, cap, "messages", row);
}

int kl_store_message_add(kl_store_t *st, const kl_message_t *m, int *added)
{
    char label[2 * KL_ADDR_MAX + 256];
    sqlite3_stmt *s = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, plen = 0;
    int r;

    *added = 0;
    if (m->text_len > KL_TEXT_MAX)
        return KL_ETOOBIG;
    if ((r = message_label(label, sizeof label, m->id, m->outgoing, m->peer, m->sent_at, m->seq,
                           m->sender)))
        return r;
    cap = m->text_len + KL_PAD_BLOCK;
    buf = malloc(cap);
    if (buf == NULL)
        return KL_ENOMEM;
    if (m->text_len)
        memcpy(buf, m->text, m->text_len);
    if ((r = kl_pad(buf, m->text_len, cap, &plen)))
        goto out;
    /* INSERT OR IGNORE makes a second copy of the same message a no-op:
     * the relay delivers at least once, the user sees it exactly once. */
    if ((r = kl_store_prepare(st, "INSERT OR IGNORE INTO messages(peer, outgoing, msg_id, sent_at,"
                                  " stored_at, seq, box, sender, relay_ts)"
                                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &s)))
        goto out;
    sqlite3_bind_text(s, 1, m->peer, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, m->outgoing ? 1 : 0);
    sqlite3_bind_blob(s, 3, m->id, KL_MSG_ID, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)m->sent_at);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)m->stored_at);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)m->seq);
    /* "" for 1:1: the UNIQUE(peer, outgoing, sender, msg_id) key (store_group.c)
     * must treat every 1:1 row alike, and NULLs would all differ. */
    sqlite3_bind_text(s, 8, m->sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)(m->relay_ts ? m->relay_ts : m->stored_at));
    if ((r = kl_store_bind_sealed(st, s, 7, label, buf, plen)))
        goto out;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        r = KL_EIO;
        goto out;
    }
    *added = sqlite3_changes(st->db) > 0;
    r = 0;
out:
    sqlite3_finalize(s);
    kl_free_wipe(buf, cap);
    return r;
}

/* kl_store_message_each's rows: the message read from the row and the
 * caller's callback. */
typedef struct message_each {
    kl_message_t m;
    int (*cb)(void *ud, const kl_message_t *m);
    void *ud;
} message_each_t;

static int message_each_label(void *ctx, sqlite3_stmt *s, char *out, size_t cap)
{
    kl_message_t *m = &((message_each_t *)ctx)->m;
    memset(m, 0, sizeof *m);
    if (kl_store_column_text(s, 0, m->peer, sizeof m->peer) ||
        sqlite3_column_bytes(s, 2) != KL_MSG_ID)
        return KL_EPROTO;
    m->outgoing = sqlite3_column_int(s, 1) != 0;
    memcpy(m->id, sqlite3_column_blob(s, 2), KL_MSG_ID);
    m->sent_at = (uint64_t)sqlite3_column_int64(s, 3);
    m->stored_at = (uint64_t)sqlite3_column_int64(s, 4);
    m->seq = (uint64_t)sqlite3_column_int64(s, 5);
    const unsigned char *snd = sqlite3_column_text(s, 7);
    int slen = sqlite3_column_bytes(s, 7);
    if (snd && slen > 0) {
        if (slen > KL_ADDR_MAX)
            return KL_EPROTO;
        memcpy(m->sender, snd, (size_t)slen);
    }
    return message_label(out, cap, m->id, m->outgoing, m->peer, m->sent_at, m->seq, m->sender);
}

static int message_each_row(void *ctx, sqlite3_stmt *s, const uint8_t *pt, size_t len)
{
    message_each_t *e = ctx;
    size_t tlen = 0;
    (void)s;
    if (kl_unpad(pt, len, &tlen) != 0)
        return KL_ECRYPTO;
    e->m.text = (const char *)pt;
    e->m.text_len = tlen;
    return e->cb(e->ud, &e->m);
}

int kl_store_message_each(kl_store_t *st, const char *peer,
                          int (*cb)(void *ud, const kl_message_t *m), void *ud)
{
    static const kl_store_sealed_rows_t how = {6, message_each_label, message_each_row};
    message_each_t e = {.cb = cb, .ud = ud};
    const kl_sql_arg_t arg = KL_TEXT(peer);
    return kl_store_sealed_each(st,
                                peer ? "SELECT peer, outgoing, msg_id, sent_at, stored_at, seq, box,"
                                       " sender FROM messages WHERE peer = ?1 ORDER BY n DESC"
                                     : "SELECT peer, outgoing, msg_id, sent_at, stored_at, seq, box,"
                                       " sender FROM messages ORDER BY n DESC",
                                &arg, peer ? 1 : 0, &how, &e);
}

static int held_label(char *out, size_t cap, uint64_t seq, const char *sender)
{
    char row[KL_ADDR_MAX + 32];
    snprintf(row, sizeof row, "%llu|%s", (unsigned long long)seq, sender);
    return kl_store_label(out, cap, "held", row);
}

int kl_store_held_add(kl_store_t *st, const kl_held_t *h)
{
    char label[KL_ADDR_MAX + 96];
    sqlite3_stmt *s;
    int r = held_label(label, sizeof label, h->seq, h->sender);
    if (r || (r = kl_store_query(st, &s, "INSERT OR REPLACE INTO held(seq, sender, sender_key,"
                                         " received_at, box) VALUES(?1, ?2, ?3, ?4, ?5)",
                                 KL_ARGS(KL_INT(h->seq), KL_TEXT(h->sender),
                                         KL_BLOB(h->sender_key, 32), KL_INT(h->received_at)))))
        return r;
    return kl_store_exec_sealed(st, s, 5, label, h->body, h->body_len);
}

/* kl_store_held_each's rows: the entry read from the row and the caller's
 * callback. */
typedef struct held_each {
    kl_held_t h;
    int (*cb)(void *ud, const kl_held_t *h);
    void *ud;
} held_each_t;

static int held_each_label(void *ctx, sqlite3_stmt *s, char *out, size_t cap)
{
    kl_held_t *h = &((held_each_t *)ctx)->h;
    memset(h, 0, sizeof *h);
    if (kl_store_column_text(s, 1, h->sender, sizeof h->sender) ||
        sqlite3_column_bytes(s, 2) != 32)
        return KL_EPROTO;
    h->seq = (uint64_t)sqlite3_column_int64(s, 0);
    memcpy(h->sender_key, sqlite3_column_blob(s, 2), 32);
    h->received_at = (uint64_t)sqlite3_column_int64(s, 3);
    return held_label(out, cap, h->seq, h->sender);
}

static int held_each_row(void *ctx, sqlite3_stmt *s, const uint8_t *body, size_t len)
{
    held_each_t *e = ctx;
    (void)s;
    e->h.body = body;
    e->h.body_len = len;
    return e->cb(e->ud, &e->h);
}

int kl_store_held_each(kl_store_t *st, const char *sender, uint64_t after,
                       int (*cb)(void *ud, const kl_held_t *h), void *ud)
{
    static const kl_store_sealed_rows_t how = {4, held_each_label, held_each_row};
    held_each_t e = {.cb = cb, .ud = ud};
    return kl_store_sealed_each(st, "SELECT seq, sender, sender_key, received_at, box FROM held"
                                    " WHERE (?1 IS NULL OR sender = ?1) AND seq > ?2"
                                    " ORDER BY seq",
                                KL_ARGS(KL_TEXT(sender), KL_INT(after)), &how, &e);
}

int kl_store_held_delete(kl_store_t *st, uint64_t seq)
{
    return kl_store_run(st, "DELETE FROM held WHERE seq = ?1", KL_ARGS(KL_INT(seq)));
}

int kl_store_held_drop(kl_store_t *st, const char *sender, const uint8_t *keep, uint64_t *n)
{
    *n = 0;
    return kl_store_run_changes(st, n, "DELETE FROM held WHERE sender = ?1 AND"
                                       " (?2 IS NULL OR sender_key != ?2)",
                                KL_ARGS(KL_TEXT(sender), KL_BLOB(keep, 32)));
}

int kl_store_held_count(kl_store_t *st, const char *sender, uint64_t *n)
{
    return kl_store_int(st, n, "SELECT count(*) FROM held WHERE ?1 IS NULL OR sender = ?1",
                        KL_ARGS(KL_TEXT(sender)));
}

int kl_store_failure_add(kl_store_t *st, uint64_t seq, uint64_t at_ms, const char *reason)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO failures(seq, at, reason) VALUES(?1, ?2, ?3)",
                        KL_ARGS(KL_INT(seq), KL_INT(at_ms), KL_TEXT(reason)));
}

int kl_store_failure_count(kl_store_t *st, uint64_t *n)
{
    return kl_store_int(st, n, "SELECT count(*) FROM failures", NULL, 0);
}
