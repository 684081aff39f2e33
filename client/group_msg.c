/* Group messages in the client: sender keys, their distribution over the
 * 1:1 sessions, sending, and the group half of `receive`. See group.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts.h"
#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/senderkey.h"
#include "outbound.h"
#include "store_group.h"
#include "util.h"

#define FETCH_LIMIT 100
#define PENDING_BATCH 32
#define MAX_FETCH_ROUNDS 1000
#define DAY_MS (24ull * 3600ull * 1000ull)
/* Groups one receive visits beyond those the relay lists. */
#define MAX_KNOWN 256

/* AD of a group message: the group address || the author's identity key. */
static size_t make_ad(const char *grp, const uint8_t owner[32], uint8_t *ad, size_t cap)
{
    size_t n = strlen(grp);
    if (n + 32 > cap)
        return 0;
    memcpy(ad, grp, n);
    memcpy(ad + n, owner, 32);
    return n + 32;
}

static int is_member(const kl_grp_t *x, const uint8_t key[32])
{
    return kl_group_role_of(x->g, key) != KL_ROLE_NONE;
}

static int member_address(const kl_grp_t *x, const uint8_t key[32], char *out, size_t cap)
{
    kl_group_member_t m;
    for (size_t i = 0; i < kl_group_member_count(x->g); i++)
        if (kl_group_member_at(x->g, i, &m) == 0 && kl_memcmp(m.key, key, 32) == 0) {
            snprintf(out, cap, "%s", m.address);
            return 0;
        }
    return KL_ENOTFOUND;
}

static int put_own(kl_store_t *st, const char *grp, const uint8_t me[32], const kl_senderkey_t *k,
                   uint64_t epoch)
{
    uint8_t *ser = NULL;
    size_t len = 0;
    int r = kl_senderkey_serialize(k, &ser, &len);
    if (r == 0)
        r = kl_store_senderkey_put(st, grp, me, kl_senderkey_id(k), epoch, 1, 1, ser, len);
    kl_free_wipe(ser, len);
    return r;
}

/* Our sender key for the group's current epoch, made (and committed) when
 * there is none or the epoch moved on since it was made. */
int kl_grp_own_key(kl_cli_t *cli, const kl_grp_t *x, int create, kl_senderkey_t **out)
{
    uint8_t *ser = NULL;
    size_t len = 0;
    uint32_t key_id = 0;
    uint64_t epoch = 0, now_epoch = kl_group_epoch(x->g);
    *out = NULL;
    int r = kl_store_senderkey_own(cli->st, x->address, cli->me.pk, &key_id, &epoch, &ser, &len);
    if (r == 0 && epoch == now_epoch) {
        r = kl_senderkey_deserialize(out, ser, len);
        kl_free_wipe(ser, len);
        return r;
    }
    kl_free_wipe(ser, len);
    if (r && r != KL_ENOTFOUND)
        return r;
    if (!create)
        return KL_ENOTFOUND;
    /* A fresh chain, signing key and random key_id: nobody removed since
     * the last one can read what it encrypts. */
    for (int tries = 0; tries < 8; tries++) {
        int own = 1;
        kl_random(&key_id, sizeof key_id);
        if (key_id == 0 ||
            (r = kl_store_senderkey_is_own(cli->st, x->address, cli->me.pk, key_id, &own)))
            continue;
        if (!own)
            break;
    }
    if (r)
        return r;
    if ((r = kl_senderkey_new(out, key_id)))
        return r;
    if ((r = kl_store_begin(cli->st)) == 0) {
        r = put_own(cli->st, x->address, cli->me.pk, *out, now_epoch);
        r = r ? r : kl_store_commit(cli->st);
        if (r)
            kl_store_rollback(cli->st);
    }
    if (r) {
        kl_senderkey_free(*out);
        *out = NULL;
    }
    return r;
}

