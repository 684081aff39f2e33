/* Group governance in the client: the validated local copy of each group's
 * operation log, fetching and submitting ops. See group.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline/json.h"
#include "group.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "signedlog.h"
#include "store_group.h"
#include "util.h"

/* GroupFetch rounds per sync: a frame holds dozens of ops, groups have at
 * most a few hundred members, so this is far above any honest log. */
#define MAX_FETCH_ROUNDS 256

void kl_grp_warn(const kl_cli_t *cli, const char *grp, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kl_slog_vwarn(cli, grp, kind, 1, fmt, ap);
    va_end(ap);
}

void kl_grp_notice(const kl_cli_t *cli, const char *grp, const char *event, const char *by,
                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!cli->json) {
        printf("%s\n", msg);
        fflush(stdout);
        return;
    }
    kl_json_t j;
    kl_cli_json_begin(&j, "event", event);
    kl_json_str(&j, "group", grp);
    if (by)
        kl_json_str(&j, "by", by);
    kl_json_str(&j, "message", msg);
    kl_cli_json_line(&j);
}

int kl_grp_address(const kl_cli_t *cli, const char *in, char *out, size_t cap)
{
    char full[KL_ADDR_MAX + 2];
    kl_addr_t a;
    if (kl_slog_complete(cli, in, '#', full, sizeof full) != 0)
        return KL_EINVAL;
    if (kl_addr_parse(full, &a) != 0 || !a.is_group || kl_addr_format(&a, out, cap) != 0 ||
        strcmp(out, full) != 0)
        return KL_EINVAL;
    return 0;
}

/* Heads kept per op: far above any log a relay accepts (it caps ops per
 * group); beyond it the fork check has no head to compare (not an error). */
#define MAX_HEADS 65536u

int kl_grp_head_at(const kl_grp_t *x, uint64_t index, uint8_t out[32])
{
    if (index == 0 || index > x->nheads)
        return KL_ENOTFOUND;
    memcpy(out, x->heads[index - 1], 32);
    return 0;
}

int kl_grp_blocked(const kl_grp_t *x)
{
    return x->invalid || x->fork_index != 0;
}

/* Remember the head after the op just applied (heads[i] after op i). */
static void note_head(kl_grp_t *x)
{
    uint64_t n = kl_group_next_index(x->g);
    if (n == 0 || n - 1 != x->nheads)
        return; /* an earlier head is missing: stop recording */
    if (x->nheads == x->heads_cap) {
        size_t cap = x->heads_cap ? x->heads_cap * 2 : 64;
        if (cap > MAX_HEADS)
            return;
        void *p = realloc(x->heads, cap * 32);
        if (p == NULL)
            return;
        x->heads = p;
        x->heads_cap = cap;
    }
    kl_group_head(x->g, x->heads[x->nheads++]);
}

/* What an applied op means for us. */
static void react(const kl_cli_t *cli, kl_grp_t *x, const kl_group_event_t *ev)
{
    const uint8_t *me = cli->me.pk;
    note_head(x);
    if (ev->kind == KL_GOP_INVITE && kl_memcmp(ev->target, me, 32) == 0)
        snprintf(x->invited_by, sizeof x->invited_by, "%s", ev->actor_address);
    /* One op may admit several candidates: we may be any of them. */
    for (int i = 0; i < ev->admitted && i < KL_GROUP_MAX_CANDIDATES; i++)
        if (kl_memcmp(ev->admitted_keys[i], me, 32) == 0) {
            x->admitted = 1;
            x->removed = 0;
            x->left = 0;
        }
    if (ev->kind == KL_GOP_REMOVE && kl_memcmp(ev->target, me, 32) == 0 &&
        kl_group_role_of(x->g, me) == KL_ROLE_NONE) {
        x->removed = 1;
        snprintf(x->removed_by, sizeof x->removed_by, "%s", ev->actor_address);
    }
    if (ev->kind == KL_GOP_LEAVE && kl_memcmp(ev->actor, me, 32) == 0)
        x->left = 1;
}

/* Inside a transaction, after ev was applied: a member who left or was
 * removed takes its dispute (group.h, view check) with it, and its sender
 * keys are kept only for the group's retention from now (what it wrote
 * before stays readable; group_recv.c prunes them). */
static int departed(kl_cli_t *cli, const kl_grp_t *x, const kl_group_event_t *ev)
{
    const uint8_t *gone = ev->kind == KL_GOP_LEAVE                         ? ev->actor
                          : ev->kind == KL_GOP_REMOVE && ev->epoch_changed ? ev->target
                                                                           : NULL;
    if (gone == NULL)
        return 0;
    int r = kl_store_group_dispute_delete(cli->st, x->address, gone);
    return r ? r : kl_store_senderkey_gone(cli->st, x->address, gone, kl_now_ms());
}

/* A group's log for the shared signed-log code (signedlog.h): an op
 * validates by kl_group_apply, what it means for us is noted at once
 * (react), and once stored a departure is booked (departed). */
