/* Sealed-sender opening (kl_sealed_open) and padding (kl_unpad).
 *
 * Input: u8 mode | rest.
 *   0  rest is a received body: open it with a fixed identity (a too-small
 *      output buffer must be refused first);
 *   1  rest is a plaintext: sealed to the fixed identity it must open to
 *      itself, and never open with another identity;
 *   2  kl_unpad(rest): an accepted length must be one whose kl_pad gives
 *      back exactly rest. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/sealed.h"

typedef struct ids {
    uint8_t pk[32], sk[64];
    uint8_t other_pk[32], other_sk[64];
} ids_t;

static const ids_t *ids(void)
{
    static ids_t I;
    static int built;
    if (!built) {
        fuzz_rng_reset(FUZZ_SEALED_SEED);
        FUZZ_CHECK(kl_sign_keypair(I.pk, I.sk) == 0);
        FUZZ_CHECK(kl_sign_keypair(I.other_pk, I.other_sk) == 0);
        built = 1;
    }
    return &I;
}

static void mode_open(const uint8_t *p, size_t n)
{
    const ids_t *I = ids();
    size_t cap = n > KL_SEAL_OVERHEAD ? n - KL_SEAL_OVERHEAD : 0, olen = 0;
    uint8_t *out = malloc(cap + 1);
    FUZZ_CHECK(out != NULL);
    if (cap > 0)
        FUZZ_CHECK(kl_sealed_open(I->pk, I->sk, p, n, out, cap - 1, &olen) == KL_ETOOBIG);
    int rc = kl_sealed_open(I->pk, I->sk, p, n, out, cap, &olen);
    if (n < KL_SEAL_OVERHEAD)
        FUZZ_CHECK(rc == KL_EPROTO);
    else if (rc == 0)
        FUZZ_CHECK(olen == cap);
    else
        FUZZ_CHECK(rc == KL_ECRYPTO);
    free(out);
}

static void mode_roundtrip(const uint8_t *p, size_t n)
{
    const ids_t *I = ids();
    uint8_t *box = malloc(n + KL_SEAL_OVERHEAD), *out = malloc(n + 1);
    size_t blen = 0, olen = 0;
    FUZZ_CHECK(box != NULL && out != NULL);
    FUZZ_CHECK(kl_sealed_seal(I->pk, p, n, box, n + KL_SEAL_OVERHEAD, &blen) == 0);
    FUZZ_CHECK(blen == n + KL_SEAL_OVERHEAD);
    FUZZ_CHECK(kl_sealed_open(I->other_pk, I->other_sk, box, blen, out, n, &olen) == KL_ECRYPTO);
    FUZZ_CHECK(kl_sealed_open(I->pk, I->sk, box, blen, out, n, &olen) == 0);
    FUZZ_CHECK(olen == n && (n == 0 || memcmp(out, p, n) == 0));
    if (n > 0) {
        box[n % blen] ^= 0x04;
        FUZZ_CHECK(kl_sealed_open(I->pk, I->sk, box, blen, out, n, &olen) == KL_ECRYPTO);
    }
    free(box);
    free(out);
}

static void mode_unpad(const uint8_t *p, size_t n)
{
    size_t len = 0, plen = 0;
    if (kl_unpad(p, n, &len) != 0)
        return;
    FUZZ_CHECK(len < n && n % KL_PAD_BLOCK == 0);
    uint8_t *buf = malloc(n);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, p, len);
    FUZZ_CHECK(kl_pad(buf, len, n, &plen) == 0);
    FUZZ_CHECK(plen == n && memcmp(buf, p, n) == 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_init();
    ids();
    fuzz_rng_reset(size);
    switch (data[0] % 3) {
    case 0:
        mode_open(data + 1, size - 1);
        break;
    case 1:
        mode_roundtrip(data + 1, size - 1);
        break;
    default:
        mode_unpad(data + 1, size - 1);
        break;
    }
    return 0;
}
