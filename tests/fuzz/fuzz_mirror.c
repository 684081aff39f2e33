/* Channel mirrors against a malicious home relay: a sync round's two
 * answers (fuzz_mirror.h: the posts' deliver and the ops' channel_log) are
 * the input, stored by kl_job_mirror_store (relay/jobs_cmirror.c) on the
 * real sqlite backend exactly as the storage thread runs it. The base
 * state, built once: the mirror of FC_ADDR as a placeholder (no ops yet)
 * with alice subscribed. Each input runs in one batch rolled back at the
 * end, so every input starts from that state.
 *
 * Oracles: the step never fails for any answer (a bad answer is refused,
 * not an error); the watermark only moves forward and is what the job
 * reports; with the mirror's log behind the home relay's, no post is
 * taken; every post the mirror log holds afterwards verifies against the
 * mirror's validated state (kl_channel_post_open), and their number is
 * the job's count of taken posts. */
#include "fuzz_mirror.h"
#include "fuzz_relay.h"
#include "jobs/fed_job.h"
#include "jobs/jobs.h"
#include "storage/storage_cmirror.h"

static ProtobufCMessage *unpack(const uint8_t *p, size_t n)
{
    return (ProtobufCMessage *)kollega__relay__v1__frame__unpack(NULL, n, p);
}

static void base_state(fuzz_relay_t *R)
{
    kl_storage_channel_t c;
    uint64_t cursor;
    FUZZ_CHECK(kl_storage_batch_begin(R->st) == 0);
    FUZZ_CHECK(kl_storage_cmirror_ensure(R->st, FC_ADDR, &c) == 0);
    FUZZ_CHECK(kl_storage_channel_subscribe(R->st, &c, R->alice.u.id, 0, FUZZ_NOW_MS,
                                            &cursor) == 0);
    FUZZ_CHECK(kl_storage_batch_commit(R->st) == 0);
}

/* Every entry of the mirror log verifies against the mirror's state. */
static size_t check_log(fuzz_relay_t *R, const kl_storage_cmirror_t *m)
{
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    kl_channel_t *ch = NULL;
    FUZZ_CHECK(kl_storage_log_read(R->st, m->chan.log, 0, FUZZ_NOW_MS, 1000, SIZE_MAX, &e, &n,
                                   &more) == 0);
    if (n > 0)
        FUZZ_CHECK(kl_job_channel_state(R->st, FC_ADDR, &m->chan, &ch) == 0);
    for (size_t i = 0; i < n; i++) {
        kl_channel_post_t p;
        kl_channel_verr_t why;
        memset(&p, 0, sizeof p);
        FUZZ_CHECK(kl_channel_post_open(ch, e[i].body, e[i].len, &p, &why) == 0);
        kl_channel_post_clear(&p);
    }
    kl_storage_entries_free(e, n);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    fuzz_relay_t *R = fuzz_relay_get();
    if (!ready) {
        base_state(R);
        ready = 1;
    }
    fuzz_rng_reset(size);
    fuzz_in_t in = {data, size};
    size_t alen = 0, blen = 0;
    uint16_t n = fuzz_u16(&in);
    const uint8_t *a = fuzz_bytes(&in, n, &alen);
    const uint8_t *b = fuzz_bytes(&in, in.left, &blen);
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_MIRROR, 0, NULL);
    FUZZ_CHECK(job != NULL);
    kl_fed_job_t *fj = job->u.fed;
    snprintf(fj->address, sizeof fj->address, "%s", FC_ADDR);
    fj->step = KL_MIRROR_STORE;
    fj->reply = unpack(a, alen);
    fj->reply2 = unpack(b, blen);
    fj->quota.max_entries = 100;
    fj->quota.max_bytes = 1u << 20;
    fj->ttl_max_ms = 3600000;

    kl_storage_cmirror_t before, after;
    FUZZ_CHECK(kl_storage_batch_begin(R->st) == 0);
    FUZZ_CHECK(kl_storage_cmirror_get(R->st, FC_ADDR, &before) == 0);
    FUZZ_CHECK(kl_storage_job_begin(R->st) == 0);
    int r = kl_job_mirror_store(R->st, fj, FUZZ_NOW_MS);
    FUZZ_CHECK(kl_storage_job_end(R->st, r) == 0);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(kl_storage_cmirror_get(R->st, FC_ADDR, &after) == 0);
    FUZZ_CHECK(after.home_seq >= before.home_seq && after.home_seq == fj->m_home_seq);
    if (fj->m_partial)
        FUZZ_CHECK(fj->m_acked == 0 && after.home_seq == before.home_seq);
    FUZZ_CHECK(check_log(R, &after) == fj->m_acked);
    if (getenv("KL_FUZZ_TRACE") != NULL) /* what a seed reaches */
        fprintf(stderr, "taken %llu, refused %zu, partial %d, watermark %llu\n",
                (unsigned long long)fj->m_acked, fj->m_refused, fj->m_partial,
                (unsigned long long)after.home_seq);
    FUZZ_CHECK(fj->m_acked == 0 || (fj->n_names == 1 && fj->ids[0] == R->alice.u.id));
    kl_storage_batch_rollback(R->st);
    kl_job_free(job);
    return 0;
}