/* Send our key (at its current position) to one member, once. */
static int give_key(kl_cli_t *cli, kl_conn_t *conn, const kl_grp_t *x, const kl_senderkey_t *k,
                    const kl_group_member_t *m)
{
    kl_contact_t c;
    kl_content_t ct;
    uint64_t seq = 0;
    int has = 0;
    uint32_t key_id = kl_senderkey_id(k);
    int r = kl_store_sk_sent_has(cli->st, x->address, key_id, m->key, &has);
    if (r || has)
        return r;
    /* The member's key comes from the signed log; a contact pinned to
     * another key is a conflict the user must resolve first. */
    r = kl_store_contact_get(cli->st, m->address, &c);
    if (r == 0 && (!c.has_key || c.key_changed || kl_memcmp(c.key, m->key, 32) != 0)) {
        kl_grp_warn(cli, x->address, "key_conflict",
                    "%s's identity key in the group differs from the one you pinned; they do not "
                    "get your group key until you check it with `kollega contact verify %s`",
                    m->address, m->address);
        return 0;
    }
    if (r == KL_ENOTFOUND) {
        memset(&c, 0, sizeof c);
        snprintf(c.address, sizeof c.address, "%s", m->address);
        c.has_key = 1;
        memcpy(c.key, m->key, 32);
        c.added_at = kl_now_ms();
        if ((r = kl_store_begin(cli->st)))
            return r;
        r = kl_store_contact_put(cli->st, &c);
        r = r ? r : kl_store_commit(cli->st);
        if (r)
            kl_store_rollback(cli->st);
    }
    if (r)
        return r;
    memset(&ct, 0, sizeof ct);
    kl_random(ct.id, KL_MSG_ID);
    ct.sent_at = kl_now_ms();
    ct.text = (char *)"";
    snprintf(ct.to, sizeof ct.to, "%s", m->address);
    ct.has_dist = 1;
    snprintf(ct.dist_group, sizeof ct.dist_group, "%s", x->address);
    ct.dist_epoch = kl_group_epoch(x->g);
    if ((r = kl_senderkey_export(k, ct.dist)) == 0)
        r = kl_out_send_content(cli->st, &cli->me, conn, m->address, m->key, &ct, &seq);
    kl_memzero(ct.dist, sizeof ct.dist);
    if (r == KL_ENOTFOUND || r == KL_EKEYCHANGED || r == KL_ECRYPTO ||
        (r == KL_EREFUSED && kl_conn_relay_error(conn) !=
                                 KOLLEGA__RELAY__V1__ERROR_CODE__RATE_LIMITED)) {
        kl_grp_warn(cli, x->address, "key_not_sent",
                    "could not give your group key to %s (%s); they cannot read your group "
                    "messages until this works (it is retried on the next send or receive)",
                    m->address, r == KL_ENOTFOUND ? "they have published no prekeys"
                                                  : kl_strerror(r));
        return 0;
    }
    if (r)
        return r;
    if ((r = kl_store_begin(cli->st)))
        return r;
    r = kl_store_sk_sent_add(cli->st, x->address, key_id, m->key);
    r = r ? r : kl_store_commit(cli->st);
    if (r)
        kl_store_rollback(cli->st);
    return r;
}

static int distribute(kl_cli_t *cli, kl_conn_t *conn, const kl_grp_t *x, const kl_senderkey_t *k)
{
    kl_group_member_t m;
    for (size_t i = 0; i < kl_group_member_count(x->g); i++) {
        if (kl_group_member_at(x->g, i, &m) != 0 || kl_memcmp(m.key, cli->me.pk, 32) == 0)
            continue;
        int r = give_key(cli, conn, x, k, &m);
        if (r)
            return r;
    }
    return 0;
}

int kl_grp_distribute(kl_cli_t *cli, kl_conn_t *conn, kl_grp_t *x)
{
    kl_senderkey_t *k = NULL;
    if (!is_member(x, cli->me.pk))
        return 0;
    int r = kl_grp_own_key(cli, x, 0, &k);
    if (r == KL_ENOTFOUND)
        return 0;
    if (r == 0)
        r = distribute(cli, conn, x, k);
    kl_senderkey_free(k);
    return r;
}

