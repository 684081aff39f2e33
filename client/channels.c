/* Broadcast channels in the client: the validated local copy of each
 * channel's publisher log, submitting ops, and receiving posts. See
 * channels.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "cmdline/json.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "signedlog.h"
#include "util.h"

/* ChannelFetch rounds per sync: a frame holds a few hundred ops and the
 * relay keeps at most 8192 per channel (what is left is fetched next time). */
#define MAX_FETCH_ROUNDS 64
/* Post fetch rounds per channel and receive (each up to the relay's fetch
 * limit); what is left is fetched next time. */
#define MAX_POST_ROUNDS 1000
/* Channels visited per receive. */
#define MAX_CHANNELS 512

int kl_chan_address(const kl_cli_t *cli, const char *in, char *out, size_t cap)
{
    char full[KL_ADDR_MAX + 2];
    kl_addr_t a;
    if (kl_slog_complete(cli, in, '!', full, sizeof full) != 0)
        return KL_EINVAL;
    if (!kl_channel_addr_valid(full) || kl_addr_parse(full + 1, &a) != 0 || a.is_group)
        return KL_EINVAL;
    int n = snprintf(out, cap, "!%s@%s", a.handle, a.relay);
    if (n < 0 || (size_t)n >= cap || strcmp(out, full) != 0)
        return KL_EINVAL;
    return 0;
}

/* A channel's log for the shared signed-log code (signedlog.h): an op
 * validates by kl_channel_apply. */
static uint64_t chan_next(const void *state)
{
    return kl_channel_next_index(((const kl_chan_t *)state)->c);
}

static const char *chan_apply(kl_cli_t *cli, void *state, const uint8_t *op, size_t len)
{
    kl_channel_verr_t why = KL_CV_OK;
    (void)cli;
    return kl_channel_apply(((kl_chan_t *)state)->c, op, len, NULL, &why) ? kl_channel_verr_str(why)
                                                                           : NULL;
}

static void chan_invalid_op(kl_cli_t *cli, void *state, uint64_t idx, const char *why)
{
    const char *addr = ((const kl_chan_t *)state)->address;
    kl_slog_warn(cli, addr, "invalid_op",
                 "the relay delivered an invalid operation %llu for %s (%s); ignoring it and "
                 "everything after it", (unsigned long long)idx, addr, why);
}

static kl_slog_t chan_log(kl_chan_t *x)
{
    return (kl_slog_t){x->address, x, &x->invalid, chan_next, chan_apply, chan_invalid_op, NULL,
                       NULL};
}

int kl_chan_load(kl_cli_t *cli, const char *address, kl_chan_t *x)
{
    memset(x, 0, sizeof *x);
    snprintf(x->address, sizeof x->address, "%s", address);
    int r = kl_store_channel_schema(cli->st);
    if (r == 0)
        r = kl_channel_new(&x->c, address);
    if (r)
        return r;
    r = kl_store_channel_get(cli->st, address, &x->row);
    if (r == KL_ENOTFOUND) {
        memset(&x->row, 0, sizeof x->row);
        snprintf(x->row.address, sizeof x->row.address, "%s", address);
        r = 0;
    } else if (r == 0) {
        x->has_row = 1;
    }
    kl_slog_t l = chan_log(x);
    if (r == 0)
        r = kl_slog_replay(cli, &l);
    if (r) {
        kl_chan_free(x);
        return r;
    }
    return 0;
}

void kl_chan_free(kl_chan_t *x)
{
    kl_channel_free(x->c);
    x->c = NULL;
}

int kl_chan_save_row(kl_cli_t *cli, kl_chan_t *x)
{
    int r = kl_store_channel_put(cli->st, &x->row);
    if (r == 0)
        x->has_row = 1;
    return r;
}

/* Validate and store the ops of one ChannelLog from our next index on
 * (kl_slog_take). */
