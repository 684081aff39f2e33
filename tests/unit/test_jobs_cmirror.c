/* The storage-thread half of channel mirrors (relay/jobs_cmirror.c) on a
 * real sqlite file, with what a sync round fetched from the home relay as
 * real frames (ops signed with libkollega, posts signed by publishers):
 * each valid post stored once and in order, the watermark making a retry
 * store nothing twice, a forged post refused while the next one is taken,
 * a full mirror log stopping the round before the post it has no room for,
 * and the membership of a members-only channel checked at the first
 * subscribe, from the log fetched with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobs/fed_job.h"
#include "jobs/jobs.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "relay.pb-c.h"
#include "storage/storage.h"
#include "storage/storage_cmirror.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define INV "inviteinviteinviteinvite"
#define CH "!news@oslo.test"
#define NP 3
#define NPOSTS 80

typedef struct person {
    uint8_t pk[32], sk[64];
    char addr[64];
} person_t;

typedef struct fx {
    char dir[64], path[128];
    kl_storage_t *st;
    kl_storage_user_t local[2];   /* users of this (the mirror) relay */
    person_t p[NP];               /* 0 owner, 1 publisher, 2 outsider (all on oslo) */
    kl_channel_t *home;           /* the channel as the home relay holds it */
    uint8_t *ops[8];
    size_t op_len[8], n_ops;
    uint8_t *posts[NPOSTS];
    size_t post_len[NPOSTS], n_posts;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-jcmirror-XXXXXX", &f->st) != 0 ||
        kl_storage_invite_create(f->st, INV, 10, NOW + 1000, NOW) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        char h[8];
        uint8_t k[32];
        snprintf(h, sizeof h, "l%d", i);
        kl_random(k, 32);
        if (kl_storage_register(f->st, h, k, INV, NOW, &f->local[i]) != 0)
            return -1;
    }
    for (int i = 0; i < NP; i++) {
        if (kl_sign_keypair(f->p[i].pk, f->p[i].sk) != 0)
            return -1;
        snprintf(f->p[i].addr, sizeof f->p[i].addr, "p%d@oslo.test", i);
    }
    if (kl_channel_new(&f->home, CH) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (size_t i = 0; i < f->n_ops; i++)
        free(f->ops[i]);
    for (size_t i = 0; i < f->n_posts; i++)
        free(f->posts[i]);
    kl_channel_free(f->home);
    kl_storage_close(f->st);
    kl_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* The home relay accepts op kind by the owner (target person t). */
static void home_op(fx_t *f, kl_channel_opkind_t kind, int t, int members_only)
{
    uint8_t *b = NULL;
    size_t len = 0;
    kl_channel_verr_t why;
    if (kind == KL_COP_CREATE)
        assert_int_equal(kl_channel_op_build_create(f->home, f->p[0].sk, f->p[0].pk,
                                                    f->p[0].addr, NOW, members_only, &b, &len),
                         0);
    else
        assert_int_equal(kl_channel_op_build(f->home, f->p[0].sk, f->p[0].pk, f->p[0].addr, NOW,
                                             kind, f->p[t].pk, f->p[t].addr, &b, &len),
                         0);
    assert_int_equal(kl_channel_apply(f->home, b, len, NULL, &why), 0);
    f->ops[f->n_ops] = b;
    f->op_len[f->n_ops++] = len;
}

/* A post by person who (a publisher at home); forged: its signature broken. */
static void home_post(fx_t *f, int who, const char *text, int forged)
{
    uint8_t id[16], *b = NULL;
    size_t len = 0;
    kl_random(id, sizeof id);
    assert_int_equal(kl_channel_post_build(f->home, f->p[who].sk, f->p[who].pk, f->p[who].addr,
                                           id, NOW, text, &b, &len),
                     0);
    if (forged)
        b[len - 1] ^= 0x55; /* the last byte of the signature */
    f->posts[f->n_posts] = b;
    f->post_len[f->n_posts++] = len;
}

/* The answers a round got: channel_log of every op from index 0, deliver
 * of posts [from, to) as home seqs from + 1 ... (unpacked copies, as a
 * link hands them over). */
static ProtobufCMessage *answer_log_range(fx_t *f, size_t from, size_t k);

static ProtobufCMessage *answer_log(fx_t *f)
{
    return answer_log_range(f, 0, f->n_ops);
}

static ProtobufCMessage *answer_log_page(fx_t *f, size_t k)
{
    return answer_log_range(f, 0, k);
}

/* Ops [from, k), as a page of a log of f->n_ops (more set when short). */
static ProtobufCMessage *answer_log_range(fx_t *f, size_t from, size_t k)
{
    Kollega__Relay__V1__Frame fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__ChannelLog cl = KOLLEGA__RELAY__V1__CHANNEL_LOG__INIT;
    ProtobufCBinaryData ops[8];
    for (size_t i = from; i < k; i++) {
        ops[i - from].data = f->ops[i];
        ops[i - from].len = f->op_len[i];
    }
    cl.channel = CH;
    cl.from_index = from;
    cl.ops = ops;
    cl.n_ops = k - from;
    cl.next_index = f->n_ops;
    cl.more = k < f->n_ops;
    fr.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_CHANNEL_LOG;
    fr.channel_log = &cl;
    uint8_t buf[16384];
    size_t n = kollega__relay__v1__frame__pack(&fr, buf);
    return (ProtobufCMessage *)kollega__relay__v1__frame__unpack(NULL, n, buf);
}

static ProtobufCMessage *answer_posts(fx_t *f, size_t from, size_t to)
{
    Kollega__Relay__V1__Frame fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    Kollega__Relay__V1__Entry e[NPOSTS], *ep[NPOSTS];
    for (size_t i = from; i < to; i++) {
        Kollega__Relay__V1__Entry init = KOLLEGA__RELAY__V1__ENTRY__INIT;
        e[i] = init;
        e[i].seq = i + 1;
        e[i].ts = NOW;
        e[i].body.data = f->posts[i];
        e[i].body.len = f->post_len[i];
        ep[i - from] = &e[i];
    }
    d.channel = CH;
    d.entries = ep;
    d.n_entries = to - from;
    fr.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER;
    fr.deliver = &d;
    static uint8_t buf[65536];
    assert_true(kollega__relay__v1__frame__get_packed_size(&fr) <= sizeof buf);
    size_t n = kollega__relay__v1__frame__pack(&fr, buf);
    return (ProtobufCMessage *)kollega__relay__v1__frame__unpack(NULL, n, buf);
}

/* Run fn on a fed job inside a committed storage batch. */
static int in_batch(fx_t *f, kl_job_t *job, int (*fn)(kl_storage_t *, kl_fed_job_t *, uint64_t))
{
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    int r = fn(f->st, job->u.fed, NOW);
    assert_int_equal(kl_storage_job_end(f->st, r), 0);
    assert_int_equal(kl_storage_batch_commit(f->st), 0);
    return r;
}

/* Local user i subscribes to the mirror (a CHAN_SUB's storage half, with
 * the home relay's log as fetched with it). Returns the job (err_code). */
static kl_job_t *subscribe(fx_t *f, int i, const uint8_t key[32])
{
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_CHAN_SUB, 0, NULL);
    assert_non_null(job);
    snprintf(job->u.fed->address, sizeof job->u.fed->address, "%s", CH);
    job->u.fed->user_id = f->local[i].id;
    memcpy(job->u.fed->identity_key, key, 32);
    job->u.fed->reply2 = answer_log(f);
    assert_int_equal(in_batch(f, job, kl_job_mirror_sub), 0);
    return job;
}

