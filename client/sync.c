/* The receive engine. See sync.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "contacts.h"
#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "session.h"
#include "sync.h"
#include "util.h"

/* Entries per fetch, and a bound on fetch rounds that return nothing new
 * while claiming more (a confused relay must not keep us looping). */
#define FETCH_LIMIT 100
#define MAX_EMPTY_ROUNDS 3
/* How long the ids of applied key messages are kept: longer than any relay
 * keeps an entry (30 days by default). */
#define KEY_MSG_KEEP_MS (60ull * 24 * 3600 * 1000)

static void warn_held(const kl_sync_t *s, const char *sender)
{
    if (s->quiet)
        return;
    fprintf(stderr, "kollega: held a message from %s: its identity key is not the one you "
                    "pinned. Compare safety numbers with `kollega contact verify %s` and "
                    "confirm with --confirm if they match\n", sender, sender);
}

static int get_cursor(kl_store_t *st, uint64_t *cursor)
{
    *cursor = 0;
    int r = kl_store_get_u64(st, "cursor", cursor);
    return r == KL_ENOTFOUND ? 0 : r;
}

/* Begin a transaction; *fresh = entry seq lies beyond the cursor (it was
 * not processed yet). */
static int begin_at(kl_sync_t *s, uint64_t seq, int *fresh)
{
    uint64_t cursor;
    int r = kl_store_begin(s->st);
    if (r)
        return r;
    if ((r = get_cursor(s->st, &cursor))) {
        kl_store_rollback(s->st);
        return r;
    }
    *fresh = seq > cursor;
    return 0;
}

/* Record an entry we cannot read, and move past it. */
static int record_failure(kl_sync_t *s, uint64_t seq, const char *reason)
{
    int fresh = 0;
    int r = begin_at(s, seq, &fresh);
    if (r)
        return r;
    if (fresh && (r = kl_store_failure_add(s->st, seq, kl_now_ms(), reason)) == 0)
        r = kl_store_set_u64(s->st, "cursor", seq);
    if ((r = kl_store_end(s->st, r)) || !fresh)
        return r;
    s->failed++;
    if (!s->quiet)
        fprintf(stderr, "kollega: a message was dropped (inbox entry %llu: %s)\n",
                (unsigned long long)seq, reason);
    return 0;
}

/* The content decrypted, but is addressed to someone else (a message
 * re-sealed to us by whoever received it). */
#define MISADDRESSED KL_EINVAL

static const char *reason_of(int r)
{
    switch (r) {
    case KL_ENOTFOUND: return "no session or prekey for it";
    case KL_ECRYPTO: return "authentication failed";
    case KL_EPROTO: return "malformed";
    case KL_ELIMIT: return "too far out of order";
    case KL_EREPLAY: return "a replayed session start (ignored)";
    case MISADDRESSED: return "addressed to someone else";
    default: return kl_strerror(r);
    }
}

/* Hold an entry from a sender whose key is not the pinned one (the contact
 * is flagged), or, with waiting, one whose sender cannot be vouched for
 * right now (its relay is unreachable): nothing about any contact changes,
 * and the next receive judges it again (kl_sync_retry_held). */
static int hold(kl_sync_t *s, uint64_t seq, const kl_inbound_t *in, const uint8_t *body,
                size_t len, int waiting)
{
    kl_held_t h;
    int fresh = 0;
    int r = begin_at(s, seq, &fresh);
    if (r)
        return r;
    if (fresh) {
        memset(&h, 0, sizeof h);
        h.seq = seq;
        memcpy(h.sender, in->sender, sizeof h.sender);
        memcpy(h.sender_key, in->sender_ik, 32);
        h.received_at = kl_now_ms();
        h.body = body;
        h.body_len = len;
        if ((r = kl_store_held_add(s->st, &h)) == 0)
            r = kl_store_set_u64(s->st, "cursor", seq);
    }
    if ((r = kl_store_end(s->st, r)) || !fresh)
        return r;
    if (waiting) {
        s->waiting++;
    } else {
        s->held++;
        warn_held(s, in->sender);
    }
    return 0;
}