int kl_grp_seal(kl_cli_t *cli, const kl_grp_t *x, kl_senderkey_t *k, const char *text,
                size_t len, kl_message_t *m, uint8_t **body, size_t *blen)
{
    kl_content_t ct;
    uint8_t ad[KL_ADDR_MAX + 32];
    uint8_t *pt = NULL, *out = NULL;
    size_t ptcap = 0, ptlen = 0, adlen;
    *body = NULL;
    *blen = 0;
    memset(&ct, 0, sizeof ct);
    memset(m, 0, sizeof *m);
    kl_random(m->id, KL_MSG_ID);
    m->sent_at = kl_now_ms();
    memcpy(ct.id, m->id, KL_MSG_ID);
    ct.sent_at = m->sent_at;
    ct.text = (char *)text;
    ct.text_len = len;
    snprintf(ct.to, sizeof ct.to, "%s", x->address);
    snprintf(m->peer, sizeof m->peer, "%s", x->address);
    snprintf(m->sender, sizeof m->sender, "%s", cli->me.address);
    m->outgoing = 1;
    m->text = text;
    m->text_len = len;
    adlen = make_ad(x->address, cli->me.pk, ad, sizeof ad);
    int r = kl_content_pack(&ct, &pt, &ptcap, &ptlen);
    if (r)
        return r;
    if (ptlen + KL_SENDERKEY_OVERHEAD > KL_BODY_MAX) {
        r = KL_ETOOBIG;
        goto out;
    }
    if ((out = malloc(ptlen + KL_SENDERKEY_OVERHEAD)) == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    if ((r = kl_senderkey_encrypt(k, ad, adlen, pt, ptlen, out, ptlen + KL_SENDERKEY_OVERHEAD,
                                  blen)))
        goto out;
    /* The advanced chain is committed before the body leaves: a crash
     * after this never reuses a message key. */
    if ((r = kl_store_begin(cli->st)))
        goto out;
    r = put_own(cli->st, x->address, cli->me.pk, k, kl_group_epoch(x->g));
    r = r ? r : kl_store_commit(cli->st);
    if (r)
        kl_store_rollback(cli->st);
out:
    kl_free_wipe(pt, ptcap);
    if (r) {
        free(out);
        *blen = 0;
    } else {
        *body = out;
    }
    return r;
}

int kl_grp_send(kl_cli_t *cli, kl_conn_t *conn, kl_grp_t *x, const char *text, size_t len,
                kl_message_t *m)
{
    kl_senderkey_t *k = NULL;
    uint8_t *body = NULL;
    size_t blen = 0;
    int added = 0;
    if (!is_member(x, cli->me.pk))
        return KL_ESTATE;
    int r = kl_grp_own_key(cli, x, 1, &k);
    if (r || (r = distribute(cli, conn, x, k)) ||
        (r = kl_grp_seal(cli, x, k, text, len, m, &body, &blen)) ||
        (r = kl_out_send_body(conn, x->address, body, blen, &m->seq)))
        goto out;
    m->stored_at = kl_now_ms();
    if ((r = kl_store_begin(cli->st)) == 0) {
        r = kl_store_message_add(cli->st, m, &added);
        r = r ? r : kl_store_commit(cli->st);
        if (r)
            kl_store_rollback(cli->st);
    }
    if (r) {
        kl_cli_err("the message was sent, but could not be saved in your history (%s)",
                   kl_strerror(r));
        r = 0;
    }
out:
    kl_senderkey_free(k);
    free(body);
    return r;
}

int kl_grp_store_dist(kl_store_t *st, const char *grp, const uint8_t owner[32], uint64_t epoch,
                      const uint8_t *dist, size_t len)
{
    kl_senderkey_t *k = NULL;
    uint8_t *ser = NULL;
    size_t slen = 0;
    int r = kl_senderkey_import(&k, dist, len);
    if (r)
        return r;
    if ((r = kl_senderkey_serialize(k, &ser, &slen)) == 0)
        r = kl_store_senderkey_put(st, grp, owner, kl_senderkey_id(k), epoch, 0, 0, ser, slen);
    kl_free_wipe(ser, slen);
    kl_senderkey_free(k);
    return r;
}

/* ---- receiving ---------------------------------------------------------- */

typedef struct attempt {
    const kl_grp_t *x;
    const uint8_t *body;
    size_t len;
    int matched;                 /* a key with this key_id from a current member */
    int found;
    uint8_t owner[32];
    uint8_t *ser;                /* the advanced receiving state */
    size_t ser_len;
    uint32_t key_id;
    kl_content_t content;
} attempt_t;

static int try_key(void *ud, const uint8_t owner[32], const uint8_t *ser, size_t len)
{
    attempt_t *a = ud;
    kl_senderkey_t *k = NULL;
    uint8_t ad[KL_ADDR_MAX + 32];
    uint8_t *pt = NULL;
    size_t ptlen = 0, cap = a->len;
    /* A key is only good while its owner is a member in OUR validated
     * copy of the log: a relay cannot make us read (or attribute) messages
     * by anyone it slipped in. */
    if (!is_member(a->x, owner))
        return 0;
    a->matched = 1;
    size_t adlen = make_ad(a->x->address, owner, ad, sizeof ad);
    if (kl_senderkey_deserialize(&k, ser, len) != 0)
        return 0;
    if ((pt = malloc(cap)) == NULL) {
        kl_senderkey_free(k);
        return KL_ENOMEM;
    }
    int r = kl_senderkey_decrypt(k, ad, adlen, a->body, a->len, pt, cap, &ptlen);
    if (r == 0 && kl_content_unpack(pt, ptlen, &a->content) == 0) {
        if (strcmp(a->content.to, a->x->address) != 0) {
            kl_content_free(&a->content);
        } else if (kl_senderkey_serialize(k, &a->ser, &a->ser_len) == 0) {
            memcpy(a->owner, owner, 32);
            a->key_id = kl_senderkey_id(k);
            a->found = 1;
        } else {
            kl_content_free(&a->content);
        }
    }
    kl_free_wipe(pt, cap);
    kl_senderkey_free(k);
    return a->found ? 1 : 0;
}

static void attempt_free(attempt_t *a)
{
    kl_free_wipe(a->ser, a->ser_len);
    kl_content_free(&a->content);
}


/* Decrypt an entry. 0 with a->found set, or a->found = 0 (no key yet when
 * !a->matched); errors only for our own failures. */
static int decrypt_entry(kl_grp_rx_t *c, const uint8_t *body, size_t len, attempt_t *a)
{
    uint32_t key_id = 0;
    memset(a, 0, sizeof *a);
    a->x = c->x;
    a->body = body;
    a->len = len;
    if (len > KL_BODY_MAX + 1024 || kl_senderkey_msg_key_id(body, len, &key_id) != 0) {
        a->matched = 1; /* malformed: no key will ever open it */
        return 0;
    }
    int r = kl_store_senderkey_each(c->cli->st, c->x->address, key_id, try_key, a);
    return r == 1 ? 0 : r;
}

/* The group's row, or a fresh one (cursor 0) if it has none yet. */
static int row_get(kl_store_t *st, const char *grp, kl_store_group_t *row)
{
    int r = kl_store_group_get(st, grp, row);
    if (r == KL_ENOTFOUND) {
        memset(row, 0, sizeof *row);
        snprintf(row->address, sizeof row->address, "%s", grp);
        r = 0;
    }
    return r;
}

/* Store a decrypted entry: message, advanced key, optionally the new
 * cursor or the deletion of its pending row. */
static int store_found(kl_grp_rx_t *c, attempt_t *a, uint64_t seq, kl_store_group_t *row,
                       int from_pending)
{
    kl_message_t m;
    int added = 0;
    memset(&m, 0, sizeof m);
    memcpy(m.id, a->content.id, KL_MSG_ID);
    snprintf(m.peer, sizeof m.peer, "%s", c->x->address);
    if (member_address(c->x, a->owner, m.sender, sizeof m.sender) != 0)
        return KL_ESTATE;
    m.sent_at = a->content.sent_at;
    m.stored_at = kl_now_ms();
    m.seq = seq;
    m.text = a->content.text;
    m.text_len = a->content.text_len;
    int r = kl_store_message_add(c->cli->st, &m, &added);
    if (r == 0)
        r = kl_store_senderkey_put(c->cli->st, c->x->address, a->owner, a->key_id, 0, 0, 1, a->ser,
                                   a->ser_len);
    if (r == 0 && from_pending)
        r = kl_store_gpending_delete(c->cli->st, c->x->address, seq);
    if (r == 0 && row)
        r = kl_store_group_put(c->cli->st, row);
    if (r == 0 && added) {
        c->stored++;
        c->s->stored++;
    }
    if (r == 0 && added && c->s->on_message)
        c->s->on_message(c->s->ud, &m);
    return r;
}

int kl_grp_entry(kl_grp_rx_t *c, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len)
{
    kl_store_group_t row;
    attempt_t a;
    int own = 0;
    uint32_t key_id = 0;
    int r = row_get(c->cli->st, c->x->address, &row);
    if (r || seq <= row.cursor)
        return r;
    row.cursor = seq;
    if (kl_senderkey_msg_key_id(body, len, &key_id) == 0 &&
        (r = kl_store_senderkey_is_own(c->cli->st, c->x->address, c->cli->me.pk, key_id, &own)))
        return r;
    if (own) {
        /* Our own message, already in history. */
        if ((r = kl_store_begin(c->cli->st)))
            return r;
        r = kl_store_group_put(c->cli->st, &row);
        goto done;
    }
    if ((r = decrypt_entry(c, body, len, &a)))
        return r;
    if ((r = kl_store_begin(c->cli->st))) {
        attempt_free(&a);
        return r;
    }
    if (a.found) {
        r = store_found(c, &a, seq, &row, 0);
    } else if (!a.matched) {
        /* The author's key has not reached us yet: keep the entry. */
        r = kl_store_gpending_add(c->cli->st, c->x->address, seq, ts, body, len);
        r = r ? r : kl_store_group_put(c->cli->st, &row);
        if (r == 0)
            c->pending_new++;
    } else {
        r = kl_store_failure_add(c->cli->st, seq, kl_now_ms(), "group message did not decrypt");
        r = r ? r : kl_store_group_put(c->cli->st, &row);
        if (r == 0)
            c->failed++;
    }
    attempt_free(&a);
done:
    if (r) {
        kl_store_rollback(c->cli->st);
        return r;
    }
    return kl_store_commit(c->cli->st);
}

static int call_fetch(kl_conn_t *conn, const char *grp, uint64_t after, kl_frame_t **resp)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.after = after;
    fe.limit = FETCH_LIMIT;
    fe.group = (char *)grp;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_FETCH;
    f.fetch = &fe;
    return kl_conn_call(conn, &f, KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER, resp);
}

