/* What groups and channels share in the client. See signedlog.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "outbound.h"
#include "signedlog.h"
#include "util.h"

int kl_slog_complete(const kl_cli_t *cli, const char *in, char sigil, char *full, size_t cap)
{
    if (in[0] != sigil)
        return KL_EINVAL;
    if (strchr(in, '@') == NULL) {
        int n = snprintf(full, cap, "%s@%s", in, cli->relay.name);
        if (n < 0 || (size_t)n >= cap)
            return KL_EINVAL;
    } else if (strlen(in) >= cap) {
        return KL_EINVAL;
    } else {
        memcpy(full, in, strlen(in) + 1);
    }
    return 0;
}

void kl_slog_vwarn(const kl_cli_t *cli, const char *addr, const char *kind, int prefix,
                   const char *fmt, va_list ap)
{
    char msg[1024], line[KL_ADDR_MAX + 1040];
    kl_json_t j;
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(line, sizeof line, "%s%s%s", prefix ? addr : "", prefix ? ": " : "", msg);
    if (!kl_cli_warn(cli, kind, line, &j))
        return;
    kl_json_str(&j, addr[0] == '#' ? "group" : "channel", addr);
    kl_json_str(&j, "message", msg);
    kl_cli_json_line(&j);
}

void kl_slog_warn(const kl_cli_t *cli, const char *addr, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kl_slog_vwarn(cli, addr, kind, 0, fmt, ap);
    va_end(ap);
}

typedef struct replay {
    kl_cli_t *cli;
    const kl_slog_t *l;
} replay_t;

static int replay_cb(void *ud, uint64_t idx, const uint8_t *op, size_t len)
{
    const replay_t *p = ud;
    const kl_slog_t *l = p->l;
    const char *why = idx != l->next_index(l->state) ? "stored out of order"
                                                      : l->apply(p->cli, l->state, op, len);
    if (why == NULL)
        return 0;
    /* Ops are stored only after validation: this is a damaged store. */
    kl_slog_warn(p->cli, l->address, "invalid_stored_op",
                 "the stored operation %llu of %s does not validate (%s); ignoring it and "
                 "everything after it", (unsigned long long)idx, l->address, why);
    *l->invalid = 1;
    return 1;
}

int kl_slog_replay(kl_cli_t *cli, const kl_slog_t *l)
{
    replay_t p = {cli, l};
    int r = kl_store_slog_op_each(cli->st, l->address, replay_cb, &p);
    return r == 1 ? 0 : r;
}

/* Inside a transaction: store op idx (applied already) and book it. */
static int put_op(kl_cli_t *cli, const kl_slog_t *l, uint64_t idx, const uint8_t *op, size_t len)
{
    int r = kl_store_slog_op_put(cli->st, l->address, idx, op, len);
    return r == 0 && l->stored ? l->stored(cli, l->state) : r;
}

int kl_slog_take(kl_cli_t *cli, const kl_slog_t *l, const kl_rpc_blob_t *ops, size_t n,
                 size_t *applied)
{
    *applied = 0;
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    if (l->begin)
        r = l->begin(cli, l->state);
    for (size_t i = 0; r == 0 && i < n && !*l->invalid; i++) {
        uint64_t idx = l->next_index(l->state);
        const char *why = l->apply(cli, l->state, ops[i].data, ops[i].len);
        if (why) {
            l->invalid_op(cli, l->state, idx, why);
            *l->invalid = 1;
        } else if ((r = put_op(cli, l, idx, ops[i].data, ops[i].len)) == 0) {
            (*applied)++;
        }
    }
    if (r)
        *applied = 0;
    return kl_store_end(cli->st, r);
}

int kl_slog_store(kl_cli_t *cli, const kl_slog_t *l, uint64_t idx, const uint8_t *op, size_t len)
{
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    if (l->begin)
        r = l->begin(cli, l->state);
    return kl_store_end(cli->st, r ? r : put_op(cli, l, idx, op, len));
}

int kl_slog_batch_add(kl_slog_batch_t *b, uint64_t seq, uint64_t ts, const uint8_t *body,
                      size_t len)
{
    if (len == 0)
        return 0;
    if (b->n == KL_SLOG_BATCH)
        return 1;
    if ((b->body[b->n] = malloc(len)) == NULL)
        return KL_ENOMEM;
    memcpy(b->body[b->n], body, len);
    b->seq[b->n] = seq;
    b->ts[b->n] = ts;
    b->len[b->n++] = len;
    return 0;
}

void kl_slog_batch_clear(kl_slog_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        kl_free_wipe(b->body[i], b->len[i]);
    b->n = 0;
}

int kl_slog_give_key(kl_cli_t *cli, kl_net_t *conn, const char *log, uint64_t key,
                     const uint8_t mkey[32], const char *maddr, kl_content_t *ct,
                     kl_slog_give_t *out, int *err)
{
    uint64_t seq = 0;
    int has = 0, conflict = 0;
    *out = KL_SLOG_HAD;
    *err = 0;
    int r = kl_store_slog_key_sent(cli->st, log, key, mkey, 0, &has);
    if (r || has)
        return r;
    /* The member's key comes from the signed log; a contact pinned to
     * another key is a conflict the user must resolve first. */
    *out = KL_SLOG_CONFLICT;
    if ((r = kl_contacts_check_log_key(cli->st, maddr, mkey, &conflict)) || conflict)
        return r;
    kl_random(ct->id, KL_MSG_ID);
    ct->sent_at = kl_now_ms();
    ct->text = (char *)"";
    snprintf(ct->to, sizeof ct->to, "%s", maddr);
    r = kl_out_send_content(cli->st, &cli->me, conn, maddr, mkey, ct, &seq);
    if (r == KL_ENOTFOUND || r == KL_EKEYCHANGED || r == KL_ECRYPTO ||
        (r == KL_EREFUSED && kl_net_relay_error(conn) != KL_WIRE_ERR_RATE_LIMITED)) {
        *out = KL_SLOG_UNREACHABLE;
        *err = r;
        return 0;
    }
    if (r)
        return r;
    *out = KL_SLOG_GIVEN;
    if ((r = kl_store_begin(cli->st)))
        return r;
    r = kl_store_slog_key_sent(cli->st, log, key, mkey, 1, NULL);
    r = kl_store_end(cli->st, r);
    return r;
}
