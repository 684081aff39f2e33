/* Requests on the signed op logs of groups and channels: fetch ops,
 * submit one, list the logs the relay has for us, channel subscriptions.
 * Groups and channels speak the same shapes (GroupLog and ChannelLog,
 * GroupOp and ChannelOp, ...): one function serves both, chosen by the
 * log's sigil. See rpc.h. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "rpc_int.h"

static int is_group(const char *log)
{
    return log[0] == '#';
}

/* The GroupLog / ChannelLog fields, which have the same numbers and types. */
typedef struct oplog_view {
    const char *name;
    uint64_t from_index, next_index;
    size_t n_ops;
    const ProtobufCBinaryData *ops;
    protobuf_c_boolean more;
    ProtobufCBinaryData head;
} oplog_view_t;

static int view(const kl_frame_t *f, const char *log, oplog_view_t *v)
{
    if (is_group(log)) {
        const Kollega__Relay__V1__GroupLog *gl = f->group_log;
        if (gl == NULL)
            return KL_EPROTO;
        *v = (oplog_view_t){gl->group, gl->from_index, gl->next_index, gl->n_ops, gl->ops,
                            gl->more, gl->head};
    } else {
        const Kollega__Relay__V1__ChannelLog *cl = f->channel_log;
        if (cl == NULL)
            return KL_EPROTO;
        *v = (oplog_view_t){cl->channel, cl->from_index, cl->next_index, cl->n_ops, cl->ops,
                            cl->more, cl->head};
    }
    /* The answer must be about the log we asked for. */
    return v->name && strcmp(v->name, log) == 0 ? 0 : KL_EPROTO;
}

int kl_rpc_oplog_fetch(kl_net_t *conn, const char *log, uint64_t from, kl_rpc_oplog_t *out)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupFetch gf = KOLLEGA__RELAY__V1__GROUP_FETCH__INIT;
    Kollega__Relay__V1__ChannelFetch cf = KOLLEGA__RELAY__V1__CHANNEL_FETCH__INIT;
    oplog_view_t v;
    memset(out, 0, sizeof *out);
    if (is_group(log)) {
        gf.group = (char *)log;
        gf.from_index = from;
        SET_BODY(f, group_fetch, GROUP_FETCH, gf);
    } else {
        cf.channel = (char *)log;
        cf.from_index = from;
        SET_BODY(f, channel_fetch, CHANNEL_FETCH, cf);
    }
    int r = kl_net_call(conn, &f, is_group(log) ? BODY(GROUP_LOG) : BODY(CHANNEL_LOG),
                        &out->frame);
    if (r == 0)
        r = view(out->frame, log, &v);
    if (r == 0 && v.n_ops > 0 && (out->ops = calloc(v.n_ops, sizeof *out->ops)) == NULL)
        r = KL_ENOMEM;
    if (r) {
        kl_rpc_oplog_free(out);
        return r;
    }
    out->from_index = v.from_index;
    out->next_index = v.next_index;
    out->more = v.more;
    out->n_ops = v.n_ops;
    for (size_t i = 0; i < v.n_ops; i++) {
        out->ops[i].data = v.ops[i].data;
        out->ops[i].len = v.ops[i].len;
    }
    if (v.head.len == 32)
        memcpy(out->head, v.head.data, 32);
    return 0;
}

void kl_rpc_oplog_free(kl_rpc_oplog_t *l)
{
    free(l->ops);
    kl_wire_free(l->frame);
    memset(l, 0, sizeof *l);
}

int kl_rpc_op_submit(kl_net_t *conn, const char *log, const uint8_t *op, size_t len)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    kl_frame_t *resp = NULL;
    if (is_group(log)) {
        go.signed_op = kl_rpc_bytes(op, len);
        SET_BODY(f, group_op, GROUP_OP, go);
    } else {
        co.signed_op = kl_rpc_bytes(op, len);
        SET_BODY(f, channel_op, CHANNEL_OP, co);
    }
    int r = kl_net_call(conn, &f,
                        is_group(log) ? BODY(GROUP_OP_ACCEPTED) : BODY(CHANNEL_OP_ACCEPTED),
                        &resp);
    kl_wire_free(resp);
    return r;
}

int kl_rpc_list(kl_net_t *conn, char sigil, kl_rpc_list_t *out)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    Kollega__Relay__V1__ChannelList cl = KOLLEGA__RELAY__V1__CHANNEL_LIST__INIT;
    int group = sigil == '#';
    size_t n = 0;
    memset(out, 0, sizeof *out);
    if (group) {
        SET_BODY(f, group_list, GROUP_LIST, gl);
    } else {
        SET_BODY(f, channel_list, CHANNEL_LIST, cl);
    }
    int r = kl_net_call(conn, &f, group ? BODY(GROUP_LIST_RESULT) : BODY(CHANNEL_LIST_RESULT),
                        &out->frame);
    if (r)
        return r;
    const Kollega__Relay__V1__GroupListResult *gr = group ? out->frame->group_list_result : NULL;
    const Kollega__Relay__V1__ChannelListResult *cr =
        group ? NULL : out->frame->channel_list_result;
    n = gr ? gr->n_groups : cr ? cr->n_channels : 0;
    if (n > 0 && (out->v = calloc(n, sizeof *out->v)) == NULL) {
        kl_rpc_list_free(out);
        return KL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Kollega__Relay__V1__GroupInfo *gi = gr ? gr->groups[i] : NULL;
        const Kollega__Relay__V1__ChannelInfo *ci = cr ? cr->channels[i] : NULL;
        kl_rpc_listed_t *x = &out->v[out->n];
        if (gi && gi->group) {
            *x = (kl_rpc_listed_t){gi->group, gi->next_index, gi->last_seq, 0, gi->member};
            out->n++;
        } else if (ci && ci->channel) {
            *x = (kl_rpc_listed_t){ci->channel, ci->next_index, ci->last_seq, ci->cursor, 0};
            out->n++;
        }
    }
    return 0;
}

void kl_rpc_list_free(kl_rpc_list_t *l)
{
    free(l->v);
    kl_wire_free(l->frame);
    memset(l, 0, sizeof *l);
}

int kl_rpc_subscribe(kl_net_t *conn, const char *channel, int on, uint32_t backlog)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Subscribe sb = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    Kollega__Relay__V1__Unsubscribe ub = KOLLEGA__RELAY__V1__UNSUBSCRIBE__INIT;
    kl_frame_t *resp = NULL;
    if (on) {
        sb.channel = (char *)channel;
        sb.backlog = backlog;
        SET_BODY(f, subscribe, SUBSCRIBE, sb);
    } else {
        ub.channel = (char *)channel;
        SET_BODY(f, unsubscribe, UNSUBSCRIBE, ub);
    }
    int r = kl_net_call(conn, &f, BODY(OK), &resp);
    kl_wire_free(resp);
    return r;
}
