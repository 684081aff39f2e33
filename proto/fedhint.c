/* Federation link hints (include/kollega/fedhint.h). */
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/fedhint.h"

int kl_fedhint_key(const uint8_t sk[32], const uint8_t peer_pk[32],
                   uint8_t key[KL_FEDHINT_KEY])
{
    uint8_t ss[KL_X_KEY];
    int r = kl_dh(sk, peer_pk, ss);
    if (r == 0)
        r = kl_blake2b_keyed(ss, sizeof ss, (const uint8_t *)KL_FEDHINT_LABEL,
                             strlen(KL_FEDHINT_LABEL), key, KL_FEDHINT_KEY);
    kl_memzero(ss, sizeof ss);
    if (r)
        kl_memzero(key, KL_FEDHINT_KEY);
    return r;
}

int kl_fedhint_make(const uint8_t key[KL_FEDHINT_KEY], const uint8_t *msg1, size_t msg1_len,
                    uint8_t hint[KL_FEDHINT_LEN])
{
    if (msg1_len < KL_X_KEY)
        return KL_EINVAL;
    return kl_blake2b_keyed(key, KL_FEDHINT_KEY, msg1, KL_X_KEY, hint, KL_FEDHINT_LEN);
}

long kl_fedhint_find(const uint8_t *keys, size_t n, const uint8_t hint[KL_FEDHINT_LEN],
                     const uint8_t *msg1, size_t msg1_len)
{
    uint8_t want[KL_FEDHINT_LEN];
    long found = -1;
    if (msg1_len < KL_X_KEY)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (kl_fedhint_make(keys + i * KL_FEDHINT_KEY, msg1, msg1_len, want) != 0)
            continue;
        /* No early exit and no branch on the secret comparison's outcome
         * beyond recording it: the first match wins (two peers never share
         * a key pair, so there is at most one). */
        int eq = kl_memcmp(want, hint, KL_FEDHINT_LEN) == 0;
        found = eq && found < 0 ? (long)i : found;
    }
    kl_memzero(want, sizeof want);
    return found;
}