typedef struct grp_log {
    kl_grp_t *x;
    kl_group_event_t ev;         /* of the op applied last */
    kl_slog_t l;
} grp_log_t;

static uint64_t grp_next(const void *state)
{
    return kl_group_next_index(((const grp_log_t *)state)->x->g);
}

static const char *grp_apply(kl_cli_t *cli, void *state, const uint8_t *op, size_t len)
{
    grp_log_t *c = state;
    kl_group_verr_t why = KL_GV_OK;
    if (len == 0 || len > KL_GROUP_MAX_OP || kl_group_apply(c->x->g, op, len, &c->ev, &why) != 0)
        return kl_group_verr_str(why == KL_GV_OK ? KL_GV_MALFORMED : why);
    react(cli, c->x, &c->ev);
    return NULL;
}

static void grp_invalid_op(kl_cli_t *cli, void *state, uint64_t idx, const char *why)
{
    kl_grp_warn(cli, ((grp_log_t *)state)->x->address, "invalid_group_op",
                "the relay delivered an invalid group operation at index %llu (%s); ignoring it",
                (unsigned long long)idx, why);
}

/* The row exists for every group we know, so receive visits it. */
static int grp_begin(kl_cli_t *cli, void *state)
{
    return kl_store_group_add(cli->st, ((grp_log_t *)state)->x->address);
}

static int grp_stored(kl_cli_t *cli, void *state)
{
    grp_log_t *c = state;
    return departed(cli, c->x, &c->ev);
}

static void grp_log_init(grp_log_t *c, kl_grp_t *x)
{
    memset(c, 0, sizeof *c);
    c->x = x;
    c->l = (kl_slog_t){x->address, c, &x->invalid, grp_next, grp_apply, grp_invalid_op, grp_begin,
                       grp_stored};
}

int kl_grp_load(kl_cli_t *cli, const char *address, kl_grp_t *x)
{
    grp_log_t c;
    kl_store_group_t row;
    memset(x, 0, sizeof *x);
    snprintf(x->address, sizeof x->address, "%s", address);
    int r = kl_group_new(&x->g, address);
    if (r)
        return r;
    grp_log_init(&c, x);
    r = kl_store_group_get(cli->st, address, &row);
    if (r == 0)
        x->fork_index = row.fork_index;
    else if (r == KL_ENOTFOUND)
        r = 0;
    if (r == 0)
        r = kl_slog_replay(cli, &c.l);
    if (r)
        kl_grp_free(x);
    return r;
}

void kl_grp_free(kl_grp_t *x)
{
    kl_group_free(x->g);
    x->g = NULL;
    free(x->heads);
    x->heads = NULL;
    x->nheads = x->heads_cap = 0;
}

/* The relay delivered op (its answer for index idx, our last op) where
 * we hold another: if it is a validly signed op of this group at that
 * index, the relay has shown two histories, which only a fork explains
 * (group.h): recorded in the store (fork_index = idx + 1) and warned.
 * Anything else there is an invalid op (x->invalid). */
static int overlap_differs(kl_cli_t *cli, kl_grp_t *x, uint64_t idx, const kl_rpc_blob_t *op)
{
    kl_group_peek_t pk;
    kl_store_group_t row;
    if (op->len == 0 || op->len > KL_GROUP_MAX_OP || kl_group_op_peek(op->data, op->len, &pk) ||
        pk.index != idx || strcmp(pk.group, x->address) != 0) {
        kl_grp_warn(cli, x->address, "invalid_group_op",
                    "the relay delivered an invalid group operation at index %llu (it is not "
                    "the one you hold, nor a valid one); ignoring it",
                    (unsigned long long)idx);
        x->invalid = 1;
        return 0;
    }
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    if ((r = kl_store_group_get(cli->st, x->address, &row)) == 0 && row.fork_index == 0) {
        row.fork_index = idx + 1;
        memset(row.fork_author, 0, 32);
        r = kl_store_group_put(cli->st, &row);
    }
    r = r ? r : kl_store_commit(cli->st);
    if (r) {
        kl_store_rollback(cli->st);
        return r;
    }
    if (x->fork_index == 0)
        kl_grp_warn(cli, x->address, "fork",
                    "the relay showed you two different operations at index %llu of this group, "
                    "both signed by members: it shows members different histories (a fork). "
                    "Nothing is sent and no group key is given in this group; start a new group "
                    "with the members you trust", (unsigned long long)idx);
    x->fork_index = idx + 1;
    return 0;
}