/* One STORE step over posts [from, to) with the first k ops. */
static kl_job_t *store_page(fx_t *f, size_t from, size_t to, uint64_t max_entries, size_t k)
{
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_MIRROR, 0, NULL);
    assert_non_null(job);
    kl_fed_job_t *fj = job->u.fed;
    snprintf(fj->address, sizeof fj->address, "%s", CH);
    fj->step = KL_MIRROR_STORE;
    fj->reply = answer_posts(f, from, to);
    fj->reply2 = answer_log_page(f, k);
    fj->quota.max_entries = max_entries;
    fj->quota.max_bytes = 1000000;
    fj->ttl_max_ms = 3600000;
    assert_int_equal(in_batch(f, job, kl_job_mirror_store), 0);
    return job;
}

static kl_job_t *store(fx_t *f, size_t from, size_t to, uint64_t max_entries)
{
    return store_page(f, from, to, max_entries, f->n_ops);
}

static kl_storage_cmirror_t mirror(fx_t *f)
{
    kl_storage_cmirror_t m;
    assert_int_equal(kl_storage_cmirror_get(f->st, CH, &m), 0);
    return m;
}

static uint64_t mirror_entries(fx_t *f)
{
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    kl_storage_cmirror_t m = mirror(f);
    assert_int_equal(kl_storage_log_read(f->st, m.chan.log, 0, NOW, 100, 1 << 20, &e, &n, &more),
                     0);
    kl_storage_entries_free(e, n);
    return n;
}

