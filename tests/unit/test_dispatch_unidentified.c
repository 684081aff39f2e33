/* Unidentified delivery in the relay's dispatch (relay.proto
 * Send.delivery_token, DeliveryToken): on a connection that is not
 * authenticated, a send or lookup to a user of this relay is taken only with
 * that user's delivery token; a wrong token and an unknown user look the
 * same (FORBIDDEN + close); only this relay's users; per-recipient rate,
 * charged only for stored sends. Real sqlite through dispatch_fixture.h. */
#include "core/buckets.h"
#include "dispatch_fixture.h"
#include "kollega/crypto.h"

#define NU 2

static struct {
    uint8_t pk[32], sk[64];
    char addr[32];
} U[NU];
static uint8_t TOKEN[32];
static kl_client_state_t anon;

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
    kl_random(TOKEN, sizeof TOKEN);
    if (dfx_open("/tmp/kl-dud-XXXXXX",
                 (dfx_limits_t){.max_body = 60000, .ttl_default_s = 3600, .max_bytes = 1000000},
                 NU, U[0].pk, sizeof U[0]) != 0)
        return -1;
    kl_client_state_init(&anon, &F->cfg, NOW);
    return 0;
}

/* u's DeliveryToken with hash (NULL: an empty one). */
static int set_token(int u, const uint8_t *hash, size_t len)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__DeliveryToken dt = KOLLEGA__RELAY__V1__DELIVERY_TOKEN__INIT;
    dt.token_hash.data = (uint8_t *)hash;
    dt.token_hash.len = hash ? len : 0;
    f.body_case = BODY(DELIVERY_TOKEN);
    f.delivery_token = &dt;
    return req(u, &f);
}

/* A frame on the unauthenticated session. */
static int anon_req(kl_frame_t *fr)
{
    reset_out();
    fr->id = F->next_id++;
    assert_int_equal(kl_dispatch_frame(&F->cfg, &anon, fr, NOW, &F->out), 0);
    return run_out(&anon, fr->id);
}

static int anon_send(const char *to, const uint8_t *token)
{
    static uint8_t body[100];
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
    memset(body, 0x5a, sizeof body);
    s.to = (char *)to;
    s.body.data = body;
    s.body.len = sizeof body;
    if (token) {
        s.delivery_token.data = (uint8_t *)token;
        s.delivery_token.len = 32;
    }
    f.body_case = BODY(SEND);
    f.send = &s;
    return anon_req(&f);
}

static int anon_lookup(const char *address, const uint8_t *token)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Lookup l = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    l.address = (char *)address;
    l.delivery_token.data = (uint8_t *)token;
    l.delivery_token.len = 32;
    f.body_case = BODY(LOOKUP);
    f.lookup = &l;
    return anon_req(&f);
}

static uint64_t inbox_entries(int u)
{
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    assert_int_equal(kl_storage_log_read(F->st, F->users[u].inbox, 0, NOW, 100, 1u << 20, &e, &n,
                                         &more), 0);
    kl_storage_entries_free(e, n);
    return n;
}

static void test_token_admits_and_nothing_else(void **state)
{
    (void)state;
    uint8_t hash[32], wrong[32];
    kl_sha256(TOKEN, 32, hash);
    kl_random(wrong, sizeof wrong);
    /* No token set yet: refused, and the connection closes. */
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "delivery token");
    assert_true(F->out.close);
    assert_int_equal(set_token(1, hash, 32), BODY(OK));
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(SENT));
    assert_false(F->out.close);
    assert_int_equal(inbox_entries(1), 1);
    assert_int_equal(anon_lookup(U[1].addr, TOKEN), BODY(LOOKUP_RESULT));
    assert_true(F->out.reply.body.lookup_result.exists);
    assert_memory_equal(F->out.reply.body.lookup_result.identity_key.data, U[1].pk, 32);
    /* A wrong token, and an unknown user, look the same. */
    assert_int_equal(anon_send(U[1].addr, wrong), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_true(F->out.close);
    assert_int_equal(anon_send("nobody@oslo.test", TOKEN), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(anon_lookup(U[1].addr, wrong), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(inbox_entries(1), 1);
    /* A user of another relay: only after its relay confirmed the token
     * on this connection (a proxied lookup). Never groups or channels. */
    assert_int_equal(anon_send("kari@stockholm.test", TOKEN), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "look the recipient up");
    assert_true(F->out.close);
    assert_int_equal(anon_send("#erfa@oslo.test", TOKEN), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), NULL);
    assert_int_equal(anon_send("!news@oslo.test", TOKEN), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), NULL);
    /* Without a token the old rule holds: authenticate first. */
    assert_int_equal(anon_send(U[1].addr, NULL), BODY(ERROR));
    expect_error(CODE(UNAUTHENTICATED), NULL);
    assert_true(F->out.close);
    /* The session stays unauthenticated whatever it sent. */
    assert_false(anon.authed);
    /* The owner turns unidentified delivery off. */
    assert_int_equal(set_token(1, NULL, 0), BODY(OK));
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(set_token(1, hash, 31), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "32 bytes");
}

static void test_rate_per_recipient(void **state)
{
    (void)state;
    uint8_t hash[32], wrong[32];
    kl_buckets_t *lim = NULL;
    kl_sha256(TOKEN, 32, hash);
    kl_random(wrong, sizeof wrong);
    assert_int_equal(kl_buckets_new(&lim, 16, 2, 60000), 0);
    F->cfg.ud_limit = lim;
    assert_int_equal(set_token(1, hash, 32), BODY(OK));
    /* Failed tries do not use up the recipient's allowance. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(anon_send(U[1].addr, wrong), BODY(ERROR));
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(SENT));
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(SENT));
    assert_int_equal(anon_send(U[1].addr, TOKEN), BODY(ERROR));
    expect_error(CODE(RATE_LIMITED), "authenticate");
    assert_false(F->out.close);
    assert_int_equal(inbox_entries(1), 2);
    /* Identified sends are not limited by it. */
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
    uint8_t body[10] = {1};
    s.to = U[1].addr;
    s.body.data = body;
    s.body.len = sizeof body;
    f.body_case = BODY(SEND);
    f.send = &s;
    assert_int_equal(req(0, &f), BODY(SENT));
    F->cfg.ud_limit = NULL;
    kl_buckets_free(lim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_admits_and_nothing_else, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_rate_per_recipient, setup, dfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