/* Decrypt and store in one transaction: the message (deduplicated by id),
 * the new ratchet state, the consumed one-time prekey and, when cursor_seq
 * is non-zero, the new cursor; held_seq != 0 also deletes that held entry.
 * *bad gets a decryption error (the caller records it) while the return
 * value is reserved for store failures. */
static int store_decrypted(kl_sync_t *s, const kl_inbound_t *in, uint64_t seq,
                           int advance_cursor, uint64_t held_seq, int *bad)
{
    kl_decrypted_t d;
    kl_message_t m;
    int added = 0, unseen = 0;
    *bad = 0;
    memset(&d, 0, sizeof d);
    int r = begin_at(s, seq, &unseen);
    if (r)
        return r;
    /* Another kollega process may have processed it meanwhile. */
    if (advance_cursor && !unseen) {
        kl_store_rollback(s->st);
        return 0;
    }
    int dr = kl_session_decrypt(s->st, s->me, in, &d);
    if (dr == 0 && strcmp(d.content.to, s->me->address) != 0)
        dr = MISADDRESSED;
    if (dr == KL_EIO || dr == KL_ENOMEM) {
        /* Our own failure, not the message's: keep it for a retry. */
        kl_store_rollback(s->st);
        return dr;
    }
    if (dr) {
        kl_store_rollback(s->st);
        *bad = dr;
        return 0;
    }
    if (d.content.has_dist || d.content.has_ckey) {
        int fresh = 0;
        /* Applied once only, like text: a replayed key message must not
         * wind a sender key back or re-apply an old session state. */
        if ((r = kl_store_key_msg_add(s->st, d.content.id, kl_now_ms(), KEY_MSG_KEEP_MS,
                                      &fresh)))
            goto fail;
        if (!fresh) {
            if ((advance_cursor && (r = kl_store_set_u64(s->st, "cursor", seq))) ||
                (held_seq && (r = kl_store_held_delete(s->st, held_seq))))
                goto fail;
            if ((r = kl_store_commit(s->st)) == 0)
                s->duplicates++;
            goto out;
        }
        /* A key, not a message. A group sender key: stored per (group,
         * sender key, key_id) and used only while the sender is a member
         * in our validated copy of the group's log (group_msg.c checks at
         * decryption), since its admission may reach us after its key. A
         * members-only channel's key: stored per (channel, epoch, sender)
         * and used only while the sender is the channel's owner in our
         * validated copy of its log (channel_keys.c checks at use). */
        if ((d.content.has_token &&
             (r = kl_store_peer_token_put(s->st, in->sender, d.content.token))) ||
            (r = d.content.has_dist
                     ? kl_grp_store_dist(s->st, d.content.dist_group, in->sender_ik,
                                         d.content.dist_epoch, d.content.dist,
                                         sizeof d.content.dist)
                     : kl_chan_store_key(s->st, d.content.ckey_channel, in->sender_ik,
                                         d.content.ckey_epoch, d.content.ckey)) ||
            (r = kl_session_apply(s->st, in->sender, &d)) ||
            (advance_cursor && (r = kl_store_set_u64(s->st, "cursor", seq))) ||
            (held_seq && (r = kl_store_held_delete(s->st, held_seq))))
            goto fail;
        if ((r = kl_store_commit(s->st)) == 0)
            s->keys++;
        goto out;
    }
    memset(&m, 0, sizeof m);
    memcpy(m.id, d.content.id, KL_MSG_ID);
    memcpy(m.peer, in->sender, sizeof m.peer);
    m.sent_at = d.content.sent_at;
    m.stored_at = kl_now_ms();
    m.seq = seq;
    m.text = d.content.text;
    m.text_len = d.content.text_len;
    if ((r = kl_store_message_add(s->st, &m, &added)))
        goto fail;
    /* A duplicate (same id) changes nothing but the cursor: replaying an old
     * prekey message must not replace a live session. */
    if (added && (r = kl_session_apply(s->st, in->sender, &d)))
        goto fail;
    /* The contact's delivery token: the sender is proven (pinned key). */
    if (added && d.content.has_token &&
        (r = kl_store_peer_token_put(s->st, in->sender, d.content.token)))
        goto fail;
    if (advance_cursor && (r = kl_store_set_u64(s->st, "cursor", seq)))
        goto fail;
    if (held_seq && (r = kl_store_held_delete(s->st, held_seq)))
        goto fail;
    if ((r = kl_store_commit(s->st)))
        goto out;
    if (added) {
        s->stored++;
        if (s->on_message)
            s->on_message(s->ud, &m);
    } else {
        s->duplicates++;
    }
    goto out;
fail:
    kl_store_rollback(s->st);
out:
    kl_decrypted_free(&d);
    return r;
}