static int take_ops(kl_cli_t *cli, kl_chan_t *x, const kl_rpc_oplog_t *cl, size_t *applied)
{
    kl_slog_t l = chan_log(x);
    uint64_t next = kl_channel_next_index(x->c);
    *applied = 0;
    if (cl->from_index > next)
        return KL_EPROTO; /* we asked from our next index */
    size_t skip = (size_t)(next - cl->from_index);
    return skip < cl->n_ops ? kl_slog_take(cli, &l, cl->ops + skip, cl->n_ops - skip, applied)
                            : 0;
}

int kl_chan_sync_ops(kl_cli_t *cli, kl_net_t *conn, kl_chan_t *x)
{
    for (int round = 0; round < MAX_FETCH_ROUNDS && !x->invalid; round++) {
        kl_rpc_oplog_t cl;
        size_t applied = 0;
        int r = kl_rpc_oplog_fetch(conn, x->address, kl_channel_next_index(x->c), &cl);
        if (r)
            return r;
        r = take_ops(cli, x, &cl, &applied);
        int more = cl.more && applied > 0;
        kl_rpc_oplog_free(&cl);
        if (r || !more)
            return r;
    }
    return 0;
}

static int save_row(kl_cli_t *cli, void *state)
{
    return kl_chan_save_row(cli, state);
}

static int submit_once(kl_cli_t *cli, kl_net_t *conn, kl_chan_t *x, kl_channel_opkind_t kind,
                       const uint8_t target[32], const char *target_address,
                       kl_channel_verr_t *why)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int r = kind == KL_COP_CREATE
                ? kl_channel_op_build_create(x->c, cli->me.sk, cli->me.pk, cli->me.address,
                                             kl_now_ms(), x->members_only_create, &b, &len)
                : kl_channel_op_build(x->c, cli->me.sk, cli->me.pk, cli->me.address,
                                      kl_now_ms(), kind, target, target_address, &b, &len);
    if (r)
        return r;
    r = kl_rpc_op_submit(conn, x->address, b, len);
    if (r == 0) {
        /* Accepted by the relay; it must validate here too. */
        uint64_t idx = kl_channel_next_index(x->c);
        if (kl_channel_apply(x->c, b, len, NULL, why) != 0) {
            x->invalid = 1;
            r = KL_EPROTO;
        }
        /* With the op, the row: a channel we act on is one we visit. */
        kl_slog_t l = chan_log(x);
        l.begin = save_row;
        if (r == 0)
            r = kl_slog_store(cli, &l, idx, b, len);
    }
    free(b);
    return r;
}

int kl_chan_submit(kl_cli_t *cli, kl_net_t *conn, kl_chan_t *x, kl_channel_opkind_t kind,
                   const uint8_t target[32], const char *target_address,
                   kl_channel_verr_t *why)
{
    *why = KL_CV_OK;
    int r = submit_once(cli, conn, x, kind, target, target_address, why);
    if (r == KL_EREFUSED && kl_net_relay_error(conn) == KL_WIRE_ERR_CONFLICT &&
        kind != KL_COP_CREATE) {
        r = kl_chan_sync_ops(cli, conn, x);
        if (r == 0)
            r = submit_once(cli, conn, x, kind, target, target_address, why);
    }
    return r;
}

/* ---- receiving posts ---------------------------------------------------- */

typedef struct accepted {
    kl_message_t m;
    kl_channel_post_t p;
} accepted_t;

/* What became of one post of a members-only channel. */
enum { POST_OK, POST_REJECTED, POST_WAITING };

/* A post (log position seq) sealed under an older epoch than a post before
 * it in the log: its publisher's client kept a key it should have renewed
 * at a member change, so whoever was removed then may read it too. Shown,
 * but said. A post of an older epoch that was simply written before the
 * change (read late) comes before the first newer one in the log and says
 * nothing, and so does a post already in history (a relay re-delivering
 * it). The newest epoch seen, and where, is kept per channel; called for
 * new posts only, inside the transaction that stores them. */
