/* The user's-relay side of groups on other relays (relay/fed_group.c):
 * which answers of a group's relay are taken for the client, and what a
 * peer may list in group_list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fed/fed_int.h"
#include "jobs/fed_job.h"
#include "kollega/err.h"

#define RBODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x

static fed_peer_t peer_named(const char *name)
{
    fed_peer_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.cfg.name, sizeof p.cfg.name, "%s", name);
    return p;
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
    (void)state;
    fed_peer_t p = peer_named("stockholm.test");
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_GROUP_LIST, 0, NULL);
    assert_non_null(job);
    const char *good[] = {"#erfa@stockholm.test", "#intervisjon@stockholm.test"};
    kl_fedframe_t *fr = list_answer(good, 2);
    assert_int_equal(kl_fedgroup_answer(&p, job, fr), 0);
    assert_int_equal(job->u.fed->n_infos, 2);
    assert_string_equal(job->u.fed->infos[1].address, "#intervisjon@stockholm.test");
    assert_int_equal(job->u.fed->infos[1].next_index, 4);
    assert_int_equal(job->u.fed->infos[1].last_seq, 11);
    assert_true(job->u.fed->infos[0].member);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    /* A peer naming another relay's group is not believed. */
    const char *bad[] = {"#erfa@riga.test"};
    fr = list_answer(bad, 1);
    assert_int_equal(kl_fedgroup_answer(&p, job, fr), -1);
    assert_int_equal(job->u.fed->n_infos, 2);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    const char *user[] = {"bob@stockholm.test"};
    fr = list_answer(user, 1);
    assert_int_equal(kl_fedgroup_answer(&p, job, fr), -1);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    kl_job_free(job);
}

static void test_group_answer_taken_or_refused(void **state)
{
    (void)state;
    fed_peer_t p = peer_named("oslo.test");
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
    assert_int_equal(kl_fedgroup_answer(&p, job, fr), -1);
    assert_null(job->u.fed->reply);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    /* sent is, and the job keeps the unpacked frame (freed with it). */
    Kollega__Relay__V1__Sent sent = KOLLEGA__RELAY__V1__SENT__INIT;
    sent.seq = 42;
    f.body_case = RBODY(SENT);
    f.sent = &sent;
    fr = frame_with(&f);
    assert_int_equal(kl_fedgroup_answer(&p, job, fr), 0);
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
    return cmocka_run_group_tests(tests, NULL, NULL);
}
