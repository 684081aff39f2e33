/* Safety numbers (docs/DESIGN.md "Identities and addresses"): each party's half
 * is an iterated SHA-512 of its identity key and address, read as 30
 * decimal digits; the number is both halves sorted and concatenated, so
 * both people see the same 60 digits whichever side computes it. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "kollega/err.h"
#include "kollega/safety.h"

#define ITERATIONS 5199
#define HALF_DIGITS 30

/* h = SHA-512(0x00 0x00 || ik || address), then 5199 times
 * h = SHA-512(h || ik); the first 30 bytes as six 5-byte big-endian
 * integers, each mod 100000 and zero-padded to 5 digits. Returns 0, or
 * KL_EINVAL for a NULL argument or an empty address. */
int kl_safety_half(const uint8_t ik[32], const char *address, char out[31])
{
    static const uint8_t version[2] = {0, 0};
    crypto_hash_sha512_state st;
    uint8_t h[crypto_hash_sha512_BYTES];

    if (ik == NULL || address == NULL || address[0] == '\0' || out == NULL)
        return KL_EINVAL;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, version, sizeof version);
    crypto_hash_sha512_update(&st, ik, 32);
    crypto_hash_sha512_update(&st, (const uint8_t *)address, strlen(address));
    crypto_hash_sha512_final(&st, h);
    for (int i = 0; i < ITERATIONS; i++) {
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, h, sizeof h);
        crypto_hash_sha512_update(&st, ik, 32);
        crypto_hash_sha512_final(&st, h);
    }
    for (int chunk = 0; chunk < 6; chunk++) {
        uint64_t v = 0;
        for (int b = 0; b < 5; b++)
            v = (v << 8) | h[chunk * 5 + b];
        snprintf(out + chunk * 5, 6, "%05u", (unsigned)(v % 100000));
    }
    out[HALF_DIGITS] = '\0';
    return 0;
}

/* Both halves, the smaller (strcmp) first. */
int kl_safety_number(const uint8_t ik_a[32], const char *addr_a, const uint8_t ik_b[32],
                     const char *addr_b, char out[KL_SAFETY_DIGITS + 1])
{
    char a[HALF_DIGITS + 1], b[HALF_DIGITS + 1];
    int r;

    if (out == NULL)
        return KL_EINVAL;
    r = kl_safety_half(ik_a, addr_a, a);
    if (r == 0)
        r = kl_safety_half(ik_b, addr_b, b);
    if (r)
        return r;
    if (strcmp(a, b) <= 0)
        snprintf(out, KL_SAFETY_DIGITS + 1, "%s%s", a, b);
    else
        snprintf(out, KL_SAFETY_DIGITS + 1, "%s%s", b, a);
    return 0;
}

/* "12345 67890 ..." (12 groups of 5). KL_EINVAL unless number is exactly
 * 60 decimal digits. */
int kl_safety_display(const char *number, char out[KL_SAFETY_DISPLAY])
{
    size_t o = 0;

    if (number == NULL || out == NULL || strnlen(number, KL_SAFETY_DIGITS + 1) != KL_SAFETY_DIGITS)
        return KL_EINVAL;
    for (size_t i = 0; i < KL_SAFETY_DIGITS; i++)
        if (number[i] < '0' || number[i] > '9')
            return KL_EINVAL;
    for (size_t i = 0; i < KL_SAFETY_DIGITS; i++) {
        if (i > 0 && i % 5 == 0)
            out[o++] = ' ';
        out[o++] = number[i];
    }
    out[o] = '\0';
    return 0;
}