static int call_ack(kl_conn_t *conn, const char *grp, uint64_t seq)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t *resp = NULL;
    a.seq = seq;
    a.group = (char *)grp;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_ACK;
    f.ack = &a;
    int r = kl_conn_call(conn, &f, KOLLEGA__RELAY__V1__FRAME__BODY_OK, &resp);
    kl_wire_free(resp);
    return r;
}

static int cmp_entry(const void *p, const void *q)
{
    const Kollega__Relay__V1__Entry *x = *(Kollega__Relay__V1__Entry *const *)p;
    const Kollega__Relay__V1__Entry *y = *(Kollega__Relay__V1__Entry *const *)q;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Fetch the group's log after our cursor; each entry is stored (message,
 * pending or failure) before the batch is acked. */
static int fetch_log(kl_grp_rx_t *c, kl_conn_t *conn)
{
    for (int round = 0; round < MAX_FETCH_ROUNDS; round++) {
        kl_store_group_t row;
        kl_frame_t *resp = NULL;
        uint64_t top = 0;
        int r = row_get(c->cli->st, c->x->address, &row);
        if (r || (r = call_fetch(conn, c->x->address, row.cursor, &resp)))
            return r;
        Kollega__Relay__V1__Deliver *d = resp->deliver;
        size_t n = d ? d->n_entries : 0;
        int more = d && d->more && n > 0;
        if (d && d->group && strcmp(d->group, c->x->address) != 0)
            n = 0, more = 0;
        if (n > 1)
            qsort(d->entries, n, sizeof *d->entries, cmp_entry);
        for (size_t i = 0; r == 0 && i < n; i++) {
            const Kollega__Relay__V1__Entry *e = d->entries[i];
            if (e == NULL || e->seq == 0)
                continue;
            r = kl_grp_entry(c, e->seq, e->ts, e->body.data, e->body.len);
            if (r == 0 && e->seq > top)
                top = e->seq;
        }
        kl_wire_free(resp);
        if (top) {
            int ar = call_ack(conn, c->x->address, top);
            r = r ? r : ar;
        }
        if (r || !more || top <= row.cursor)
            return r;
    }
    return 0;
}