static int check_epoch(kl_cli_t *cli, const kl_chan_t *x, const kl_channel_post_t *p,
                       uint64_t seq)
{
    uint64_t seen = 0, at = 0;
    int r = kl_store_channel_epoch_get(cli->st, x->address, &seen, &at);
    if (r)
        return r;
    if (p->epoch > seen)
        return kl_store_channel_epoch_put(cli->st, x->address, p->epoch, seq);
    if (p->epoch < seen && seq > at)
        kl_slog_warn(cli, x->address, "old_epoch",
                     "a post on %s by %s is sealed with the key of epoch %llu, although a post "
                     "before it already used epoch %llu: whoever left the channel since may "
                     "be able to read it", x->address, p->publisher_address,
                     (unsigned long long)p->epoch, (unsigned long long)seen);
    return 0;
}

/* Decrypt an opened post of a members-only channel with its epoch's key
 * from the owner: POST_OK (p->text is the text), POST_WAITING (the key has
 * not arrived) or POST_REJECTED (warned); *err gets store failures. */
static int unseal_post(kl_cli_t *cli, const kl_chan_t *x, kl_channel_post_t *p, int *err)
{
    uint8_t key[KL_CHANNEL_KEY];
    *err = 0;
    int r = kl_chan_key_get(cli, x, p->epoch, key);
    if (r == KL_ENOTFOUND)
        return POST_WAITING;
    if (r == 0)
        r = kl_channel_post_unseal(x->address, p, key);
    kl_memzero(key, sizeof key);
    if (r == 0 && !kl_utf8_valid(p->text, p->text_len))
        r = KL_EPROTO;
    if (r == 0)
        return POST_OK;
    if (r == KL_EIO || r == KL_ENOMEM) {
        *err = r;
        return POST_REJECTED;
    }
    kl_slog_warn(cli, x->address, "rejected_post", "rejected a post on %s: %s", x->address,
                 r == KL_ESTATE ? "you are not a member of this members-only channel"
                 : r == KL_ECRYPTO ? "it does not decrypt with the owner's key for its epoch"
                                   : "its text is not UTF-8");
    return POST_REJECTED;
}

/* Keep a post whose key has not arrived (sealed in the store), warned. */
static int keep_waiting(kl_cli_t *cli, const kl_chan_t *x, uint64_t seq, const uint8_t *body,
                        size_t len, uint64_t epoch)
{
    int r = kl_store_channel_pending_put(cli->st, x->address, seq, body, len);
    if (r == KL_ELIMIT) {
        kl_slog_warn(cli, x->address, "rejected_post",
                     "dropped a post on %s: too many posts wait for the owner's key", x->address);
        return 0;
    }
    if (r == 0)
        kl_slog_warn(cli, x->address, "waiting_for_key",
                     "a post on %s waits for the owner's key (epoch %llu); it is shown once the "
                     "key arrives", x->address, (unsigned long long)epoch);
    return r;
}

/* Verify and store the entries of one Deliver (one transaction; the
 * cursor moves to its last entry, rejected posts included), then ack. */
