/* The user's-relay side of groups on other relays (relay/fed/fed_group.c):
 * which answers of a group's relay are taken for the client, and what a
 * peer may list in group_list. The peers are those of a federation module
 * configured with stockholm.test and oslo.test (never started). */
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
#include "jobs/fed_job.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define RBODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x

static const char *const PEERS[] = {"stockholm.test", "oslo.test"};
#define N_PEERS (sizeof PEERS / sizeof PEERS[0])

typedef struct fixture {
    uv_loop_t loop;
    kl_fed_t *fed;
    uint8_t sk[32], pk[32];
    kl_storage_peer_t peers[N_PEERS];
} fixture_t;

static int setup(void **state)
{
    uint8_t peer_sk[32];
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0 || uv_loop_init(&f->loop) != 0)
        return -1;
    kl_x_keypair(f->pk, f->sk);
    for (size_t i = 0; i < N_PEERS; i++) {
        kl_x_keypair(f->peers[i].key, peer_sk);
        f->peers[i].id = (uint64_t)i + 1;
        snprintf(f->peers[i].name, sizeof f->peers[i].name, "%s", PEERS[i]);
        snprintf(f->peers[i].addr, sizeof f->peers[i].addr, "127.0.0.1:1");
    }
    kl_fed_cfg_t cfg = {.loop = &f->loop, .relay_name = "home.test", .static_sk = f->sk};
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

/* The configured peer called name. */
static fed_peer_t *peer_named(void **state, const char *name)
{
    const fixture_t *f = *state;
    for (size_t i = 0; i < kl_fed_peer_count(f->fed); i++) {
        fed_peer_t *p = kl_fed_peer_at(f->fed, i);
        if (strcmp(kl_fed_peer_cfg(p)->name, name) == 0)
            return p;
    }
    fail_msg("no peer %s", name);
    return NULL;
}

/* A FedFrame carrying a copy of answer (heap, as the unpacker makes it). */
static kl_fedframe_t *frame_with(const kl_frame_t *answer)
{
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    fr.id = 7;
    fr.body_case = FBODY(GROUP_REPLY);
    fr.group_reply = (kl_frame_t *)answer;
    size_t n = kollega__federation__v1__fed_frame__get_packed_size(&fr);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    kollega__federation__v1__fed_frame__pack(&fr, buf);
    kl_fedframe_t *out = kollega__federation__v1__fed_frame__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static kl_fedframe_t *list_answer(const char **groups, size_t n)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupListResult res = KOLLEGA__RELAY__V1__GROUP_LIST_RESULT__INIT;
    Kollega__Relay__V1__GroupInfo gi[4];
    Kollega__Relay__V1__GroupInfo *gp[4];
    for (size_t i = 0; i < n; i++) {
        Kollega__Relay__V1__GroupInfo init = KOLLEGA__RELAY__V1__GROUP_INFO__INIT;
        gi[i] = init;
        gi[i].group = (char *)groups[i];
        gi[i].member = 1;
        gi[i].next_index = 3 + i;
        gi[i].last_seq = 10 + i;
        gp[i] = &gi[i];
    }
    res.groups = gp;
    res.n_groups = n;
    f.body_case = RBODY(GROUP_LIST_RESULT);
    f.group_list_result = &res;
    return frame_with(&f);
}

static void test_list_keeps_only_the_peers_groups(void **state)
{
    fed_peer_t *p = peer_named(state, "stockholm.test");
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_GROUP_LIST, 0, NULL);
    assert_non_null(job);
    const char *good[] = {"#erfa@stockholm.test", "#intervisjon@stockholm.test"};
    kl_fedframe_t *fr = list_answer(good, 2);
    assert_int_equal(kl_fedgroup_answer(p, job, fr), 0);
    assert_int_equal(job->u.fed->n_infos, 2);
    assert_string_equal(job->u.fed->infos[1].address, "#intervisjon@stockholm.test");
    assert_int_equal(job->u.fed->infos[1].next_index, 4);
    assert_int_equal(job->u.fed->infos[1].last_seq, 11);
    assert_true(job->u.fed->infos[0].member);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    /* A peer naming another relay's group is not believed. */
    const char *bad[] = {"#erfa@riga.test"};
    fr = list_answer(bad, 1);
    assert_int_equal(kl_fedgroup_answer(p, job, fr), -1);
    assert_int_equal(job->u.fed->n_infos, 2);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    const char *user[] = {"bob@stockholm.test"};
    fr = list_answer(user, 1);
    assert_int_equal(kl_fedgroup_answer(p, job, fr), -1);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    kl_job_free(job);
}

static void test_group_answer_taken_or_refused(void **state)
{
    fed_peer_t *p = peer_named(state, "oslo.test");
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_GROUP, 0, NULL);
    assert_non_null(job);
    job->u.fed->req_body = RBODY(SEND);
    /* A deliver in answer to a send is not handed to the client. */
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    d.group = "#erfa@oslo.test";
    f.body_case = RBODY(DELIVER);
    f.deliver = &d;
    kl_fedframe_t *fr = frame_with(&f);
    assert_int_equal(kl_fedgroup_answer(p, job, fr), -1);
    assert_null(job->u.fed->reply);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    /* sent is, and the job keeps the unpacked frame (freed with it). */
    Kollega__Relay__V1__Sent sent = KOLLEGA__RELAY__V1__SENT__INIT;
    sent.seq = 42;
    f.body_case = RBODY(SENT);
    f.sent = &sent;
    fr = frame_with(&f);
    assert_int_equal(kl_fedgroup_answer(p, job, fr), 0);
    assert_null(fr->group_reply);
    assert_non_null(job->u.fed->reply);
    assert_int_equal(((kl_frame_t *)job->u.fed->reply)->sent->seq, 42);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    kl_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_keeps_only_the_peers_groups),
        cmocka_unit_test(test_group_answer_taken_or_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