typedef struct pend_list {
    size_t n;
    uint64_t seq[PENDING_BATCH];
    uint8_t *body[PENDING_BATCH];
    size_t len[PENDING_BATCH];
} pend_list_t;

static int collect_pending(void *ud, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len)
{
    pend_list_t *l = ud;
    (void)ts;
    if (l->n == PENDING_BATCH || len == 0)
        return 0;
    uint8_t *b = malloc(len);
    if (b == NULL)
        return KL_ENOMEM;
    memcpy(b, body, len);
    l->seq[l->n] = seq;
    l->body[l->n] = b;
    l->len[l->n] = len;
    l->n++;
    return 0;
}

/* Retry kept entries (new keys may have arrived). Entries still without a
 * key stay; they are retried again on the next receive. */
int kl_grp_retry_pending(kl_grp_rx_t *c, size_t *left)
{
    pend_list_t l;
    uint64_t n = 0;
    memset(&l, 0, sizeof l);
    *left = 0;
    int r = kl_store_gpending_each(c->cli->st, c->x->address, PENDING_BATCH, collect_pending, &l);
    for (size_t i = 0; r == 0 && i < l.n; i++) {
        attempt_t a;
        if ((r = decrypt_entry(c, l.body[i], l.len[i], &a)))
            break;
        if (a.found && (r = kl_store_begin(c->cli->st)) == 0) {
            r = store_found(c, &a, l.seq[i], NULL, 1);
            r = r ? r : kl_store_commit(c->cli->st);
            if (r)
                kl_store_rollback(c->cli->st);
        }
        attempt_free(&a);
    }
    for (size_t i = 0; i < l.n; i++)
        kl_free_wipe(l.body[i], l.len[i]);
    if (r == 0 && (r = kl_store_gpending_count(c->cli->st, c->x->address, &n)) == 0)
        *left = (size_t)n;
    return r;
}