static int vouch(kl_sync_t *s, const char *address, const uint8_t key[32], int *vouched)
{
    if (s->vouch)
        return s->vouch(s->vouch_ud, address, key, vouched);
    return kl_contacts_vouch(s->conn, address, key, vouched);
}

/* A held entry that can never be read or trusted: recorded as a failure
 * (naming nobody) and deleted; the caller says so. */
static int drop_held(kl_sync_t *s, uint64_t held_seq, const char *reason)
{
    int r = kl_store_begin(s->st);
    if (r)
        return r;
    r = kl_store_failure_add(s->st, held_seq, kl_now_ms(), reason);
    if (r == 0)
        r = kl_store_held_delete(s->st, held_seq);
    r = kl_store_end(s->st, r);
    if (r == 0)
        s->failed++;
    return r;
}

/* A claim that failed: a new inbox entry is recorded (cursor moves on), a
 * held one dropped. */
static int refuse(kl_sync_t *s, uint64_t seq, uint64_t held_seq, const char *reason)
{
    if (!held_seq)
        return record_failure(s, seq, reason);
    int r = drop_held(s, held_seq, reason);
    if (r == 0 && !s->quiet)
        fprintf(stderr, "kollega: a held message was dropped (%s)\n", reason);
    return r;
}

/* refuse() for a failure that a decryption result explains. */
static int refuse_bad(kl_sync_t *s, uint64_t seq, uint64_t held_seq, int bad)
{
    if (bad == KL_EREPLAY)
        s->replays++;
    return refuse(s, seq, held_seq, reason_of(bad));
}

/* An entry whose claimed sender is not a contact pinned to the claimed key
 * (unknown, pinned to another key, or flagged). Proof comes first: the
 * entry must decrypt under a session bound to the claimed key (read-only
 * trial; nothing is written), then the claimed address's relay must vouch
 * for that key. Only then may the contact be pinned or flagged. A claim
 * failing either is recorded as a failure that names nobody. When the
 * claimed address's relay cannot answer now (its federation link is down)
 * the entry waits, held, so one unreachable relay never stalls the inbox.
 * held_seq != 0: the entry is a held one being judged again. */
static int judge_claim(kl_sync_t *s, uint64_t seq, uint64_t held_seq, const kl_inbound_t *in,
                       const uint8_t *body, size_t len)
{
    kl_decrypted_t d;
    int vouched = 0, accept = 0, bad = 0;
    int dr = kl_session_decrypt(s->st, s->me, in, &d);
    if (dr == 0 && strcmp(d.content.to, s->me->address) != 0)
        dr = MISADDRESSED;
    if (dr == 0)
        kl_decrypted_free(&d);
    if (dr == KL_EIO || dr == KL_ENOMEM)
        return dr;
    if (dr == KL_EREPLAY)
        return refuse_bad(s, seq, held_seq, dr);
    if (dr) {
        s->unproven++;
        return refuse(s, seq, held_seq, "its claimed sender is unproven: it did not decrypt");
    }
    int r = vouch(s, in->sender, in->sender_ik, &vouched);
    if (r == KL_EAGAIN)
        return held_seq ? 0 : hold(s, seq, in, body, len, 1);
    if (r) {
        s->conn_error = 1;
        return r;
    }
    if (!vouched) {
        s->forged++;
        return refuse(s, seq, held_seq, "signed by a key that the relay of the sender it claims "
                                        "does not know: it may come from anyone");
    }
    if ((r = kl_contacts_on_proven(s->st, in->sender, in->sender_ik, &accept)))
        return r;
    if (!accept) {
        if (!held_seq)
            return hold(s, seq, in, body, len, 0);
        s->held++;
        warn_held(s, in->sender);
        return 0;
    }
    r = store_decrypted(s, in, seq, held_seq == 0, held_seq, &bad);
    return r || !bad ? r : refuse_bad(s, seq, held_seq, bad);
}

