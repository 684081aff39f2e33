/* Requests on the message logs (our inbox, a group's messages, a
 * channel's posts): send, fetch, ack, and what a push means. See rpc.h. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "rpc_int.h"

/* The group or channel field that names log in a Fetch, Deliver or Ack
 * (both stay unset for the inbox). */
static void name_log(const char *log, char **group, char **channel)
{
    if (log && log[0] == '#')
        *group = (char *)log;
    else if (log && log[0] == '!')
        *channel = (char *)log;
}

int kl_rpc_send(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                uint64_t group_index, const uint8_t *token, uint64_t *seq)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t *resp = NULL;
    s.group_index = group_index;
    if (token)
        s.delivery_token = kl_rpc_bytes(token, 32);
    s.to = (char *)to;
    s.body = kl_rpc_bytes(body, len);
    SET_BODY(f, send, SEND, s);
    int r = kl_net_call(conn, &f, BODY(SENT), &resp);
    if (r == 0)
        *seq = resp->sent ? resp->sent->seq : 0;
    kl_wire_free(resp);
    return r;
}

static int cmp_entry(const void *a, const void *b)
{
    const kl_rpc_entry_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int kl_rpc_batch_take(kl_frame_t *f, const char *log, kl_rpc_batch_t *out)
{
    memset(out, 0, sizeof *out);
    out->frame = f;
    const Kollega__Relay__V1__Deliver *d =
        f && f->body_case == BODY(DELIVER) ? f->deliver : NULL;
    if (d == NULL) {
        kl_rpc_batch_free(out);
        return KL_EPROTO;
    }
    /* An answer about another log than the one asked for carries nothing
     * for it. */
    const char *named = log && log[0] == '#' ? d->group : log && log[0] == '!' ? d->channel : NULL;
    if (named && strcmp(named, log) != 0)
        return 0;
    out->more = d->more;
    if (d->n_entries == 0)
        return 0;
    out->entries = calloc(d->n_entries, sizeof *out->entries);
    if (out->entries == NULL) {
        kl_rpc_batch_free(out);
        return KL_ENOMEM;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        const Kollega__Relay__V1__Entry *e = d->entries[i];
        if (e == NULL || e->seq == 0)
            continue;
        kl_rpc_entry_t *x = &out->entries[out->n++];
        x->seq = e->seq;
        x->ts = e->ts;
        x->body = e->body.data;
        x->len = e->body.len;
    }
    /* Entries are processed in seq order whatever order they came in. */
    if (out->n > 1)
        qsort(out->entries, out->n, sizeof *out->entries, cmp_entry);
    return 0;
}

void kl_rpc_batch_free(kl_rpc_batch_t *b)
{
    free(b->entries);
    kl_wire_free(b->frame);
    memset(b, 0, sizeof *b);
}

int kl_rpc_fetch(kl_net_t *conn, const char *log, uint64_t after, uint32_t limit,
                 kl_rpc_batch_t *out)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t *resp = NULL;
    memset(out, 0, sizeof *out);
    fe.after = after;
    fe.limit = limit;
    name_log(log, &fe.group, &fe.channel);
    SET_BODY(f, fetch, FETCH, fe);
    int r = kl_net_call(conn, &f, BODY(DELIVER), &resp);
    return r ? r : kl_rpc_batch_take(resp, log, out);
}

int kl_rpc_ack(kl_net_t *conn, const char *log, uint64_t seq)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t *resp = NULL;
    a.seq = seq;
    name_log(log, &a.group, &a.channel);
    SET_BODY(f, ack, ACK, a);
    int r = kl_net_call(conn, &f, BODY(OK), &resp);
    kl_wire_free(resp);
    return r;
}

int kl_rpc_push_is_news(const kl_frame_t *push)
{
    return push->body_case == BODY(DELIVER) || push->body_case == BODY(GROUP_LOG) ||
           push->body_case == BODY(CHANNEL_LOG);
}