static int purge(kl_cli_t *cli, const kl_grp_t *x)
{
    uint32_t days = kl_group_retention_days(x->g);
    uint64_t now = kl_now_ms(), n = 0;
    if (days == 0 || now < days * DAY_MS)
        return 0;
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    r = kl_store_group_purge(cli->st, x->address, now - days * DAY_MS, &n);
    r = r ? r : kl_store_commit(cli->st);
    if (r)
        kl_store_rollback(cli->st);
    return r;
}

static int retention_cb(void *ud, const kl_store_group_t *g)
{
    kl_cli_t *cli = ud;
    kl_grp_t x;
    int r = kl_grp_load(cli, g->address, &x);
    if (r)
        return r;
    r = purge(cli, &x);
    kl_grp_free(&x);
    return r;
}

int kl_grp_retention_all(kl_cli_t *cli)
{
    return kl_store_group_each(cli->st, retention_cb, cli);
}

/* Notices shown once: invited, admitted, removed. */
static int notices(kl_cli_t *cli, kl_grp_t *x)
{
    kl_store_group_t row;
    int r = kl_store_group_get(cli->st, x->address, &row);
    if (r)
        return r == KL_ENOTFOUND ? 0 : r;
    uint32_t before = row.notified;
    int member = is_member(x, cli->me.pk);
    int candidate = 0;
    kl_group_candidate_t cd;
    for (size_t i = 0; i < kl_group_candidate_count(x->g); i++)
        if (kl_group_candidate_at(x->g, i, &cd) == 0 && kl_memcmp(cd.key, cli->me.pk, 32) == 0)
            candidate = 1;
    if (candidate && x->invited_by[0] && !(row.notified & KL_GNOTE_INVITED)) {
        kl_grp_notice(cli, x->address, "invited", x->invited_by,
                      "You were invited to %s by %s. It becomes yours once the members agree; "
                      "see `kollega group members %s`.", x->address, x->invited_by, x->address);
        row.notified |= KL_GNOTE_INVITED;
    }
    if (member && x->admitted && !(row.notified & KL_GNOTE_ADMITTED)) {
        kl_grp_notice(cli, x->address, "admitted", NULL,
                      "You are now a member of %s; write with `kollega send %s TEXT`.",
                      x->address, x->address);
        row.notified |= KL_GNOTE_ADMITTED;
    }
    if (!member && x->removed && !(row.notified & KL_GNOTE_LEFT)) {
        kl_grp_notice(cli, x->address, "removed", x->removed_by,
                      "You were removed from %s by %s.", x->address, x->removed_by);
        row.notified |= KL_GNOTE_LEFT;
    }
    if (row.notified == before)
        return 0;
    if ((r = kl_store_begin(cli->st)))
        return r;
    r = kl_store_group_put(cli->st, &row);
    r = r ? r : kl_store_commit(cli->st);
    if (r)
        kl_store_rollback(cli->st);
    return r;
}