static int take_posts(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s, kl_chan_t *x,
                      const kl_rpc_batch_t *d)
{
    accepted_t *acc = calloc(d->n ? d->n : 1, sizeof *acc);
    size_t na = 0;
    if (acc == NULL)
        return KL_ENOMEM;
    uint64_t start = x->row.cursor;
    int r = kl_store_begin(cli->st);
    for (size_t i = 0; r == 0 && i < d->n; i++) {
        const kl_rpc_entry_t *e = &d->entries[i];
        if (e->seq <= x->row.cursor)
            continue;
        kl_channel_verr_t why = KL_CV_OK;
        accepted_t *a = &acc[na];
        memset(a, 0, sizeof *a);
        x->row.cursor = e->seq;
        if (x->invalid || kl_channel_post_open(x->c, e->body, e->len, &a->p, &why)) {
            kl_slog_warn(cli, x->address, "rejected_post", "rejected a post on %s: %s",
                         x->address, x->invalid ? "its publisher log is invalid"
                                                : kl_channel_verr_str(why));
            continue;
        }
        if (kl_channel_members_only(x->c)) {
            int err = 0, v = unseal_post(cli, x, &a->p, &err);
            if (v == POST_WAITING)
                err = keep_waiting(cli, x, e->seq, e->body, e->len, a->p.epoch);
            if (v != POST_OK || err) {
                kl_channel_post_clear(&a->p);
                r = err;
                continue;
            }
        }
        kl_message_t *m = &a->m;
        memcpy(m->id, a->p.id, KL_MSG_ID);
        snprintf(m->peer, sizeof m->peer, "%s", x->address);
        snprintf(m->sender, sizeof m->sender, "%s", a->p.publisher_address);
        m->sent_at = a->p.ts;
        m->stored_at = kl_now_ms();
        m->seq = e->seq;
        m->text = a->p.text;
        m->text_len = a->p.text_len;
        int added = 0;
        r = kl_store_message_add(cli->st, m, &added);
        if (r == 0 && added && kl_channel_members_only(x->c))
            r = check_epoch(cli, x, &a->p, e->seq);
        if (r == 0 && added)
            na++;
        else
            kl_channel_post_clear(&a->p);
    }
    if (r == 0)
        r = kl_chan_save_row(cli, x);
    r = kl_store_end(cli->st, r);
    if (r) {
        x->row.cursor = start;
        s->store_error = r;
    }
    for (size_t i = 0; i < na; i++) {
        if (r == 0) {
            s->stored++;
            if (s->on_message)
                s->on_message(s->ud, &acc[i].m);
        }
        kl_channel_post_clear(&acc[i].p);
    }
    free(acc);
    if (r || x->row.cursor == start)
        return r;
    /* Ack only after our commit. */
    return kl_rpc_ack(conn, x->address, x->row.cursor);
}

/* One page of waiting posts: the copies, and the seq of the last one taken
 * (the next page starts after it). */
typedef struct pending_page {
    kl_slog_batch_t p;
    uint64_t last;
} pending_page_t;

static int collect_pending(void *ud, uint64_t seq, const uint8_t *post, size_t len)
{
    pending_page_t *pg = ud;
    int r = kl_slog_batch_add(&pg->p, seq, 0, post, len);
    if (r == 0)
        pg->last = seq;
    return r;
}

/* One waiting post: shown (stored) once its key is here, dropped if it
 * no longer verifies against the log, else kept. One transaction. */
static int retry_one(kl_cli_t *cli, kl_sync_t *s, kl_chan_t *x, uint64_t seq,
                     const uint8_t *body, size_t len)
{
    kl_channel_post_t p;
    kl_channel_verr_t why = KL_CV_OK;
    kl_message_t m;
    int added = 0, err = 0, v = POST_REJECTED;
    int r = kl_channel_post_open(x->c, body, len, &p, &why);
    if (r == KL_ENOMEM)
        return r;
    if (r == 0)
        v = unseal_post(cli, x, &p, &err);
    else
        kl_slog_warn(cli, x->address, "rejected_post", "rejected a post on %s: %s", x->address,
                     kl_channel_verr_str(why));
    if (err || v == POST_WAITING) {
        kl_channel_post_clear(&p);
        return err;
    }
    memset(&m, 0, sizeof m);
    if ((r = kl_store_begin(cli->st))) {
        kl_channel_post_clear(&p);
        return r;
    }
    r = kl_store_channel_pending_delete(cli->st, x->address, seq);
    if (r == 0 && v == POST_OK) {
        memcpy(m.id, p.id, KL_MSG_ID);
        snprintf(m.peer, sizeof m.peer, "%s", x->address);
        snprintf(m.sender, sizeof m.sender, "%s", p.publisher_address);
        m.sent_at = p.ts;
        m.stored_at = kl_now_ms();
        m.seq = seq;
        m.text = p.text;
        m.text_len = p.text_len;
        r = kl_store_message_add(cli->st, &m, &added);
        if (r == 0 && added)
            r = check_epoch(cli, x, &p, seq);
    }
    r = kl_store_end(cli->st, r);
    if (r == 0 && added) {
        s->stored++;
        if (s->on_message)
            s->on_message(s->ud, &m);
    }
    kl_channel_post_clear(&p);
    return r;
}