int kl_sync_entry(kl_sync_t *s, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len)
{
    kl_inbound_t in;
    kl_contact_t c;
    uint64_t cursor = 0;
    int bad = 0;
    (void)ts;
    int r = get_cursor(s->st, &cursor);
    if (r || seq <= cursor)
        return r;
    r = kl_session_open(s->me, body, len, &in);
    if (r == KL_ENOMEM)
        return r;
    if (r)
        return record_failure(s, seq, r == KL_ECRYPTO ? "not sealed to this identity"
                                                      : "malformed envelope");
    r = kl_store_contact_get(s->st, in.sender, &c);
    if (r == 0 && c.has_key && kl_memcmp(c.key, in.sender_ik, 32) == 0) {
        /* The pinned key: decryption alone decides. */
        r = store_decrypted(s, &in, seq, 1, 0, &bad);
        if (r == 0 && bad)
            r = refuse_bad(s, seq, 0, bad);
    } else if (r == 0 || r == KL_ENOTFOUND) {
        r = judge_claim(s, seq, 0, &in, body, len);
    }
    kl_memzero(&c, sizeof c);
    kl_inbound_free(&in);
    return r;
}

int kl_sync_fetch_all(kl_sync_t *s)
{
    int empty = 0;
    s->conn_error = 0;
    s->store_error = 0;
    for (;;) {
        kl_rpc_batch_t b;
        uint64_t cursor = 0, top = 0;
        int r = get_cursor(s->st, &cursor);
        if (r) {
            s->store_error = r;
            return r;
        }
        if ((r = kl_rpc_fetch(s->conn, NULL, cursor, FETCH_LIMIT, &b)))
            return r;
        int more = b.more;
        for (size_t i = 0; r == 0 && i < b.n; i++) {
            const kl_rpc_entry_t *e = &b.entries[i];
            r = kl_sync_entry(s, e->seq, e->ts, e->body, e->len);
            if (r && !s->conn_error)
                s->store_error = r;
            else if (r == 0 && e->seq > top)
                top = e->seq;
        }
        kl_rpc_batch_free(&b);
        /* Everything up to top is committed locally: the relay may drop it. */
        if (top && (r == 0 || top > cursor)) {
            int ar = kl_rpc_ack(s->conn, NULL, top);
            if (r == 0)
                r = ar;
        }
        if (r)
            return r;
        if (!more || (top <= cursor && ++empty >= MAX_EMPTY_ROUNDS))
            break;
    }
    /* Entries that waited for a relay to vouch for their sender. */
    int r = kl_sync_retry_held(s);
    if (r && !s->conn_error)
        s->store_error = r;
    return r;
}

/* Held messages are released in batches so memory stays bounded however
 * many there are. */
#define HELD_BATCH 32

typedef struct held_list {
    size_t n;
    uint64_t seq[HELD_BATCH];
    uint8_t key[HELD_BATCH][32];
    uint8_t *body[HELD_BATCH];
    size_t len[HELD_BATCH];
} held_list_t;

static int collect_held(void *ud, const kl_held_t *h)
{
    held_list_t *l = ud;
    uint8_t *b = malloc(h->body_len ? h->body_len : 1);
    if (b == NULL)
        return KL_ENOMEM;
    memcpy(b, h->body, h->body_len);
    l->seq[l->n] = h->seq;
    memcpy(l->key[l->n], h->sender_key, 32);
    l->body[l->n] = b;
    l->len[l->n] = h->body_len;
    l->n++;
    return l->n == HELD_BATCH ? 1 : 0;
}

static void held_list_clear(held_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        kl_free_wipe(l->body[i], l->len[i] ? l->len[i] : 1);
    l->n = 0;
}

