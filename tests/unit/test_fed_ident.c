/* Identifying the peer on an inbound federation link (relay/fed/fed_ident.c,
 * proto/fedhint.c): the hint in front of Noise_KK message 1 names the peer
 * with keyed hashes only, so a wrong, absent or stranger's hint is refused
 * without a single handshake try (no DH per configured peer), and a right
 * one costs exactly one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "fed/fed_peer.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/fedhint.h"

#define N_PEERS 4

typedef struct fixture {
    uv_loop_t loop;
    kl_fed_t *fed;
    uint8_t sk[32], pk[32];             /* ours */
    uint8_t peer_sk[N_PEERS][32];
    kl_storage_peer_t peers[N_PEERS];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0 || uv_loop_init(&f->loop) != 0)
        return -1;
    kl_x_keypair(f->pk, f->sk);
    for (int i = 0; i < N_PEERS; i++) {
        kl_x_keypair(f->peers[i].key, f->peer_sk[i]);
        f->peers[i].id = (uint64_t)i + 1;
        snprintf(f->peers[i].name, sizeof f->peers[i].name, "peer%d.test", i);
        snprintf(f->peers[i].addr, sizeof f->peers[i].addr, "127.0.0.1:1");
    }
    kl_fed_cfg_t cfg = {.loop = &f->loop, .relay_name = "oslo.test", .static_sk = f->sk};
    char bound[8];
    if (kl_fed_new(&f->fed, &cfg, f->peers, N_PEERS, bound, sizeof bound) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kl_fed_stop(f->fed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    kl_fed_free(f->fed);
    uv_loop_close(&f->loop);
    kl_memzero(f, sizeof *f);
    free(f);
    return 0;
}

/* What relay `from` (with static key from_sk) sends first when it dials us
 * (to_pk): hint || message 1, made with the hint key from_sk and hint_pk
 * give (the right pair, or not). */
static size_t hello(const uint8_t from_sk[32], const uint8_t to_pk[32],
                    const uint8_t hint_pk[32], uint8_t out[FED_HS_MAX])
{
    uint8_t key[KL_FEDHINT_KEY];
    size_t mlen = 0;
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t nc = {.pattern = KL_NOISE_KK,
                            .initiator = 1,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = from_sk,
                            .rs = to_pk};
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    assert_int_equal(kl_noise_hs_write(hs, NULL, 0, out + KL_FEDHINT_LEN,
                                       FED_HS_MAX - KL_FEDHINT_LEN, &mlen),
                     0);
    assert_int_equal(mlen, 48);
    assert_int_equal(kl_fedhint_key(from_sk, hint_pk, key), 0);
    assert_int_equal(kl_fedhint_make(key, out + KL_FEDHINT_LEN, mlen, out), 0);
    kl_memzero(key, sizeof key);
    kl_noise_hs_free(hs);
    return KL_FEDHINT_LEN + mlen;
}

/* Both ends of a pair derive the same hint key; another pair does not. */
static void test_hint_key_is_the_pairs(void **state)
{
    fixture_t *f = *state;
    uint8_t a[KL_FEDHINT_KEY], b[KL_FEDHINT_KEY], c[KL_FEDHINT_KEY];
    assert_int_equal(kl_fedhint_key(f->sk, f->peers[1].key, a), 0);
    assert_int_equal(kl_fedhint_key(f->peer_sk[1], f->pk, b), 0);
    assert_int_equal(kl_fedhint_key(f->sk, f->peers[2].key, c), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_memory_equal(kl_fed_hint_key(f->fed, 1), a, sizeof a);
    uint8_t zero[32] = {0};
    assert_int_equal(kl_fedhint_key(f->sk, zero, c), KL_ECRYPTO);
    assert_int_equal(kl_fedhint_make(a, zero, 31, c), KL_EINVAL);
}

/* The right hint: exactly one handshake, with that peer, and it completes. */
static void test_right_hint_one_try(void **state)
{
    fixture_t *f = *state;
    uint8_t msg[FED_HS_MAX];
    for (int i = 0; i < N_PEERS; i++) {
        size_t n = hello(f->peer_sk[i], f->pk, f->pk, msg);
        kl_noise_hs_t *hs = NULL;
        uint64_t before = kl_fed_hs_tries(f->fed);
        fed_peer_t *p = kl_fed_identify(f->fed, msg, n, &hs);
        assert_non_null(p);
        assert_ptr_equal(p, kl_fed_peer_at(f->fed, i));
        assert_int_equal(kl_fed_hs_tries(f->fed), before + 1);
        assert_true(kl_noise_hs_my_turn(hs));
        kl_noise_hs_free(hs);
    }
}

/* A reload (kl_fed_set_peers): a removed peer's hint is refused at once
 * (no handshake) and the peer is no longer configured; a new peer is
 * identified; unchanged peers are the same objects (their links and
 * state stay). */
static void test_set_peers_reload(void **state)
{
    fixture_t *f = *state;
    uint8_t msg[FED_HS_MAX], sk[32];
    kl_storage_peer_t next[N_PEERS];
    size_t added = 9, removed = 9;
    fed_peer_t *kept0 = kl_fed_peer_at(f->fed, 0), *kept2 = kl_fed_peer_at(f->fed, 2);
    /* peers 0, 2, 3 stay; 1 goes; a new one (id 9) comes; 3's key changes. */
    next[0] = f->peers[0];
    next[1] = f->peers[2];
    next[2] = f->peers[3];
    kl_x_keypair(next[2].key, sk);
    next[3] = f->peers[1];
    next[3].id = 9;
    snprintf(next[3].name, sizeof next[3].name, "new.test");
    uint8_t new_sk[32];
    kl_x_keypair(next[3].key, new_sk);
    assert_int_equal(kl_fed_set_peers(f->fed, next, N_PEERS, &added, &removed), 0);
    assert_int_equal(added, 2);
    assert_int_equal(removed, 2);
    assert_int_equal(kl_fed_peer_count(f->fed), N_PEERS);
    assert_ptr_equal(kl_fed_peer_at(f->fed, 0), kept0);
    assert_ptr_equal(kl_fed_peer_at(f->fed, 1), kept2);
    assert_null(kl_fed_peer(f->fed, "peer1.test"));
    assert_non_null(kl_fed_peer(f->fed, "new.test"));
    /* Jobs still naming a removed peer find it, retired. */
    fed_peer_t *gone = kl_fed_peer_by_id(f->fed, 2);
    assert_non_null(gone);
    assert_true(kl_fed_peer_removed(gone));
    kl_noise_hs_t *hs = NULL;
    uint64_t before = kl_fed_hs_tries(f->fed);
    size_t n = hello(f->peer_sk[1], f->pk, f->pk, msg);
    assert_null(kl_fed_identify(f->fed, msg, n, &hs));
    n = hello(f->peer_sk[3], f->pk, f->pk, msg); /* peer 3's old key */
    assert_null(kl_fed_identify(f->fed, msg, n, &hs));
    assert_int_equal(kl_fed_hs_tries(f->fed), before);
    n = hello(new_sk, f->pk, f->pk, msg);
    fed_peer_t *p = kl_fed_identify(f->fed, msg, n, &hs);
    assert_non_null(p);
    assert_string_equal(kl_fed_peer_cfg(p)->name, "new.test");
    kl_noise_hs_free(hs);
    n = hello(sk, f->pk, f->pk, msg); /* peer 3's new key */
    p = kl_fed_identify(f->fed, msg, n, &hs);
    assert_non_null(p);
    assert_string_equal(kl_fed_peer_cfg(p)->name, "peer3.test");
    kl_noise_hs_free(hs);
    n = hello(f->peer_sk[2], f->pk, f->pk, msg);
    assert_ptr_equal(kl_fed_identify(f->fed, msg, n, &hs), kept2);
    kl_noise_hs_free(hs);
    kl_memzero(sk, sizeof sk);
    kl_memzero(new_sk, sizeof new_sk);
}

/* Wrong, absent, truncated or stranger's hints: refused, no handshake. */
static void test_bad_hints_cost_no_handshake(void **state)
{
    fixture_t *f = *state;
    uint8_t msg[FED_HS_MAX], sk[32], pk[32];
    kl_noise_hs_t *hs = NULL;

    /* A flipped bit in the hint. */
    size_t n = hello(f->peer_sk[2], f->pk, f->pk, msg);
    msg[3] ^= 0x10;
    assert_null(kl_fed_identify(f->fed, msg, n, &hs));
    /* The hint of another pair (peer 2's key with peer 1's hint key). */
    uint8_t key[KL_FEDHINT_KEY];
    n = hello(f->peer_sk[2], f->pk, f->pk, msg);
    assert_int_equal(kl_fedhint_key(f->peer_sk[1], f->pk, key), 0);
    assert_int_equal(kl_fedhint_make(key, msg + KL_FEDHINT_LEN, n - KL_FEDHINT_LEN, msg), 0);
    kl_memzero(key, sizeof key);
    uint64_t before = kl_fed_hs_tries(f->fed);
    /* (this one names peer 1, so it costs one try, which then fails) */
    assert_null(kl_fed_identify(f->fed, msg, n, &hs));
    assert_int_equal(kl_fed_hs_tries(f->fed), before + 1);
    before = kl_fed_hs_tries(f->fed);
    /* No hint at all: a bare message 1, as relays before the hint sent. */
    n = hello(f->peer_sk[0], f->pk, f->pk, msg);
    assert_null(kl_fed_identify(f->fed, msg + KL_FEDHINT_LEN, n - KL_FEDHINT_LEN, &hs));
    /* Too short for a hint and an ephemeral key. */
    assert_null(kl_fed_identify(f->fed, msg, KL_FEDHINT_LEN + 31, &hs));
    assert_null(kl_fed_identify(f->fed, msg, 3, &hs));
    /* A stranger (not configured) that knows our public key. */
    kl_x_keypair(pk, sk);
    n = hello(sk, f->pk, f->pk, msg);
    assert_null(kl_fed_identify(f->fed, msg, n, &hs));
    /* Random bytes. */
    kl_random(msg, 64);
    assert_null(kl_fed_identify(f->fed, msg, 64, &hs));
    assert_int_equal(kl_fed_hs_tries(f->fed), before);
    assert_null(hs);
    kl_memzero(sk, sizeof sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hint_key_is_the_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_right_hint_one_try, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_peers_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_hints_cost_no_handshake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