/* Posts waiting for their key: all retried at each receive, in seq order,
 * KL_SLOG_BATCH at a time (posts whose key never comes do not keep later
 * ones from being retried). */
static int retry_pending(kl_cli_t *cli, kl_sync_t *s, kl_chan_t *x)
{
    pending_page_t pg;
    int full, r;
    pg.last = 0;
    do {
        pg.p.n = 0;
        r = kl_store_channel_pending_each(cli->st, x->address, pg.last, collect_pending, &pg);
        full = r == 1;
        if (full)
            r = 0;
        for (size_t i = 0; r == 0 && i < pg.p.n; i++)
            r = retry_one(cli, s, x, pg.p.seq[i], pg.p.body[i], pg.p.len[i]);
        kl_slog_batch_clear(&pg.p);
    } while (r == 0 && full);
    return r;
}

/* Ops, then posts after our cursor, of one channel we subscribe to. */
static int receive_channel(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s, const char *address,
                           uint64_t relay_cursor)
{
    kl_chan_t x;
    int r = kl_chan_load(cli, address, &x);
    if (r) {
        s->store_error = r;
        return r;
    }
    if (!x.has_row || !x.row.subscribed) {
        /* Subscribed at the relay (another device, or an interrupted
         * subscribe): start where the relay's cursor is. */
        x.row.subscribed = 1;
        if (!x.has_row || x.row.cursor < relay_cursor)
            x.row.cursor = relay_cursor;
        if ((r = kl_chan_save_row(cli, &x))) {
            s->store_error = r;
            goto out;
        }
    }
    r = kl_chan_sync_ops(cli, conn, &x);
    if (r == 0 && !x.invalid && kl_channel_members_only(x.c)) {
        size_t missing = 0;
        uint8_t owner[32];
        /* The owner hands out keys that could not be sent before. */
        if (kl_channel_owner(x.c, owner) == 0 && kl_memcmp(owner, cli->me.pk, 32) == 0)
            r = kl_chan_distribute(cli, conn, &x, &missing);
        if (r == 0 && (r = retry_pending(cli, s, &x)) != 0)
            s->store_error = r;
    }
    for (int round = 0; r == 0 && round < MAX_POST_ROUNDS; round++) {
        kl_rpc_batch_t b;
        r = kl_rpc_fetch(conn, x.address, x.row.cursor, 0, &b);
        if (r == KL_EREFUSED && kl_net_relay_error(conn) == KL_WIRE_ERR_FORBIDDEN) {
            x.row.subscribed = 0; /* the relay no longer has us as a subscriber */
            r = kl_chan_save_row(cli, &x);
            break;
        }
        if (r)
            break;
        uint64_t before = x.row.cursor;
        r = take_posts(cli, conn, s, &x, &b);
        int more = b.more && x.row.cursor > before;
        kl_rpc_batch_free(&b);
        if (!more)
            break;
    }
out:
    kl_chan_free(&x);
    return r;
}

typedef struct known {
    char (*addr)[KL_ADDR_MAX + 1];
    size_t n;
    char (*owned)[KL_ADDR_MAX + 1];
    size_t n_owned;
} known_t;

static int collect_subscribed(void *ud, const kl_store_channel_t *c)
{
    known_t *k = ud;
    if (c->subscribed && k->n < MAX_CHANNELS)
        snprintf(k->addr[k->n++], KL_ADDR_MAX + 1, "%s", c->address);
    if (c->owned && k->n_owned < MAX_CHANNELS)
        snprintf(k->owned[k->n_owned++], KL_ADDR_MAX + 1, "%s", c->address);
    return 0;
}