int kl_grp_sync_ops(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x)
{
    grp_log_t c;
    grp_log_init(&c, x);
    for (int round = 0; round < MAX_FETCH_ROUNDS && !x->invalid; round++) {
        kl_rpc_oplog_t gl;
        uint64_t next = kl_group_next_index(x->g);
        /* The first round asks from our last op: the relay must give back
         * the very op we hold there. Only the relay's own answers are
         * compared, so a difference proves it equivocated; a member's claim
         * in a message proves nothing (a member can sign anything). */
        int overlap = round == 0 && next > 0;
        uint64_t from = overlap ? next - 1 : next;
        size_t applied = 0, first = 0;
        int r = kl_rpc_oplog_fetch(conn, x->address, from, &gl);
        if (r)
            return r;
        x->relay_next = gl.next_index;
        memcpy(x->relay_head, gl.head, 32);
        int more = gl.more && gl.n_ops > 0;
        if (gl.n_ops > 0 && gl.from_index != from) {
            kl_rpc_oplog_free(&gl);
            return KL_EPROTO;
        }
        if (overlap && gl.n_ops > 0) {
            uint8_t mine[32], theirs[32];
            kl_group_head(x->g, mine); /* the SHA-256 of our op next - 1 */
            kl_sha256(gl.ops[0].data, gl.ops[0].len, theirs);
            first = 1;
            if (kl_memcmp(mine, theirs, 32) != 0) {
                r = overlap_differs(cli, x, from, &gl.ops[0]);
                kl_rpc_oplog_free(&gl);
                return r;
            }
        }
        r = gl.n_ops > first ? kl_slog_take(cli, &c.l, gl.ops + first, gl.n_ops - first, &applied)
                             : 0;
        kl_rpc_oplog_free(&gl);
        if (r)
            return r;
        if (!more)
            return 0;
    }
    return 0;
}

static int reload(kl_cli_t *cli, kl_grp_t *x)
{
    char addr[KL_ADDR_MAX + 1];
    memcpy(addr, x->address, sizeof addr);
    kl_grp_free(x);
    return kl_grp_load(cli, addr, x);
}

int kl_grp_submit(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const kl_group_opdesc_t *d,
                  kl_group_event_t *ev, kl_group_verr_t *why)
{
    int r = 0;
    *why = KL_GV_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *op = NULL;
        size_t len = 0;
        uint64_t idx = kl_group_next_index(x->g);
        if ((r = kl_group_op_build(x->g, cli->me.sk, cli->me.pk, cli->me.address, kl_now_ms(), d,
                                   &op, &len)))
            return r;
        /* Our own rules check first: the user gets the reason, and the
         * relay never sees an op we would ignore ourselves. */
        if (kl_group_apply(x->g, op, len, ev, why) != 0) {
            free(op);
            return KL_ESTATE;
        }
        r = kl_rpc_op_submit(conn, x->address, op, len);
        if (r == 0) {
            grp_log_t c;
            grp_log_init(&c, x);
            c.ev = *ev;
            r = kl_slog_store(cli, &c.l, idx, op, len);
            free(op);
            if (r == 0)
                react(cli, x, ev);
            return r;
        }
        free(op);
        /* x->g holds the op the relay refused: start again from the store. */
        int lr = reload(cli, x);
        if (lr)
            return lr;
        if (r != KL_EREFUSED || kl_net_relay_error(conn) != KL_WIRE_ERR_CONFLICT || attempt)
            return r;
        /* Someone else's op came first: catch up and try once more. */
        if ((r = kl_grp_sync_ops(cli, conn, x)))
            return r;
        if (x->invalid)
            return KL_ECRYPTO;
    }
    return r;
}

/* A request op for a group whose log we may not read: index and prev come
 * from the relay's GroupLog (next_index, head); the relay validates it
 * against the whole log, and we validate the log once we are named in it. */
static int build_request(const kl_cli_t *cli, const kl_grp_t *x, uint8_t **out, size_t *outlen)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_REQUEST;
    return kl_group_op_build_at(x->address, x->relay_next, x->relay_head, cli->me.sk, cli->me.pk,
                                cli->me.address, kl_now_ms(), &d, out, outlen);
}

int kl_grp_request(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, kl_group_event_t *ev)
{
    kl_group_verr_t why = KL_GV_OK;
    int r = kl_grp_sync_ops(cli, conn, x);
    if (r)
        return r;
    memset(ev, 0, sizeof *ev);
    if (kl_group_next_index(x->g) > 0) {
        /* We can read the log (we were named in it): build and check
         * against the full state. */
        kl_group_opdesc_t d;
        memset(&d, 0, sizeof d);
        d.kind = KL_GOP_REQUEST;
        r = kl_grp_submit(cli, conn, x, &d, ev, &why);
        if (r == KL_ESTATE)
            return why == KL_GV_ALREADY_MEMBER || why == KL_GV_ALREADY_CANDIDATE ? KL_EEXIST
                                                                                  : KL_ESTATE;
        return r;
    }
    if (x->relay_next == 0)
        return KL_ENOTFOUND;
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *op = NULL;
        size_t len = 0;
        if ((r = build_request(cli, x, &op, &len)))
            return r;
        r = kl_rpc_op_submit(conn, x->address, op, len);
        free(op);
        if (r != KL_EREFUSED || kl_net_relay_error(conn) != KL_WIRE_ERR_CONFLICT || attempt)
            break;
        if ((r = kl_grp_sync_ops(cli, conn, x)))
            return r;
    }
    if (r)
        return r;
    ev->kind = KL_GOP_REQUEST;
    /* Now we are named in the log: fetch and validate all of it. */
    return kl_grp_sync_ops(cli, conn, x);
}
