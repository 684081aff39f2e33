/* The dispatch fixture (dispatch_fixture.h). */
#include "dispatch_fixture.h"

dfx_t *F;

int dfx_open(const char *tmpl, dfx_limits_t lim, int n, const uint8_t *keys,
             size_t stride)
{
    if (n < 0 || n > DFX_MAX_USERS)
        return -1;
    dfx_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    F = f;
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    if (mkdtemp(f->dir) == NULL) {
        f->dir[0] = '\0'; /* nothing to remove */
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (kl_storage_open(&f->st, f->path, KL_STORAGE_CREATE) != 0)
        return -1;
    f->cfg.relay_name = "oslo.test";
    f->cfg.max_body = lim.max_body;
    f->cfg.ttl_default_s = lim.ttl_default_s;
    f->cfg.ttl_max_s = 30 * 86400;
    f->cfg.quota.max_entries = 100;
    f->cfg.quota.max_bytes = lim.max_bytes;
    f->cfg.rate = 1000;
    f->cfg.burst = 1000;
    f->complete = kl_dispatch_complete;
    if (kl_storage_invite_create(f->st, CODE_INV, 100, NOW + 1000000, NOW) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char h[16];
        const uint8_t *pk = keys + (size_t)i * stride;
        snprintf(h, sizeof h, "u%d", i);
        if (kl_storage_register(f->st, h, pk, CODE_INV, NOW, &f->users[i]) != 0)
            return -1;
        kl_client_state_init(&f->s[i], &f->cfg, NOW);
        f->s[i].authed = 1;
        f->s[i].user_id = f->users[i].id;
        f->s[i].inbox = f->users[i].inbox;
        memcpy(f->s[i].identity_key, pk, 32);
        snprintf(f->s[i].handle, sizeof f->s[i].handle, "%s", h);
    }
    f->n = n;
    f->next_id = 1;
    return 0;
}

/* Free F (also after a failed dfx_open) with its mirrors, and remove its
 * directory. */
static void dfx_close(void)
{
    dfx_t *f = F;
    if (f == NULL)
        return;
    kl_dispatch_out_free(&f->out);
    kl_job_free(f->job);
    kl_storage_close(f->st);
    kl_group_free(f->mirror);
    kl_channel_free(f->chan);
    if (f->dir[0] != '\0')
        kl_test_rmdir(f->dir);
    free(f);
    F = NULL;
}

int dfx_teardown(void **state)
{
    (void)state;
    dfx_close();
    return 0;
}

void reset_out(void)
{
    kl_dispatch_out_free(&F->out);
    memset(&F->out, 0, sizeof F->out);
    kl_job_free(F->job);
    F->job = NULL;
}

int run_out_c(kl_client_state_t *s, uint32_t id, int commit)
{
    dfx_t *f = F;
    kl_job_t *job = f->out.job;
    if (job == NULL) {
        assert_true(f->out.has_reply);
        return f->out.reply.frame.body_case;
    }
    f->out.job = NULL;
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    kl_job_run(job, f->st);
    assert_int_equal(kl_storage_job_end(f->st, job->result), 0);
    if (commit) {
        assert_int_equal(kl_storage_batch_commit(f->st), 0);
    } else {
        kl_storage_batch_rollback(f->st);
        kl_job_fail(job, KL_EIO);
    }
    kl_dispatch_out_free(&f->out);
    f->complete(&f->cfg, s, job, &f->out);
    f->job = job; /* the reply may point into it: freed at the next request */
    assert_true(f->out.has_reply);
    assert_int_equal(f->out.reply.frame.id, id);
    return f->out.reply.frame.body_case;
}

int run_out(kl_client_state_t *s, uint32_t id)
{
    return run_out_c(s, id, 1);
}

int req_c(int u, kl_frame_t *fr, int commit)
{
    assert_true(u >= 0 && u < F->n);
    reset_out();
    fr->id = F->next_id++;
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[u], fr, NOW, &F->out), 0);
    return run_out_c(&F->s[u], fr->id, commit);
}

int req(int u, kl_frame_t *fr)
{
    return req_c(u, fr, 1);
}

void expect_error(int code, const char *contains)
{
    assert_int_equal(F->out.reply.frame.body_case, BODY(ERROR));
    if (F->out.reply.body.error.code != (Kollega__Relay__V1__ErrorCode)code)
        fail_msg("error %d (%s), expected %d", F->out.reply.body.error.code,
                 F->out.reply.body.error.message, code);
    if (contains && strstr(F->out.reply.body.error.message, contains) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", F->out.reply.body.error.message, contains);
    assert_false(F->out.has_push);
}

int req_group_op(int u, const uint8_t *p, size_t len, int commit)
{
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    go.signed_op.data = (uint8_t *)p;
    go.signed_op.len = len;
    fr.body_case = BODY(GROUP_OP);
    fr.group_op = &go;
    return req_c(u, &fr, commit);
}

int req_group_fetch(int u, const char *group, uint64_t from)
{
    Kollega__Relay__V1__GroupFetch gf = KOLLEGA__RELAY__V1__GROUP_FETCH__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    gf.group = (char *)group;
    gf.from_index = from;
    fr.body_case = BODY(GROUP_FETCH);
    fr.group_fetch = &gf;
    return req(u, &fr);
}

int has_user(int u)
{
    for (size_t i = 0; i < F->out.n_push_users; i++)
        if (F->out.push_users[i] == F->s[u].user_id)
            return 1;
    return 0;
}

uint64_t stored_entries(void)
{
    kl_storage_stats_t st;
    assert_int_equal(kl_storage_stats(F->st, NOW, &st), 0);
    return st.entries;
}
