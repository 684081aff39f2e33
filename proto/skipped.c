/* Skipped message keys of symmetric-key chains (proto/skipped.h).
 *
 * Keys are kept in arrival order, oldest first. Keys skipped by one message
 * are always newer than every stored key of the same chain, so "evict the
 * oldest" is a single memmove at the front, and the order survives
 * serialisation without sequence numbers. */
#include <sodium.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "skipped.h"

#define FIRST_CAP 16
#define WIRE(chain_ids) ((chain_ids) ? 32 + 4 + 32 : 4 + 32)

void kl_chain_kdf(uint8_t ck[32], uint8_t mk[32])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t next[32];
    crypto_auth_hmacsha256(mk, &one, 1, ck);
    crypto_auth_hmacsha256(next, &two, 1, ck);
    memcpy(ck, next, 32);
    sodium_memzero(next, sizeof next);
}

void kl_skipped_init(kl_skipped_t *s, size_t max)
{
    s->e = NULL;
    s->n = 0;
    s->cap = 0;
    s->max = max;
}

void kl_skipped_free(kl_skipped_t *s)
{
    if (s->e != NULL)
        kl_secure_free(s->e);
    kl_skipped_init(s, s->max);
}

size_t kl_skipped_find(const kl_skipped_t *s, const uint8_t chain[32], uint32_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].n == n && memcmp(s->e[i].chain, chain, 32) == 0)
            return i;
    return SIZE_MAX;
}

void kl_skipped_remove(kl_skipped_t *s, size_t i)
{
    memmove(s->e + i, s->e + i + 1, (s->n - i - 1) * sizeof *s->e);
    s->n--;
    sodium_memzero(s->e + s->n, sizeof *s->e);
}

/* Room for `want` keys (at most max), growing the guarded block by doubling.
 * Changes only capacity, so it runs before anything else is changed. */
static int reserve(kl_skipped_t *s, size_t want)
{
    size_t ncap;
    kl_skipped_key_t *ne;

    if (want > s->max)
        want = s->max;
    if (want <= s->cap)
        return 0;
    ncap = s->cap ? s->cap : FIRST_CAP;
    while (ncap < want)
        ncap *= 2;
    if (ncap > s->max)
        ncap = s->max;
    ne = kl_secure_alloc(ncap * sizeof *ne);
    if (ne == NULL)
        return KL_ENOMEM;
    if (s->n > 0)
        memcpy(ne, s->e, s->n * sizeof *ne);
    sodium_memzero(ne + s->n, (ncap - s->n) * sizeof *ne);
    if (s->e != NULL)
        kl_secure_free(s->e);
    s->e = ne;
    s->cap = ncap;
    return 0;
}

int kl_skipped_push(kl_skipped_t *s, const kl_skipped_key_t *k)
{
    int rc;

    if (s->n >= s->max)
        return KL_ELIMIT;
    rc = reserve(s, s->n + 1);
    if (rc)
        return rc;
    s->e[s->n++] = *k;
    return 0;
}

void kl_skipped_stage_init(kl_skipped_stage_t *st, size_t cap)
{
    st->e = NULL;
    st->n = 0;
    st->cap = cap;
}

void kl_skipped_stage_free(kl_skipped_stage_t *st)
{
    if (st->e != NULL)
        kl_secure_free(st->e);
    st->e = NULL;
    st->n = 0;
}

int kl_skipped_stage_chain(kl_skipped_stage_t *st, const uint8_t chain[32], uint8_t ck[32],
                           uint32_t *n, uint32_t until)
{
    if (*n >= until)
        return 0;
    if ((size_t)(until - *n) > st->cap - st->n)
        return KL_ELIMIT;
    if (st->e == NULL) {
        st->e = kl_secure_alloc(st->cap * sizeof *st->e);
        if (st->e == NULL)
            return KL_ENOMEM;
    }
    while (*n < until) {
        kl_skipped_key_t *e = &st->e[st->n++];
        memcpy(e->chain, chain, 32);
        e->n = *n;
        kl_chain_kdf(ck, e->mk);
        (*n)++;
    }
    return 0;
}

int kl_skipped_commit(kl_skipped_t *s, const kl_skipped_stage_t *st)
{
    size_t old_n = s->n;
    size_t total = old_n + st->n;
    size_t drop = total > s->max ? total - s->max : 0;
    size_t drop_old = drop < old_n ? drop : old_n;
    size_t drop_new = drop - drop_old;

    if (st->n == 0)
        return 0;
    if (reserve(s, total) != 0)
        return KL_ENOMEM;
    /* The store ends with min(total, max) >= old_n keys, so the append
     * overwrites every slot the memmove leaves behind. */
    if (drop_old > 0) {
        sodium_memzero(s->e, drop_old * sizeof *s->e);
        memmove(s->e, s->e + drop_old, (old_n - drop_old) * sizeof *s->e);
        s->n -= drop_old;
    }
    memcpy(s->e + s->n, st->e + drop_new, (st->n - drop_new) * sizeof *st->e);
    s->n += st->n - drop_new;
    return 0;
}

size_t kl_skipped_wire_len(const kl_skipped_t *s, int chain_ids)
{
    return 4 + s->n * WIRE(chain_ids);
}

int kl_skipped_write(const kl_skipped_t *s, kl_writer_t *w, int chain_ids)
{
    int rc = kl_writer_u32(w, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++) {
        if (chain_ids)
            rc |= kl_writer_bytes(w, s->e[i].chain, 32);
        rc |= kl_writer_u32(w, s->e[i].n);
        rc |= kl_writer_bytes(w, s->e[i].mk, 32);
    }
    return rc ? KL_ETOOBIG : 0;
}

int kl_skipped_read(kl_skipped_t *s, kl_reader_t *rd, uint32_t count, int chain_ids)
{
    kl_skipped_key_t e;
    int rc = 0;

    if (count > s->max || kl_reader_left(rd) != (size_t)count * WIRE(chain_ids))
        return KL_EPROTO;
    sodium_memzero(&e, sizeof e);
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        if ((chain_ids && kl_reader_bytes(rd, e.chain, 32) != 0) ||
            kl_reader_u32(rd, &e.n) != 0 || kl_reader_bytes(rd, e.mk, 32) != 0)
            rc = KL_EPROTO;
        else
            rc = kl_skipped_push(s, &e);
    }
    sodium_memzero(&e, sizeof e);
    return rc;
}