/* The next batch of held entries of sender (all when NULL) after seq
 * `after` into l (emptied first); *more = the store may hold more. */
static int next_held(kl_sync_t *s, const char *sender, uint64_t after, held_list_t *l, int *more)
{
    held_list_clear(l);
    int r = kl_store_held_each(s->st, sender, after, collect_held, l);
    *more = r == 1;
    return r < 0 ? r : 0;
}

/* Decrypt and store one held message from sender (pinned key key). */
static int release_one(kl_sync_t *s, const char *sender, const uint8_t key[32],
                       const held_list_t *l, size_t i, size_t *released)
{
    kl_inbound_t in;
    int bad = 0, r = 0;
    if (kl_session_open(s->me, l->body[i], l->len[i], &in) != 0 ||
        kl_memcmp(in.sender_ik, key, 32) != 0 || strcmp(in.sender, sender) != 0) {
        kl_inbound_free(&in);
        bad = KL_ECRYPTO;
    } else {
        size_t before = s->stored;
        r = store_decrypted(s, &in, l->seq[i], 0, l->seq[i], &bad);
        if (r == 0 && !bad && s->stored > before)
            (*released)++;
        kl_inbound_free(&in);
    }
    if (r || !bad)
        return r;
    /* It can never be read: count it and let it go. */
    if ((r = drop_held(s, l->seq[i], reason_of(bad))) == 0 && !s->quiet)
        fprintf(stderr, "kollega: a held message from %s could not be decrypted\n", sender);
    return r;
}

int kl_sync_release_held(kl_sync_t *s, const char *sender, size_t *released)
{
    held_list_t l;
    kl_contact_t c;
    uint64_t after = 0;
    int more = 1;
    *released = 0;
    l.n = 0;
    int r = kl_store_contact_get(s->st, sender, &c);
    if (r)
        return r;
    if (!c.has_key || c.key_changed)
        return 0;
    while (r == 0 && more && (r = next_held(s, sender, after, &l, &more)) == 0)
        for (size_t i = 0; i < l.n && r == 0; i++) {
            after = l.seq[i];
            /* Only messages from the key now pinned; others stay held. */
            if (kl_memcmp(l.key[i], c.key, 32) == 0)
                r = release_one(s, sender, c.key, &l, i, released);
        }
    held_list_clear(&l);
    return r;
}

/* Held entries judged again per receive, at most (the rest next time). */
#define RETRY_MAX 128

/* Held entries of senders whose keys wait for nobody's decision: those that
 * waited for a relay to vouch, and those whose key became the pinned one.
 * Entries held for a flagged contact's pending key wait for the user. */
int kl_sync_retry_held(kl_sync_t *s)
{
    held_list_t l;
    uint64_t after = 0;
    size_t seen = 0;
    int r = 0, more = 1;
    l.n = 0;
    while (r == 0 && more && seen < RETRY_MAX &&
           (r = next_held(s, NULL, after, &l, &more)) == 0) {
        for (size_t i = 0; i < l.n && r == 0; i++) {
            kl_inbound_t in;
            kl_contact_t c;
            after = l.seq[i];
            seen++;
            if (kl_session_open(s->me, l.body[i], l.len[i], &in) != 0) {
                r = refuse(s, 0, l.seq[i], "malformed envelope");
                continue;
            }
            int cr = kl_store_contact_get(s->st, in.sender, &c);
            if (cr && cr != KL_ENOTFOUND) {
                r = cr;
            } else if (cr == 0 && c.has_pending && kl_memcmp(c.pending, in.sender_ik, 32) == 0) {
                r = 0; /* the user decides: contact verify --confirm or reject */
            } else if (cr == 0 && c.has_key && kl_memcmp(c.key, in.sender_ik, 32) == 0) {
                size_t released = 0;
                kl_inbound_free(&in);
                r = release_one(s, c.address, c.key, &l, i, &released);
                continue;
            } else {
                r = judge_claim(s, l.seq[i], l.seq[i], &in, l.body[i], l.len[i]);
            }
            kl_memzero(&c, sizeof c);
            kl_inbound_free(&in);
        }
    }
    held_list_clear(&l);
    return r;
}