static void test_once_in_order_and_retry(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 0);
    home_op(f, KL_COP_ADD_PUBLISHER, 1, 0);
    kl_job_t *s = subscribe(f, 0, f->p[2].pk);
    assert_int_equal(s->u.fed->err_code, 0);
    kl_job_free(s);
    assert_int_equal(mirror(f).chan.next_index, 2); /* the log came with the subscribe */
    home_post(f, 0, "one", 0);
    home_post(f, 1, "two", 0);
    home_post(f, 1, "three", 0);
    kl_job_t *j = store(f, 0, 3, 100);
    assert_int_equal(j->u.fed->m_home_seq, 3);
    assert_int_equal(j->u.fed->m_refused, 0);
    assert_int_equal(j->u.fed->n_names, 1); /* the one local subscriber to tell */
    assert_int_equal(j->u.fed->ids[0], f->local[0].id);
    kl_job_free(j);
    assert_int_equal(mirror_entries(f), 3);
    assert_int_equal(mirror(f).home_seq, 3);
    /* The same answer again (an ack lost, the round repeated): nothing new. */
    j = store(f, 0, 3, 100);
    assert_int_equal(j->u.fed->m_acked, 0);
    assert_int_equal(j->u.fed->n_names, 0);
    kl_job_free(j);
    assert_int_equal(mirror_entries(f), 3);
    assert_int_equal(mirror(f).home_seq, 3);
}

static void test_forged_refused_next_taken(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 0);
    kl_job_free(subscribe(f, 0, f->p[2].pk));
    home_post(f, 0, "forged", 1);
    home_post(f, 0, "genuine", 0);
    kl_job_t *j = store(f, 0, 2, 100);
    assert_int_equal(j->u.fed->m_refused, 1);
    assert_non_null(strstr(j->u.fed->err_msg, "refused a post (home seq 1)"));
    assert_int_equal(j->u.fed->m_home_seq, 2);
    assert_int_equal(j->u.fed->m_acked, 1);
    kl_job_free(j);
    assert_int_equal(mirror_entries(f), 1);
    /* Stored is the genuine one. */
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    assert_int_equal(kl_storage_log_read(f->st, mirror(f).chan.log, 0, NOW, 10, 1 << 20, &e, &n,
                                         &more),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].len, f->post_len[1]);
    assert_memory_equal(e[0].body, f->posts[1], e[0].len);
    kl_storage_entries_free(e, n);
}

static void test_full_log_stops_before(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 0);
    kl_job_free(subscribe(f, 0, f->p[2].pk));
    home_post(f, 0, "a", 0);
    home_post(f, 0, "b", 0);
    home_post(f, 0, "c", 0);
    kl_job_t *j = store(f, 0, 3, 2);
    assert_true(j->u.fed->m_full);
    assert_int_equal(j->u.fed->m_home_seq, 2); /* before the post with no room */
    kl_job_free(j);
    assert_int_equal(mirror(f).home_seq, 2);
    assert_int_equal(mirror_entries(f), 2);
}

