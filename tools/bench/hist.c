#include <string.h>

#include "hist.h"

void kb_hist_init(kb_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* Values below KB_HIST_SUB have a bucket each. Above, a value whose highest
 * set bit is m is shifted right by m - (SUB_BITS - 1), which leaves a
 * mantissa in [HALF, SUB); every shift owns HALF consecutive buckets. */
unsigned kb_hist_bucket_of(uint64_t v)
{
    if (v < KB_HIST_SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - (KB_HIST_SUB_BITS - 1);
    return shift * KB_HIST_HALF + (unsigned)(v >> shift);
}

/* Largest value that falls into bucket i. */
uint64_t kb_hist_bucket_top(unsigned i)
{
    if (i < KB_HIST_SUB)
        return i;
    unsigned shift = i / KB_HIST_HALF - 1;
    uint64_t mant = i - shift * KB_HIST_HALF;
    return (mant << shift) + ((1ull << shift) - 1);
}

void kb_hist_record(kb_hist_t *h, uint64_t v)
{
    h->counts[kb_hist_bucket_of(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

uint64_t kb_hist_quantile(const kb_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = kb_hist_bucket_top(i);
            return top > h->max ? h->max : top;
        }
    }
    return h->max;
}
