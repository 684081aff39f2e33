/* The federation link hint (proto/fedhint.c): the first frame a relay
 * receives on its federation port, from anyone, is hint(16) || Noise_KK
 * message 1, and kl_fedhint_find picks the one configured peer key to try.
 * Three peer keys are derived from fixed key pairs (the same in every run);
 * the input is the frame.
 * Oracles: no crash; an index is returned only for a hint that is exactly
 * kl_fedhint_make of that peer's key over the rest of the frame; frames too
 * short for an ephemeral key find nothing. */
#include <string.h>

#include "fuzz.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/fedhint.h"

#define PEERS 3

static uint8_t keys[PEERS * KL_FEDHINT_KEY];

static void init(void)
{
    static int done;
    uint8_t sk[32], pk[32], peer_sk[32], peer_pk[32];
    if (done)
        return;
    FUZZ_CHECK(kl_crypto_init() == 0);
    memset(sk, 0x11, sizeof sk);
    FUZZ_CHECK(kl_x_public(sk, pk) == 0);
    for (int i = 0; i < PEERS; i++) {
        memset(peer_sk, 0x21 + i, sizeof peer_sk);
        FUZZ_CHECK(kl_x_public(peer_sk, peer_pk) == 0);
        FUZZ_CHECK(kl_fedhint_key(sk, peer_pk, keys + i * KL_FEDHINT_KEY) == 0);
    }
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t want[KL_FEDHINT_LEN];
    init();
    if (len < KL_FEDHINT_LEN)
        return 0;
    const uint8_t *msg1 = data + KL_FEDHINT_LEN;
    size_t mlen = len - KL_FEDHINT_LEN;
    long i = kl_fedhint_find(keys, PEERS, data, msg1, mlen);
    FUZZ_CHECK(i >= -1 && i < PEERS);
    if (mlen < 32) {
        FUZZ_CHECK(i == -1);
        return 0;
    }
    for (long k = 0; k < PEERS; k++) {
        FUZZ_CHECK(kl_fedhint_make(keys + k * KL_FEDHINT_KEY, msg1, mlen, want) == 0);
        if (k == i)
            FUZZ_CHECK(memcmp(want, data, KL_FEDHINT_LEN) == 0);
        else if (i == -1)
            FUZZ_CHECK(memcmp(want, data, KL_FEDHINT_LEN) != 0);
    }
    return 0;
}