static void test_members_only_first_subscribe(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 1);
    home_op(f, KL_COP_ADD_MEMBER, 1, 1);
    /* l0 with an outsider's key: refused at the very first subscribe, the
     * mirror having had no ops before. */
    kl_job_t *s = subscribe(f, 0, f->p[2].pk);
    assert_int_equal(s->u.fed->err_code, KOLLEGA__RELAY__V1__ERROR_CODE__FORBIDDEN);
    assert_non_null(strstr(s->u.fed->err_msg, "members only"));
    kl_job_free(s);
    assert_int_equal(mirror(f).n_subs, 0);
    /* l1 with the member's key. */
    s = subscribe(f, 1, f->p[1].pk);
    assert_int_equal(s->u.fed->err_code, 0);
    kl_job_free(s);
    assert_int_equal(mirror(f).n_subs, 1);
}

/* More refused posts in one round than a forward batch holds (the count
 * must not be mistaken for forwards when the job is freed). */
static void test_many_refused(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 0);
    kl_job_free(subscribe(f, 0, f->p[2].pk));
    for (int i = 0; i < 70; i++)
        home_post(f, 0, "forged", 1);
    home_post(f, 0, "genuine", 0);
    kl_job_t *j = store(f, 0, 71, 1000);
    assert_int_equal(j->u.fed->m_refused, 70);
    assert_int_equal(j->u.fed->m_home_seq, 71);
    kl_job_free(j);
    assert_int_equal(mirror_entries(f), 1);
}

/* A post needs an op beyond the page of ops the round got: no post is
 * taken (the watermark stays) until the mirror holds the whole log; then
 * it is stored, not lost. */
static void test_posts_wait_for_the_whole_log(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 0);
    kl_job_free(subscribe(f, 0, f->p[2].pk));
    home_op(f, KL_COP_ADD_PUBLISHER, 1, 0); /* op 1: not in the first page */
    home_post(f, 1, "needs op 1", 0);
    kl_job_t *j = store_page(f, 0, 1, 100, 1);
    assert_true(j->u.fed->m_partial);
    assert_true(j->u.fed->m_more);
    assert_int_equal(j->u.fed->m_refused, 0);
    assert_int_equal(j->u.fed->m_home_seq, 0);
    kl_job_free(j);
    assert_int_equal(mirror(f).home_seq, 0);
    assert_int_equal(mirror_entries(f), 0);
    j = store(f, 0, 1, 100);
    assert_false(j->u.fed->m_partial);
    assert_int_equal(j->u.fed->m_acked, 1);
    kl_job_free(j);
    assert_int_equal(mirror_entries(f), 1);
    assert_int_equal(mirror(f).home_seq, 1);
}

/* A client's first subscribe to a mirror of a members-only channel whose
 * log is longer than one page: the mirror asks for the next page (from
 * where its log ends) before judging membership, instead of refusing a
 * member added later in the log. */
static void test_subscribe_pages_through_the_log(void **state)
{
    fx_t *f = *state;
    home_op(f, KL_COP_CREATE, 0, 1);
    home_op(f, KL_COP_ADD_PUBLISHER, 2, 1);
    home_op(f, KL_COP_ADD_MEMBER, 1, 1); /* op 2 */
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_CHAN_SUB, 0, NULL);
    assert_non_null(job);
    kl_fed_job_t *fj = job->u.fed;
    snprintf(fj->address, sizeof fj->address, "%s", CH);
    fj->user_id = f->local[0].id;
    memcpy(fj->identity_key, f->p[1].pk, 32);
    fj->reply2 = answer_log_page(f, 2);
    assert_int_equal(in_batch(f, job, kl_job_mirror_sub), 0);
    assert_true(fj->m_more);
    assert_int_equal(fj->m_next_index, 2);
    assert_int_equal(fj->err_code, 0);
    assert_int_equal(mirror(f).n_subs, 0);
    protobuf_c_message_free_unpacked(fj->reply2, NULL);
    fj->reply2 = answer_log_range(f, fj->m_next_index, f->n_ops);
    fj->m_pages++;
    assert_int_equal(in_batch(f, job, kl_job_mirror_sub), 0);
    assert_false(fj->m_more);
    assert_int_equal(fj->err_code, 0);
    assert_int_equal(mirror(f).n_subs, 1);
    assert_int_equal(mirror(f).chan.next_index, 3);
    kl_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_once_in_order_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_refused_next_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_log_stops_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_only_first_subscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posts_wait_for_the_whole_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_pages_through_the_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
