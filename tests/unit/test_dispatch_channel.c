/* Broadcast channels in the relay, in-process: frames go through
 * kl_dispatch_frame, the jobs run against the real sqlite storage (as the
 * storage thread runs them: job_begin, kl_job_run, job_end inside a batch)
 * and kl_dispatch_complete turns them into replies and push lists. Users
 * u0..u7 are registered on relay oslo.test; u0 owns !news@oslo.test. */
#include "dispatch_fixture.h"

#include "jobs/chan_cache.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define CH "!news@oslo.test"
#define NU 8

typedef struct user {
    uint8_t pk[32];
    uint8_t sk[64];
    char addr[64];
} user_t;

static user_t U[NU];

static int setup(void **state)
{
    (void)state;
    if (kl_crypto_init() != 0)
        return -1;
    for (int i = 0; i < NU; i++) {
        if (kl_sign_keypair(U[i].pk, U[i].sk) != 0)
            return -1;
        snprintf(U[i].addr, sizeof U[i].addr, "u%d@oslo.test", i);
    }
    if (dfx_open("/tmp/kl-dchan-XXXXXX",
                 (dfx_limits_t){.max_body = 60000, .ttl_default_s = 3600, .max_bytes = 1000000},
                 NU, U[0].pk, sizeof U[0]) != 0)
        return -1;
    return kl_channel_new(&F->chan, CH) != 0 ? -1 : 0;
}

/* Build op kind by user a against the mirror, submit it; on acceptance
 * apply it to the mirror. Returns the reply body case. */
static int op(int a, kl_channel_opkind_t kind, int target)
{
    uint8_t *b = NULL;
    size_t len = 0;
    const user_t *t = target >= 0 ? &U[target] : NULL;
    assert_int_equal(kl_channel_op_build(F->chan, U[a].sk, U[a].pk, U[a].addr, NOW,
                                         kind, t ? t->pk : NULL, t ? t->addr : NULL, &b, &len),
                     0);
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    co.signed_op.data = b;
    co.signed_op.len = len;
    fr.body_case = BODY(CHANNEL_OP);
    fr.channel_op = &co;
    int bc = req(a, &fr);
    if (bc == BODY(CHANNEL_OP_ACCEPTED)) {
        kl_channel_verr_t why;
        assert_int_equal(kl_channel_apply(F->chan, b, len, NULL, &why), 0);
    }
    free(b);
    return bc;
}

static int sub(int u, const char *ch, uint32_t backlog)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Subscribe s = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    s.channel = (char *)ch;
    s.backlog = backlog;
    fr.body_case = BODY(SUBSCRIBE);
    fr.subscribe = &s;
    return req(u, &fr);
}

static int unsub(int u)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Unsubscribe s = KOLLEGA__RELAY__V1__UNSUBSCRIBE__INIT;
    s.channel = CH;
    fr.body_case = BODY(UNSUBSCRIBE);
    fr.unsubscribe = &s;
    return req(u, &fr);
}

static int send_body(int u, const char *to, const uint8_t *b, size_t len)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = (char *)to;
    sd.body.data = (uint8_t *)b;
    sd.body.len = len;
    fr.body_case = BODY(SEND);
    fr.send = &sd;
    return req(u, &fr);
}

/* A post by publisher p signed against state c (the mirror unless given);
 * *out malloc'd. */
static void build_post(const kl_channel_t *c, int p, const char *text, uint8_t **out,
                       size_t *len)
{
    uint8_t id[16];
    kl_random(id, sizeof id);
    assert_int_equal(kl_channel_post_build(c ? c : F->chan, U[p].sk, U[p].pk,
                                           U[p].addr, id, NOW, text, out, len),
                     0);
}

static int post(int sender, int p, const char *text)
{
    uint8_t *b = NULL;
    size_t len = 0;
    build_post(NULL, p, text, &b, &len);
    int bc = send_body(sender, CH, b, len);
    free(b);
    return bc;
}

static int fetch(int u, uint64_t after)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.channel = CH;
    fe.after = after;
    fr.body_case = BODY(FETCH);
    fr.fetch = &fe;
    return req(u, &fr);
}

static int ack(int u, uint64_t seq)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    a.channel = CH;
    a.seq = seq;
    fr.body_case = BODY(ACK);
    fr.ack = &a;
    return req(u, &fr);
}

