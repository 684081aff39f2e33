/* Group messages in the client: sender keys, their distribution over the
 * 1:1 sessions, sending, and decrypting one group log entry (with the fork
 * check). The rest of `receive` for groups is in group_recv.c. See group.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/senderkey.h"
#include "rpc.h"
#include "signedlog.h"
#include "store_group.h"
#include "util.h"

/* Pending entries retried per page (at most KL_SLOG_BATCH). */
#define PENDING_BATCH 32

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
        r = kl_store_end(cli->st, r);
    }
    if (r) {
        kl_senderkey_free(*out);
        *out = NULL;
    }
    return r;
}

/* Send our key (at its current position) to one member, once. */
static int give_key(kl_cli_t *cli, kl_net_t *conn, const kl_grp_t *x, const kl_senderkey_t *k,
                    const kl_group_member_t *m)
{
    kl_content_t ct = {.has_dist = 1, .dist_epoch = kl_group_epoch(x->g)};
    kl_slog_give_t out;
    int err = 0;
    snprintf(ct.dist_group, sizeof ct.dist_group, "%s", x->address);
    int r = kl_senderkey_export(k, ct.dist);
    if (r == 0)
        r = kl_slog_give_key(cli, conn, x->address, kl_senderkey_id(k), m->key, m->address, &ct,
                             &out, &err);
    kl_memzero(ct.dist, sizeof ct.dist);
    if (r == 0 && out == KL_SLOG_CONFLICT)
        kl_grp_warn(cli, x->address, "key_conflict",
                    "%s's identity key in the group differs from the one you pinned; they do not "
                    "get your group key until you check it with `kollega contact verify %s`",
                    m->address, m->address);
    else if (r == 0 && out == KL_SLOG_UNREACHABLE)
        kl_grp_warn(cli, x->address, "key_not_sent",
                    "could not give your group key to %s (%s); they cannot read your group "
                    "messages until this works (it is retried on the next send or receive)",
                    m->address,
                    err == KL_ENOTFOUND ? "they have published no prekeys" : kl_strerror(err));
    return r;
}

static int distribute(kl_cli_t *cli, kl_net_t *conn, const kl_grp_t *x, const kl_senderkey_t *k)
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

int kl_grp_distribute(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x)
{
    kl_senderkey_t *k = NULL;
    /* No keys while the relay may be showing members another history. */
    if (!is_member(x, cli->me.pk) || kl_grp_blocked(x))
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
    /* Our view of the log: receivers compare it with theirs (fork check). */
    ct.group_index = kl_group_next_index(x->g);
    kl_group_head(x->g, ct.group_head);
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
    r = kl_store_end(cli->st, r);
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

/* One try: key for the current epoch, distribution, seal, send. */
static int send_once(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const char *text, size_t len,
                     kl_message_t *m)
{
    kl_senderkey_t *k = NULL;
    uint8_t *body = NULL;
    size_t blen = 0;
    int r = kl_grp_own_key(cli, x, 1, &k);
    if (r == 0 && (r = distribute(cli, conn, x, k)) == 0 &&
        (r = kl_grp_seal(cli, x, k, text, len, m, &body, &blen)) == 0)
        r = kl_rpc_send(conn, x->address, body, blen, kl_group_next_index(x->g), NULL, &m->seq);
    kl_senderkey_free(k);
    free(body);
    return r;
}

int kl_grp_send(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const char *text, size_t len,
                kl_message_t *m)
{
    int added = 0, r = 0;
    if (!is_member(x, cli->me.pk))
        return KL_ESTATE;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (kl_grp_blocked(x))
            return KL_ECRYPTO;
        r = send_once(cli, conn, x, text, len, m);
        if (r != KL_EREFUSED || attempt ||
            kl_net_relay_error(conn) != KL_WIRE_ERR_CONFLICT)
            break;
        /* A remove or leave we had not seen: catch up (the epoch moves on,
         * so the next try makes and distributes a new key) and retry. */
        if ((r = kl_grp_sync_ops(cli, conn, x)))
            return r;
        if (!is_member(x, cli->me.pk))
            return KL_ESTATE;
    }
    if (r)
        return r;
    m->stored_at = kl_now_ms();
    if ((r = kl_store_begin(cli->st)) == 0) {
        r = kl_store_message_add(cli->st, m, &added);
        r = kl_store_end(cli->st, r);
    }
    if (r) {
        kl_cli_err("the message was sent, but could not be saved in your history (%s)",
                   kl_strerror(r));
        r = 0;
    }
    return r;
}

