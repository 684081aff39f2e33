/* A fixed-size latency histogram in the manner of HdrHistogram: log-linear
 * buckets (64 sub-buckets per power of two, so every reported value is
 * within 1.6% of the true one) over the whole uint64 range of nanoseconds.
 * Recording a sample is a few instructions and never allocates. */
#ifndef KOLLEGA_BENCH_HIST_H
#define KOLLEGA_BENCH_HIST_H

#include <stdint.h>

#define KB_HIST_SUB_BITS 7
#define KB_HIST_SUB (1u << KB_HIST_SUB_BITS)
#define KB_HIST_HALF (KB_HIST_SUB / 2)
/* Highest shift is 63 - (KB_HIST_SUB_BITS - 1) = 57. */
#define KB_HIST_BUCKETS ((64 - KB_HIST_SUB_BITS + 1) * KB_HIST_HALF + KB_HIST_HALF)

typedef struct kb_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    uint64_t counts[KB_HIST_BUCKETS];
} kb_hist_t;

/* Empty h (count 0, min UINT64_MAX). */
void kb_hist_init(kb_hist_t *h);
/* Record one value (ns). */
void kb_hist_record(kb_hist_t *h, uint64_t v);
/* The value at quantile q (0 < q <= 1): the upper end of the bucket holding
 * the ceil(q * count)-th smallest sample, capped at the exact maximum.
 * 0 for an empty histogram. */
uint64_t kb_hist_quantile(const kb_hist_t *h, double q);
/* The bucket a value falls into (< KB_HIST_BUCKETS, non-decreasing in v),
 * and the largest value of bucket i (increasing in i). */
unsigned kb_hist_bucket_of(uint64_t v);
uint64_t kb_hist_bucket_top(unsigned i);

#endif