/* An owned members-only channel: hand out the keys not delivered yet. */
static int distribute_owned(kl_cli_t *cli, kl_net_t *conn, const char *address)
{
    kl_chan_t x;
    size_t missing = 0;
    int r = kl_chan_load(cli, address, &x);
    if (r)
        return r;
    if (kl_channel_members_only(x.c)) /* known from our own create: no round trip else */
        r = kl_chan_sync_ops(cli, conn, &x);
    if (r == 0 && !x.invalid && kl_channel_members_only(x.c))
        r = kl_chan_distribute(cli, conn, &x, &missing);
    kl_chan_free(&x);
    return r;
}

int kl_chan_receive_all(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s)
{
    kl_rpc_list_t l;
    known_t k;
    int r = kl_store_channel_schema(cli->st);
    if (r) {
        s->store_error = r;
        return r;
    }
    if ((r = kl_rpc_list(conn, '!', &l)))
        return r;
    memset(&k, 0, sizeof k);
    k.addr = calloc(MAX_CHANNELS, sizeof *k.addr);
    k.owned = calloc(MAX_CHANNELS, sizeof *k.owned);
    if (k.addr == NULL || k.owned == NULL) {
        free(k.addr);
        free(k.owned);
        kl_rpc_list_free(&l);
        return KL_ENOMEM;
    }
    r = kl_store_channel_each(cli->st, collect_subscribed, &k);
    for (size_t i = 0; r == 0 && i < l.n && i < MAX_CHANNELS; i++) {
        char addr[KL_ADDR_MAX + 1];
        if (kl_chan_address(cli, l.v[i].address, addr, sizeof addr) != 0)
            continue;
        r = receive_channel(cli, conn, s, addr, l.v[i].cursor);
        for (size_t j = 0; j < k.n; j++)
            if (strcmp(k.addr[j], addr) == 0)
                k.addr[j][0] = '\0';
        for (size_t j = 0; j < k.n_owned; j++)
            if (strcmp(k.owned[j], addr) == 0)
                k.owned[j][0] = '\0'; /* done by receive_channel */
    }
    /* Owned channels we do not subscribe to: keys still to hand out. */
    for (size_t j = 0; r == 0 && j < k.n_owned; j++)
        if (k.owned[j][0] != '\0')
            r = distribute_owned(cli, conn, k.owned[j]);
    /* Subscribed here but not at the relay (unsubscribed elsewhere). */
    for (size_t j = 0; r == 0 && j < k.n; j++) {
        kl_store_channel_t c;
        if (k.addr[j][0] == '\0' || kl_store_channel_get(cli->st, k.addr[j], &c) != 0)
            continue;
        c.subscribed = 0;
        r = kl_store_channel_put(cli->st, &c);
        if (r)
            s->store_error = r;
    }
    free(k.addr);
    free(k.owned);
    kl_rpc_list_free(&l);
    return r;
}

void kl_chan_print_post(const kl_cli_t *cli, const kl_message_t *m)
{
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_message(&j, m);
        kl_json_str(&j, "channel", m->peer);
        kl_json_str(&j, "from", m->sender);
        kl_json_strn(&j, "text", m->text, m->text_len);
        kl_json_uint(&j, "sent_at", m->sent_at);
        kl_json_bool(&j, "verified", 1);
        kl_json_uint(&j, "seq", m->seq);
        kl_json_uint(&j, "stored_at", m->stored_at);
        kl_cli_json_line(&j);
        return;
    }
    char when[32];
    kl_format_time(m->sent_at, when, sizeof when);
    printf("[%s] [%s] %s: ", when, m->peer, m->sender);
    kl_print_safe(stdout, m->text, m->text_len, "    ");
    putchar('\n');
    fflush(stdout);
}