int kl_grp_store_dist(kl_store_t *st, const char *grp, const uint8_t owner[32], uint64_t epoch,
                      const uint8_t *dist, size_t len)
{
    kl_senderkey_t *k = NULL;
    kl_store_group_t row;
    uint8_t *ser = NULL;
    size_t slen = 0;
    /* Only for groups we know (a row exists once we saw the group listed
     * or its log): nobody can fill our store with keys for made-up groups. */
    int r = kl_store_group_get(st, grp, &row);
    if (r)
        return r == KL_ENOTFOUND ? 0 : r;
    r = kl_senderkey_import(&k, dist, len);
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
    int matched;                 /* a key with this key_id from a member (now or before) */
    int found;
    uint8_t owner[32];
    uint64_t key_epoch;          /* the epoch the key's distribution record named */
    uint8_t *ser;                /* the advanced receiving state */
    size_t ser_len;
    uint32_t key_id;
    kl_content_t content;
} attempt_t;

static int try_key(void *ud, const uint8_t owner[32], uint64_t epoch, const uint8_t *ser,
                   size_t len)
{
    attempt_t *a = ud;
    kl_senderkey_t *k = NULL;
    uint8_t ad[KL_ADDR_MAX + 32];
    uint8_t *pt = NULL;
    size_t ptlen = 0, cap = a->len;
    /* A key is only good if its owner is or was a member in OUR validated
     * copy of the log: a relay cannot make us read (or attribute) messages
     * by anyone it slipped in. Whether it was one at the message's view of
     * the log is checked once the content (and so the view) is known. */
    if (!kl_group_was_member(a->x->g, owner, NULL))
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
            a->key_epoch = epoch;
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

/* Store a decrypted entry: message (*m, text borrowed from a), advanced
 * key, optionally the new cursor (row) or the deletion of its pending row.
 * Inside the caller's transaction; *added = the message is new (shown by
 * the caller only after its commit, so it appears exactly once). */
static int store_found(kl_grp_rx_t *c, attempt_t *a, uint64_t seq, uint64_t ts,
                       kl_store_group_t *row, int from_pending, kl_message_t *m, int *added)
{
    *added = 0;
    memset(m, 0, sizeof *m);
    kl_group_member_t author;
    memcpy(m->id, a->content.id, KL_MSG_ID);
    snprintf(m->peer, sizeof m->peer, "%s", c->x->address);
    /* The author as it was when it wrote (it may have left since). */
    if (!kl_group_member_at_index(c->x->g, a->owner, a->content.group_index, &author))
        return KL_ESTATE;
    snprintf(m->sender, sizeof m->sender, "%s", author.address);
    m->sent_at = a->content.sent_at;
    m->stored_at = kl_now_ms();
    m->relay_ts = ts;
    m->seq = seq;
    m->text = a->content.text;
    m->text_len = a->content.text_len;
    int r = kl_store_message_add(c->cli->st, m, added);
    if (r == 0)
        r = kl_store_senderkey_put(c->cli->st, c->x->address, a->owner, a->key_id, a->key_epoch, 0,
                                   1, a->ser, a->ser_len);
    if (r == 0 && from_pending)
        r = kl_store_gpending_delete(c->cli->st, c->x->address, seq);
    if (r == 0 && row)
        r = kl_store_group_put(c->cli->st, row);
    return r;
}

/* After the commit: count and show. */
static void shown(kl_grp_rx_t *c, const kl_message_t *m, int added)
{
    if (!added)
        return;
    c->stored++;
    c->s->stored++;
    if (c->s->on_message)
        c->s->on_message(c->s->ud, m);
}

/* What the view check (group.h) makes of a decrypted message. */
enum { VIEW_OK, VIEW_DIFFERS, VIEW_LATER, VIEW_REFUSED };

/* A message bound to view gi (its author's next_index) is its author's only
 * if the author was a member at that view (not necessarily now: a farewell
 * before a leave stays readable), and its sender key must be the one made
 * for the epoch of that view (after a removal everyone renews its key).
 * VIEW_OK, or VIEW_REFUSED with why (cap bytes) saying so. */
static int check_bound(const kl_grp_rx_t *c, const attempt_t *a, char *why, size_t cap)
{
    uint64_t gi = a->content.group_index, epoch = 0;
    if (!kl_group_member_at_index(c->x->g, a->owner, gi, NULL)) {
        snprintf(why, cap, "it is bound to index %llu of the group's log, where its author was "
                 "not a member (written after they left or were removed, or replayed)",
                 (unsigned long long)gi);
        return VIEW_REFUSED;
    }
    if (kl_group_epoch_at(c->x->g, gi, &epoch) != 0) {
        snprintf(why, cap, "it is bound to index %llu, older than the history of members your "
                 "client keeps", (unsigned long long)gi);
        return VIEW_REFUSED;
    }
    if (epoch != a->key_epoch) {
        snprintf(why, cap, "it was encrypted with its author's group key of epoch %llu, but at "
                 "index %llu the group's epoch was %llu (after a removal or departure every "
                 "member must use a renewed key)", (unsigned long long)a->key_epoch,
                 (unsigned long long)gi, (unsigned long long)epoch);
        return VIEW_REFUSED;
    }
    return VIEW_OK;
}

/* Compare the author's claimed view of the log (Content.group_index and
 * group_head) with ours. A claim beyond our log first makes us fetch the
 * ops (x and the store move on); offline it is decided later (VIEW_LATER:
 * the entry is kept). VIEW_DIFFERS with *at = the log index where the
 * claim departs from our log: its head differs there, or it names ops the
 * relay does not give us. A member's claim is only its word, so this never
 * blocks the group (that needs the relay's own proof: group.c). */
static int check_view(kl_grp_rx_t *c, const attempt_t *a, int *verdict, uint64_t *at,
                      char *why, size_t cap)
{
    uint64_t gi = a->content.group_index;
    uint8_t head[32];
    *verdict = VIEW_OK;
    *at = 0;
    if (gi == 0) {
        /* Every client binds its messages to its view of the log. */
        snprintf(why, cap, "it names no index of the group's log (its author's kollega is too "
                 "old: they should update it)");
        *verdict = VIEW_REFUSED;
        return 0;
    }
    if (gi > kl_group_next_index(c->x->g)) {
        if (c->conn == NULL) {
            *verdict = VIEW_LATER;
            return 0;
        }
        int r = kl_grp_sync_ops(c->cli, c->conn, c->x);
        if (r && r != KL_EREFUSED)
            return r;
    }
    uint64_t next = kl_group_next_index(c->x->g);
    if (gi > next) {
        *verdict = VIEW_DIFFERS;
        *at = next;                 /* ops the relay does not give us */
    } else if (kl_grp_head_at(c->x, gi, head) == 0 &&
               kl_memcmp(head, a->content.group_head, 32) != 0) {
        *verdict = VIEW_DIFFERS;
        *at = gi - 1;               /* differs at op gi - 1 or before */
    } else {
        *verdict = check_bound(c, a, why, cap);
    }
    return 0;
}

/* Store the outcome of a decrypted entry in one transaction: the message
 * (VIEW_OK: the author's dispute, if any, ends), the author's dispute
 * (VIEW_DIFFERS: the message is not shown), or the entry kept for later
 * (VIEW_LATER). A fresh entry moves the cursor; one from the pending list
 * leaves it. Warnings and the message are shown after the commit. */
static int settle(kl_grp_rx_t *c, attempt_t *a, uint64_t seq, uint64_t ts, const uint8_t *body,
                  size_t len, int from_pending)
{
    kl_store_group_t row;
    kl_message_t m;
    kl_group_member_t who;
    char author[KL_ADDR_MAX + 1], why[320] = "";
    int verdict = VIEW_OK, added = 0, had = 0;
    uint64_t at = 0, dropped = 0;
    memset(&m, 0, sizeof m);
    int r = check_view(c, a, &verdict, &at, why, sizeof why);
    if (r || (r = kl_store_group_row(c->cli->st, c->x->address, &row)))
        return r;
    if (kl_group_was_member(c->x->g, a->owner, &who))
        snprintf(author, sizeof author, "%s", who.address);
    else
        kl_hex_encode(a->owner, 8, author, sizeof author);
    if (!from_pending)
        row.cursor = seq;
    if ((r = kl_store_begin(c->cli->st)))
        return r;
    r = kl_store_group_dispute_get(c->cli->st, c->x->address, a->owner, &had);
    if (r == 0 && verdict == VIEW_OK) {
        r = store_found(c, a, seq, ts, from_pending ? NULL : &row, from_pending, &m, &added);
        if (r == 0 && had)
            r = kl_store_group_dispute_delete(c->cli->st, c->x->address, a->owner);
    } else if (r == 0 && (verdict == VIEW_DIFFERS || verdict == VIEW_REFUSED)) {
        if (!had && verdict == VIEW_DIFFERS)
            r = kl_store_group_dispute_put(c->cli->st, c->x->address, a->owner, at);
        if (r == 0)
            r = from_pending ? kl_store_gpending_delete(c->cli->st, c->x->address, seq)
                             : kl_store_group_put(c->cli->st, &row);
    } else if (r == 0 && !from_pending) {
        r = kl_store_gpending_add(c->cli->st, c->x->address, seq, ts, body, len, &dropped);
        r = r ? r : kl_store_group_put(c->cli->st, &row);
    }
    r = r ? r : kl_store_commit(c->cli->st);
    if (r) {
        kl_store_rollback(c->cli->st);
        return r;
    }
    if (verdict == VIEW_OK) {
        if (had)
            kl_grp_notice(c->cli, c->x->address, "history_agrees", author,
                          "%s: %s's client shows the same history of the group as yours again; "
                          "their messages are shown again.", c->x->address, author);
        shown(c, &m, added);
    } else if (verdict == VIEW_DIFFERS) {
        c->refused++;
        if (!had)
            kl_grp_warn(c->cli, c->x->address, "history_differs",
                        "a message from %s was not shown: %s's client claims a history of the "
                        "group that differs from yours at index %llu; either %s's client "
                        "misbehaves or the relay shows members different histories. Compare "
                        "`kollega group members %s` with %s in person or by phone", author,
                        author, (unsigned long long)at, author, c->x->address, author);
    } else if (verdict == VIEW_REFUSED) {
        c->refused++;
        kl_grp_warn(c->cli, c->x->address, "refused",
                    "a message from %s was refused: %s", author, why);
    } else if (!from_pending) {
        c->pending_new++;
        c->dropped += dropped;
    }
    return 0;
}

int kl_grp_entry(kl_grp_rx_t *c, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len)
{
    kl_store_group_t row;
    attempt_t a;
    int own = 0;
    uint64_t dropped = 0;
    uint32_t key_id = 0;
    int r = kl_store_group_row(c->cli->st, c->x->address, &row);
    if (r || seq <= row.cursor)
        return r;
    if (kl_senderkey_msg_key_id(body, len, &key_id) == 0 &&
        (r = kl_store_senderkey_is_own(c->cli->st, c->x->address, c->cli->me.pk, key_id, &own)))
        return r;
    if (own) {
        /* Our own message, already in history. */
        row.cursor = seq;
        if ((r = kl_store_begin(c->cli->st)))
            return r;
        r = kl_store_group_put(c->cli->st, &row);
        goto done;
    }
    if ((r = decrypt_entry(c, body, len, &a)))
        return r;
    if (a.found) {
        r = settle(c, &a, seq, ts, body, len, 0);
        attempt_free(&a);
        return r;
    }
    row.cursor = seq;
    if ((r = kl_store_begin(c->cli->st))) {
        attempt_free(&a);
        return r;
    }
    if (!a.matched) {
        /* The author's key has not reached us yet: keep the entry. */
        r = kl_store_gpending_add(c->cli->st, c->x->address, seq, ts, body, len, &dropped);
        r = r ? r : kl_store_group_put(c->cli->st, &row);
        if (r == 0) {
            c->pending_new++;
            c->dropped += dropped;
        }
    } else {
        r = kl_store_failure_add(c->cli->st, seq, kl_now_ms(), "group message did not decrypt");
        r = r ? r : kl_store_group_put(c->cli->st, &row);
        if (r == 0)
            c->failed++;
    }
    attempt_free(&a);
done:
    return kl_store_end(c->cli->st, r);
}

/* One page of pending entries: the copies, and the last seq and number of
 * rows the store handed over (a page ends where the next one starts). */
typedef struct pending_page {
    kl_slog_batch_t l;
    uint64_t last;
    size_t rows;
} pending_page_t;

static int collect_pending(void *ud, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len)
{
    pending_page_t *p = ud;
    p->last = seq;
    p->rows++;
    return kl_slog_batch_add(&p->l, seq, ts, body, len);
}

/* Retry kept entries (new keys may have arrived), all of them in seq
 * order, one page at a time: entries whose key never comes do not keep
 * later ones from being retried. Entries still without a key stay; they
 * are retried again on the next receive. */
int kl_grp_retry_pending(kl_grp_rx_t *c, size_t *left)
{
    pending_page_t p;
    uint64_t n = 0;
    int r;
    *left = 0;
    p.last = 0;
    do {
        p.l.n = 0;
        p.rows = 0;
        r = kl_store_gpending_each(c->cli->st, c->x->address, p.last, PENDING_BATCH,
                                   collect_pending, &p);
        for (size_t i = 0; r == 0 && i < p.l.n; i++) {
            attempt_t a;
            if ((r = decrypt_entry(c, p.l.body[i], p.l.len[i], &a)))
                break;
            /* The same view check as for a message decrypted at once. */
            if (a.found)
                r = settle(c, &a, p.l.seq[i], p.l.ts[i], p.l.body[i], p.l.len[i], 1);
            attempt_free(&a);
        }
        kl_slog_batch_clear(&p.l);
    } while (r == 0 && p.rows == PENDING_BATCH);
    if (r == 0 && (r = kl_store_gpending_count(c->cli->st, c->x->address, &n)) == 0)
        *left = (size_t)n;
    return r;
}