/* One group: ops, notices, keys, log, pending, retention. listed_member:
 * the relay lists us as a member (so it lets us fetch the log). */
static int receive_group(kl_cli_t *cli, kl_conn_t *conn, kl_sync_t *s, const char *grp,
                         int listed_member)
{
    kl_grp_t x;
    kl_grp_rx_t c;
    size_t left = 0;
    int r = kl_grp_load(cli, grp, &x);
    if (r)
        return r;
    r = kl_grp_sync_ops(cli, conn, &x);
    if (r == KL_EREFUSED) {
        /* Not (or no longer) allowed to read this group's log. */
        r = 0;
    } else if (r == 0) {
        r = notices(cli, &x);
        if (r == 0 && listed_member)
            r = kl_grp_distribute(cli, conn, &x);
        memset(&c, 0, sizeof c);
        c.cli = cli;
        c.s = s;
        c.x = &x;
        if (r == 0 && listed_member) {
            r = fetch_log(&c, conn);
            /* Removed between group_list and the fetch: nothing to read. */
            if (r == KL_EREFUSED)
                r = 0;
        }
        if (r == 0)
            r = kl_grp_retry_pending(&c, &left);
        if (r == 0 && (c.pending_new || (left && !is_member(&x, cli->me.pk))))
            kl_grp_warn(cli, grp, "undecryptable",
                        "%zu message%s cannot be decrypted (no sender key from %s author%s); "
                        "kept and retried when keys arrive", left, left == 1 ? "" : "s",
                        left == 1 ? "its" : "their", left == 1 ? "" : "s");
        if (r == 0 && c.failed)
            kl_grp_warn(cli, grp, "undecryptable", "%zu message%s could not be decrypted",
                        c.failed, c.failed == 1 ? "" : "s");
    }
    if (r == 0)
        r = purge(cli, &x);
    kl_grp_free(&x);
    return r;
}

typedef struct known {
    size_t n;
    char (*addr)[KL_ADDR_MAX + 1];
} known_t;

static int collect_known(void *ud, const kl_store_group_t *g)
{
    known_t *k = ud;
    if (k->n >= MAX_KNOWN)
        return 0;
    memcpy(k->addr[k->n++], g->address, KL_ADDR_MAX + 1);
    return 0;
}

int kl_grp_receive_all(kl_cli_t *cli, kl_conn_t *conn, kl_sync_t *s)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    kl_frame_t *resp = NULL;
    known_t k;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_GROUP_LIST;
    f.group_list = &gl;
    int r = kl_conn_call(conn, &f, KOLLEGA__RELAY__V1__FRAME__BODY_GROUP_LIST_RESULT, &resp);
    if (r)
        return r;
    memset(&k, 0, sizeof k);
    k.addr = calloc(MAX_KNOWN, sizeof *k.addr);
    if (k.addr == NULL) {
        kl_wire_free(resp);
        return KL_ENOMEM;
    }
    /* Groups we know but the relay no longer lists (we left or were
     * removed) are visited too, so their last ops and notices arrive. */
    r = kl_store_group_each(cli->st, collect_known, &k);
    const Kollega__Relay__V1__GroupListResult *res = resp->group_list_result;
    size_t n = res ? res->n_groups : 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const Kollega__Relay__V1__GroupInfo *gi = res->groups[i];
        char addr[KL_ADDR_MAX + 1];
        if (gi == NULL || gi->group == NULL || kl_grp_address(cli, gi->group, addr, sizeof addr))
            continue;
        r = receive_group(cli, conn, s, addr, gi->member);
        for (size_t j = 0; j < k.n; j++)
            if (strcmp(k.addr[j], addr) == 0)
                k.addr[j][0] = '\0';
    }
    for (size_t j = 0; r == 0 && j < k.n; j++)
        if (k.addr[j][0])
            r = receive_group(cli, conn, s, k.addr[j], 0);
    free(k.addr);
    kl_wire_free(resp);
    return r;
}