/* u0 creates the channel and adds u1 as a publisher. */
static void make_channel(void)
{
    assert_int_equal(op(0, KL_COP_CREATE, -1), BODY(CHANNEL_OP_ACCEPTED));
    assert_string_equal(F->out.reply.body.channel_op_accepted.channel, CH);
    assert_int_equal(F->out.reply.body.channel_op_accepted.index, 0);
    assert_int_equal(op(0, KL_COP_ADD_PUBLISHER, 1), BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(F->out.reply.body.channel_op_accepted.index, 1);
}

static void test_post_stored_once(void **state)
{
    (void)state;
    make_channel();
    for (int u = 2; u <= 6; u++)
        assert_int_equal(sub(u, CH, 0), BODY(OK));
    uint64_t before = stored_entries();
    assert_int_equal(post(1, 1, "training on friday"), BODY(SENT));
    assert_int_equal(F->out.reply.body.sent.seq, 1);
    assert_int_equal(stored_entries(), before + 1); /* one entry, five readers */
    assert_true(F->out.has_push);
    assert_int_equal(F->out.n_push_users, 5);
    for (int u = 2; u <= 6; u++)
        assert_true(has_user(u));
    assert_int_equal(F->out.push.frame.body_case, BODY(DELIVER));
    assert_string_equal(F->out.push.body.deliver.channel, CH);
    assert_int_equal(F->out.push.body.deliver.n_entries, 1);
    assert_string_equal(F->out.push_group, CH);
    /* Every subscriber reads the same entry, and the post verifies. */
    for (int u = 2; u <= 6; u++) {
        assert_int_equal(fetch(u, 0), BODY(DELIVER));
        assert_string_equal(F->out.reply.body.deliver.channel, CH);
        assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
        const Kollega__Relay__V1__Entry *e = F->out.reply.body.deliver.entries[0];
        kl_channel_post_t p;
        kl_channel_verr_t why;
        assert_int_equal(kl_channel_post_open(F->chan, e->body.data, e->body.len, &p, &why), 0);
        assert_memory_equal(p.publisher, U[1].pk, 32);
        assert_string_equal(p.text, "training on friday");
        kl_channel_post_clear(&p);
    }
    /* The owner posts too; the list of channels shows the subscription. */
    assert_int_equal(post(0, 0, "from the owner"), BODY(SENT));
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__ChannelList cl = KOLLEGA__RELAY__V1__CHANNEL_LIST__INIT;
    fr.body_case = BODY(CHANNEL_LIST);
    fr.channel_list = &cl;
    assert_int_equal(req(3, &fr), BODY(CHANNEL_LIST_RESULT));
    assert_int_equal(F->out.reply.body.channel_list_result.n_channels, 1);
    const Kollega__Relay__V1__ChannelInfo *ci = F->out.reply.body.channel_list_result.channels[0];
    assert_string_equal(ci->channel, CH);
    assert_int_equal(ci->last_seq, 2);
    assert_int_equal(ci->next_index, 2);
    assert_int_equal(ci->cursor, 0);
    assert_int_equal(req(7, &fr), BODY(CHANNEL_LIST_RESULT));
    assert_int_equal(F->out.reply.body.channel_list_result.n_channels, 0);
}

static void test_non_publisher_refused(void **state)
{
    (void)state;
    make_channel();
    assert_int_equal(sub(2, CH, 0), BODY(OK));
    uint64_t before = stored_entries();
    /* u5 signs a post as itself: a valid signature, not a publisher. Built
     * against a look-alike state where u5 is the owner. */
    kl_channel_t *fake = NULL;
    uint8_t *b = NULL, *p = NULL;
    size_t len = 0, plen = 0;
    kl_channel_verr_t why;
    assert_int_equal(kl_channel_new(&fake, CH), 0);
    assert_int_equal(kl_channel_op_build(fake, U[5].sk, U[5].pk, U[5].addr, NOW,
                                         KL_COP_CREATE, NULL, NULL, &b, &len),
                     0);
    assert_int_equal(kl_channel_apply(fake, b, len, NULL, &why), 0);
    build_post(fake, 5, "fake news", &p, &plen);
    assert_int_equal(send_body(5, CH, p, plen), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a publisher of " CH);
    /* The same post sent by another user: refused before any storage. */
    assert_int_equal(send_body(2, CH, p, plen), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a publisher of " CH);
    /* A non-owner cannot change the publishers. */
    assert_int_equal(op(1, KL_COP_ADD_PUBLISHER, 5), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(stored_entries(), before);
    free(b);
    free(p);
    kl_channel_free(fake);
}

static void test_forged_post_refused(void **state)
{
    (void)state;
    make_channel();
    assert_int_equal(sub(2, CH, 0), BODY(OK));
    uint64_t before = stored_entries();
    uint8_t *b = NULL;
    size_t len = 0;
    build_post(NULL, 1, "genuine text", &b, &len);
    b[len - 1] ^= 0x01; /* the signature is the last field */
    assert_int_equal(send_body(1, CH, b, len), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "invalid channel post");
    /* A post naming another channel. */
    free(b);
    build_post(NULL, 1, "elsewhere", &b, &len);
    assert_int_equal(send_body(1, "!other@oslo.test", b, len), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), NULL);
    assert_int_equal(stored_entries(), before);
    free(b);
}

static void test_cursor_per_subscriber_and_deletion(void **state)
{
    (void)state;
    make_channel();
    for (int u = 2; u <= 4; u++)
        assert_int_equal(sub(u, CH, 0), BODY(OK));
    uint64_t base = stored_entries();
    assert_int_equal(post(1, 1, "one"), BODY(SENT));
    assert_int_equal(post(1, 1, "two"), BODY(SENT));
    assert_int_equal(stored_entries(), base + 2);
    assert_int_equal(ack(2, 2), BODY(OK));
    assert_int_equal(ack(3, 1), BODY(OK));
    /* u4 has acked nothing: both stay; u3 still reads "two" after its cursor. */
    assert_int_equal(stored_entries(), base + 2);
    assert_int_equal(fetch(3, 1), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
    assert_int_equal(F->out.reply.body.deliver.entries[0]->seq, 2);
    assert_int_equal(fetch(2, 2), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 0);
    assert_int_equal(ack(4, 1), BODY(OK));
    assert_int_equal(stored_entries(), base + 1); /* everyone acked 1 */
    assert_int_equal(ack(3, 2), BODY(OK));
    assert_int_equal(ack(4, 2), BODY(OK));
    assert_int_equal(stored_entries(), base);
    /* Not a subscriber: no fetch, no ack. */
    assert_int_equal(fetch(6, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not subscribed");
    assert_int_equal(ack(6, 2), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not subscribed");
}

static void test_unsubscribe(void **state)
{
    (void)state;
    make_channel();
    assert_int_equal(sub(2, CH, 0), BODY(OK));
    assert_int_equal(sub(3, CH, 0), BODY(OK));
    uint64_t base = stored_entries();
    assert_int_equal(post(1, 1, "one"), BODY(SENT));
    assert_int_equal(ack(2, 1), BODY(OK));
    assert_int_equal(stored_entries(), base + 1); /* u3 holds it back */
    assert_int_equal(unsub(3), BODY(OK));
    assert_int_equal(stored_entries(), base);     /* ... no longer */
    assert_int_equal(unsub(3), BODY(ERROR));
    expect_error(CODE(NOT_FOUND), "do not subscribe");
    assert_int_equal(fetch(3, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(post(1, 1, "two"), BODY(SENT));
    assert_int_equal(F->out.n_push_users, 1);
    assert_true(has_user(2));
    /* Subscribing again starts at the last seq; with a backlog earlier. */
    assert_int_equal(sub(3, CH, 0), BODY(OK));
    assert_int_equal(fetch(3, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1); /* "two" is retained */
    assert_int_equal(unsub(3), BODY(OK));
    assert_int_equal(sub(5, CH, 0), BODY(OK));
    kl_storage_channel_t c;
    int subd = 0;
    uint64_t cur = 99;
    assert_int_equal(kl_storage_channel_caller(F->st, CH, F->s[5].user_id, &c, &subd, &cur), 0);
    assert_true(subd);
    assert_int_equal(cur, 2);
    assert_int_equal(sub(6, CH, 1), BODY(OK)); /* the latest post: "two" */
    assert_int_equal(kl_storage_channel_caller(F->st, CH, F->s[6].user_id, &c, &subd, &cur), 0);
    assert_true(subd);
    assert_int_equal(cur, 1);
    assert_int_equal(sub(7, CH, 5), BODY(OK)); /* "one" is gone: all that is retained */
    assert_int_equal(kl_storage_channel_caller(F->st, CH, F->s[7].user_id, &c, &subd, &cur), 0);
    assert_int_equal(cur, 0);
    assert_int_equal(sub(7, CH, 0), BODY(OK)); /* again: the cursor stays */
    assert_int_equal(kl_storage_channel_caller(F->st, CH, F->s[7].user_id, &c, &subd, &cur), 0);
    assert_int_equal(cur, 0);
}

static void test_publisher_removed_and_errors(void **state)
{
    (void)state;
    make_channel();
    assert_int_equal(sub(2, CH, 0), BODY(OK));
    assert_int_equal(op(0, KL_COP_REMOVE_PUBLISHER, 1), BODY(CHANNEL_OP_ACCEPTED));
    /* The op is pushed to subscribers as channel_log. */
    assert_true(F->out.has_push);
    assert_true(has_user(2));
    assert_int_equal(F->out.push.frame.body_case, BODY(CHANNEL_LOG));
    assert_int_equal(F->out.push.body.channel_log.from_index, 2);
    assert_int_equal(F->out.push.body.channel_log.next_index, 3);
    /* u1's post, signed while it was a publisher, is refused now. */
    kl_channel_t *old = NULL;
    uint8_t *b = NULL, *p = NULL;
    size_t len = 0, plen = 0;
    kl_channel_verr_t why;
    assert_int_equal(kl_channel_new(&old, CH), 0);
    assert_int_equal(kl_channel_op_build(old, U[0].sk, U[0].pk, U[0].addr, NOW,
                                         KL_COP_CREATE, NULL, NULL, &b, &len), 0);
    assert_int_equal(kl_channel_apply(old, b, len, NULL, &why), 0);
    free(b);
    assert_int_equal(kl_channel_op_build(old, U[0].sk, U[0].pk, U[0].addr, NOW,
                                         KL_COP_ADD_PUBLISHER, U[1].pk, U[1].addr, &b,
                                         &len), 0);
    assert_int_equal(kl_channel_apply(old, b, len, NULL, &why), 0);
    build_post(old, 1, "still here?", &p, &plen);
    assert_int_equal(send_body(1, CH, p, plen), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a publisher of " CH);
    free(b);
    free(p);
    kl_channel_free(old);
    /* The log is public: a stranger fetches all three ops. */
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__ChannelFetch cf = KOLLEGA__RELAY__V1__CHANNEL_FETCH__INIT;
    cf.channel = CH;
    fr.body_case = BODY(CHANNEL_FETCH);
    fr.channel_fetch = &cf;
    assert_int_equal(req(7, &fr), BODY(CHANNEL_LOG));
    assert_int_equal(F->out.reply.body.channel_log.n_ops, 3);
    assert_int_equal(F->out.reply.body.channel_log.next_index, 3);
    assert_int_equal(F->out.reply.body.channel_log.head.len, 32);
    /* Errors: creating again, a stale index, unknown and remote channels. */
    uint8_t *c0 = NULL;
    size_t c0len = 0;
    kl_channel_t *fresh = NULL;
    assert_int_equal(kl_channel_new(&fresh, CH), 0);
    assert_int_equal(kl_channel_op_build(fresh, U[0].sk, U[0].pk, U[0].addr, NOW,
                                         KL_COP_CREATE, NULL, NULL, &c0, &c0len), 0);
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    co.signed_op.data = c0;
    co.signed_op.len = c0len;
    kl_frame_t fo = KOLLEGA__RELAY__V1__FRAME__INIT;
    fo.body_case = BODY(CHANNEL_OP);
    fo.channel_op = &co;
    assert_int_equal(req(0, &fo), BODY(ERROR));
    expect_error(CODE(CONFLICT), "already exists");
    assert_int_equal(req(1, &fo), BODY(ERROR)); /* someone else's op */
    expect_error(CODE(FORBIDDEN), "connected user");
    free(c0);
    kl_channel_free(fresh);
    assert_int_equal(sub(2, "!nothing@oslo.test", 0), BODY(ERROR));
    expect_error(CODE(NOT_FOUND), "no such channel");
    assert_int_equal(sub(2, "!news@stockholm.test", 0), BODY(ERROR));
    expect_error(CODE(UNAVAILABLE), "federation");
    assert_int_equal(sub(2, "news@oslo.test", 0), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "!name@relay");
}

/* DoS hardening: an op with a bad signature is refused before any job
 * (so the storage thread never loads the channel for it), and posts and
 * ops are checked against the cached state, not a replay per request. */
static void test_op_checked_statelessly_and_state_cached(void **state)
{
    (void)state;
    make_channel();
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(kl_channel_op_build(F->chan, U[0].sk, U[0].pk, U[0].addr, NOW,
                                         KL_COP_ADD_PUBLISHER, U[2].pk, U[2].addr, &b,
                                         &len), 0);
    b[len - 1] ^= 0x01; /* the signature is the last field */
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    co.signed_op.data = b;
    co.signed_op.len = len;
    kl_frame_t fo = KOLLEGA__RELAY__V1__FRAME__INIT;
    fo.body_case = BODY(CHANNEL_OP);
    fo.channel_op = &co;
    fo.id = F->next_id++;
    kl_dispatch_out_free(&F->out);
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[0], &fo, NOW, &F->out), 0);
    assert_null(F->out.job); /* no storage work at all */
    expect_error(CODE(BAD_REQUEST), "signature does not verify");
    /* Garbage is refused the same way. */
    co.signed_op.len = 5;
    kl_dispatch_out_free(&F->out);
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[0], &fo, NOW, &F->out), 0);
    assert_null(F->out.job);
    expect_error(CODE(BAD_REQUEST), "not a channel op");
    free(b);
    /* Ten posts and an op: at most one replay (the cache was filled by the
     * ops of make_channel), the rest hit the cached state. */
    uint64_t h0 = 0, m0 = 0, h1 = 0, m1 = 0;
    kl_ccache_stats(F->st, &h0, &m0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(post(1, 1, "cached"), BODY(SENT));
    assert_int_equal(op(0, KL_COP_ADD_PUBLISHER, 2), BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(post(2, 2, "by the new publisher"), BODY(SENT));
    uint8_t *late = NULL;
    size_t late_len = 0;
    build_post(NULL, 2, "removed", &late, &late_len); /* signed while still a publisher */
    assert_int_equal(op(0, KL_COP_REMOVE_PUBLISHER, 2), BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(send_body(2, CH, late, late_len), BODY(ERROR)); /* the cache follows */
    free(late);
    expect_error(CODE(FORBIDDEN), "not a publisher of " CH);
    kl_ccache_stats(F->st, &h1, &m1);
    assert_true(m1 - m0 <= 1);
    assert_true(h1 - h0 >= 13);
}

/* A request of a federation peer (kl_dispatch_channel_remote) as `who`
 * with key: its job run and completed like req(). */
static int remote_req(const char *who, const uint8_t key[32], kl_frame_t *fr)
{
    reset_out();
    fr->id = F->next_id++;
    assert_int_equal(kl_dispatch_channel_remote(&F->cfg, who, key, fr, NOW, &F->out), 0);
    if (F->out.job)
        F->out.job->req_id = fr->id; /* as fed_group.c does */
    return run_out(NULL, fr->id);
}

static kl_frame_t *channel_frame(kl_frame_t *fr, int body, void *msg)
{
    kl_frame_t init = KOLLEGA__RELAY__V1__FRAME__INIT;
    *fr = init;
    fr->body_case = body;
    switch (body) {
    case BODY(SUBSCRIBE):
        fr->subscribe = msg;
        break;
    case BODY(FETCH):
        fr->fetch = msg;
        break;
    case BODY(ACK):
        fr->ack = msg;
        break;
    case BODY(SEND):
        fr->send = msg;
        break;
    default:
        fr->channel_fetch = msg;
        break;
    }
    return fr;
}

/* A peer relay ("@stockholm.test") mirroring the channel: it subscribes
 * as ONE subscriber, is named in every post's notify list, reads and acks
 * like a subscriber but never again below its cursor, and may not post. */
static void test_peer_relay_mirrors(void **state)
{
    (void)state;
    uint8_t key[32];
    kl_frame_t fr;
    kl_random(key, 32);
    make_channel();
    Kollega__Relay__V1__Subscribe sb = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    sb.channel = CH;
    assert_int_equal(remote_req("@stockholm.test", key, channel_frame(&fr, BODY(SUBSCRIBE), &sb)),
                     BODY(OK));
    assert_int_equal(sub(2, CH, 0), BODY(OK));
    assert_int_equal(post(1, 1, "to both relays"), BODY(SENT));
    uint64_t seq = F->out.reply.body.sent.seq;
    assert_true(F->out.has_push);
    assert_true(F->out.notify_channel);
    assert_int_equal(F->out.n_notify, 1);
    assert_string_equal(F->out.notify, "stockholm.test");
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.channel = CH;
    assert_int_equal(remote_req("@stockholm.test", key, channel_frame(&fr, BODY(FETCH), &fe)),
                     BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
    assert_int_equal(F->out.reply.body.deliver.entries[0]->seq, seq);
    Kollega__Relay__V1__Ack ak = KOLLEGA__RELAY__V1__ACK__INIT;
    ak.channel = CH;
    ak.seq = seq;
    assert_int_equal(remote_req("@stockholm.test", key, channel_frame(&fr, BODY(ACK), &ak)),
                     BODY(OK));
    /* u2 has not acked: the entry stays, but the relay never reads it again. */
    assert_int_equal(remote_req("@stockholm.test", key, channel_frame(&fr, BODY(FETCH), &fe)),
                     BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 0);
    assert_int_equal(fetch(2, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
    /* A relay only mirrors: it may not post. */
    uint8_t *b = NULL;
    size_t len = 0;
    build_post(NULL, 1, "as a relay", &b, &len);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = CH;
    sd.body.data = b;
    sd.body.len = len;
    assert_int_equal(remote_req("@stockholm.test", key, channel_frame(&fr, BODY(SEND), &sd)),
                     BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "not a request a relay makes");
    free(b);
}

/* A peer's user: reads the publisher log and posts when a publisher (its
 * relay vouching for its address and key), but subscribes only through its
 * own relay's mirror; a channel of another relay is refused. */
static void test_peer_user_rules(void **state)
{
    (void)state;
    kl_frame_t fr;
    user_t kari;
    assert_int_equal(kl_sign_keypair(kari.pk, kari.sk), 0);
    snprintf(kari.addr, sizeof kari.addr, "kari@stockholm.test");
    make_channel();
    Kollega__Relay__V1__Subscribe sb = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    sb.channel = CH;
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(SUBSCRIBE), &sb)),
                     BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "through the user's relay");
    Kollega__Relay__V1__ChannelFetch cf = KOLLEGA__RELAY__V1__CHANNEL_FETCH__INIT;
    cf.channel = CH;
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(CHANNEL_LOG));
    assert_int_equal(F->out.reply.body.channel_log.n_ops, 2);
    U[7] = kari; /* op() and build_post name and sign as u[7] */
    uint8_t *b = NULL;
    size_t len = 0;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = CH;
    assert_int_equal(op(0, KL_COP_ADD_PUBLISHER, 7), BODY(CHANNEL_OP_ACCEPTED));
    build_post(NULL, 7, "from stockholm", &b, &len);
    sd.body.data = b;
    sd.body.len = len;
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(SEND), &sd)),
                     BODY(SENT));
    /* The same post claimed by another user of that relay. */
    assert_int_equal(remote_req("ola@stockholm.test", kari.pk,
                                channel_frame(&fr, BODY(SEND), &sd)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a publisher of " CH);
    free(b);
    cf.channel = "!news@riga.test";
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "not a channel of this relay");
    /* A local user asking for a channel of a relay that is not a peer. */
    Kollega__Relay__V1__Subscribe s2 = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    s2.channel = "!news@riga.test";
    assert_int_equal(req(2, channel_frame(&fr, BODY(SUBSCRIBE), &s2)), BODY(ERROR));
    expect_error(CODE(UNAVAILABLE), "no federation peer for riga.test");
}

/* A peer's user's post is held to this relay's body limit as a local
 * user's is: over it TOO_LARGE, empty BAD_REQUEST (the two entries used to
 * differ: a peer's oversize post was refused as BAD_REQUEST). */
static void test_peer_post_body_limits(void **state)
{
    (void)state;
    kl_frame_t fr;
    user_t kari;
    assert_int_equal(kl_sign_keypair(kari.pk, kari.sk), 0);
    snprintf(kari.addr, sizeof kari.addr, "kari@stockholm.test");
    make_channel();
    size_t big = F->cfg.max_body + 1;
    uint8_t *b = calloc(1, big);
    assert_non_null(b);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = CH;
    sd.body.data = b;
    sd.body.len = big;
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(SEND), &sd)),
                     BODY(ERROR));
    expect_error(CODE(TOO_LARGE), "over this relay's limit");
    assert_null(F->out.job);
    assert_int_equal(send_body(1, CH, b, big), BODY(ERROR)); /* a local user: the same */
    expect_error(CODE(TOO_LARGE), "over this relay's limit");
    sd.body.len = 0;
    assert_int_equal(remote_req(kari.addr, kari.pk, channel_frame(&fr, BODY(SEND), &sd)),
                     BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "non-empty body");
    free(b);
}

/* A members-only channel and peers: a peer's user sees the log only as a
 * member by key AND address (a peer cannot invent a user with a member's
 * public key); a peer relay mirrors it only while a member lives there. */
static void test_members_only_peers(void **state)
{
    (void)state;
    kl_frame_t fr;
    uint8_t *b = NULL, relay_key[32];
    size_t len = 0;
    kl_channel_verr_t why;
    kl_random(relay_key, 32);
    assert_int_equal(kl_sign_keypair(U[7].pk, U[7].sk), 0);
    snprintf(U[7].addr, sizeof U[7].addr, "kari@stockholm.test");
    assert_int_equal(kl_channel_op_build_create(F->chan, U[0].sk, U[0].pk, U[0].addr, NOW, 1, &b,
                                                &len),
                     0);
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    co.signed_op.data = b;
    co.signed_op.len = len;
    fr = (kl_frame_t)KOLLEGA__RELAY__V1__FRAME__INIT;
    fr.body_case = BODY(CHANNEL_OP);
    fr.channel_op = &co;
    assert_int_equal(req(0, &fr), BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(kl_channel_apply(F->chan, b, len, NULL, &why), 0);
    free(b);
    assert_int_equal(op(0, KL_COP_ADD_MEMBER, 7), BODY(CHANNEL_OP_ACCEPTED));
    Kollega__Relay__V1__ChannelFetch cf = KOLLEGA__RELAY__V1__CHANNEL_FETCH__INIT;
    cf.channel = CH;
    assert_int_equal(remote_req(U[7].addr, U[7].pk, channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(CHANNEL_LOG));
    assert_int_equal(remote_req("spy@stockholm.test", U[7].pk,
                                channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "members only");
    assert_int_equal(remote_req("kari@riga.test", U[7].pk,
                                channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "members only");
    Kollega__Relay__V1__Subscribe sb = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    sb.channel = CH;
    assert_int_equal(remote_req("@stockholm.test", relay_key,
                                channel_frame(&fr, BODY(SUBSCRIBE), &sb)),
                     BODY(OK));
    assert_int_equal(remote_req("@riga.test", relay_key, channel_frame(&fr, BODY(SUBSCRIBE), &sb)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "members only");
    assert_int_equal(remote_req("@riga.test", relay_key,
                                channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "members only");
    /* The member leaves: stockholm, subscribed, still reads the log (to
     * learn of it), but could not subscribe anew. */
    assert_int_equal(op(0, KL_COP_REMOVE_MEMBER, 7), BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(remote_req("@stockholm.test", relay_key,
                                channel_frame(&fr, BODY(CHANNEL_FETCH), &cf)),
                     BODY(CHANNEL_LOG));
    Kollega__Relay__V1__Unsubscribe us = KOLLEGA__RELAY__V1__UNSUBSCRIBE__INIT;
    us.channel = CH;
    fr = (kl_frame_t)KOLLEGA__RELAY__V1__FRAME__INIT;
    fr.body_case = BODY(UNSUBSCRIBE);
    fr.unsubscribe = &us;
    assert_int_equal(remote_req("@stockholm.test", relay_key, &fr), BODY(OK));
    assert_int_equal(remote_req("@stockholm.test", relay_key,
                                channel_frame(&fr, BODY(SUBSCRIBE), &sb)),
                     BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "members only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_stored_once, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_non_publisher_refused, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_forged_post_refused, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_cursor_per_subscriber_and_deletion, setup,
                                        dfx_teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_publisher_removed_and_errors, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_op_checked_statelessly_and_state_cached, setup,
                                        dfx_teardown),
        cmocka_unit_test_setup_teardown(test_peer_relay_mirrors, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_peer_user_rules, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_peer_post_body_limits, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_members_only_peers, setup, dfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
