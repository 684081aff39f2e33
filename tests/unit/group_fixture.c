/* The group fixture (group_fixture.h). */
#include "group_fixture.h"

user_t U[NU];

void make_user(user_t *u, const char *handle)
{
    assert_int_equal(kl_sign_keypair(u->pk, u->sk), 0);
    snprintf(u->addr, sizeof u->addr, "%s@oslo.test", handle);
}

int fixture_setup(void **state)
{
    char h[16];
    (void)state;
    if (kl_crypto_init() != 0)
        return -1;
    for (int i = 0; i < NU; i++) {
        snprintf(h, sizeof h, "u%d", i);
        make_user(&U[i], h);
    }
    return 0;
}

kl_group_t *group_new(const char *addr)
{
    kl_group_t *g = NULL;
    assert_int_equal(kl_group_new(&g, addr), 0);
    assert_non_null(g);
    return g;
}

kl_group_opdesc_t d_kind(kl_group_opkind_t kind)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    return d;
}

kl_group_opdesc_t d_create(kl_group_policy_t policy, uint32_t days)
{
    kl_group_opdesc_t d = d_kind(KL_GOP_CREATE);
    d.policy = policy;
    d.days = days;
    return d;
}

kl_group_opdesc_t d_on(kl_group_opkind_t kind, const user_t *t)
{
    kl_group_opdesc_t d = d_kind(kind);
    if (t != NULL) {
        memcpy(d.target, t->pk, 32);
        d.has_target = 1;
        /* Both are arrays (t->addr NUL-terminated): a whole-array copy, which
         * gcc -O3 can see fits (snprintf made it guess t->addr's size). */
        _Static_assert(sizeof t->addr <= sizeof d.target_address, "address fits");
        memcpy(d.target_address, t->addr, sizeof t->addr);
    }
    return d;
}

kl_group_opdesc_t d_role(const user_t *t, kl_group_role_t role)
{
    kl_group_opdesc_t d = d_on(KL_GOP_SET_ROLE, t);
    d.role = role;
    return d;
}

kl_group_opdesc_t d_policy(kl_group_policy_t p)
{
    kl_group_opdesc_t d = d_kind(KL_GOP_SET_POLICY);
    d.policy = p;
    return d;
}

kl_group_opdesc_t d_retention(uint32_t days)
{
    kl_group_opdesc_t d = d_kind(KL_GOP_SET_RETENTION);
    d.days = days;
    return d;
}

static void hexput(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* Everything the query API shows, as text (free()). Users are the U[]
 * table plus up to nx extra keys. */
static char *snapshot_x(const kl_group_t *g, const user_t *extra, size_t nx)
{
    char *buf = NULL;
    size_t n = 0;
    uint8_t head[32];
    kl_group_member_t m;
    kl_group_candidate_t c;
    FILE *f = open_memstream(&buf, &n);

    assert_non_null(f);
    kl_group_head(g, head);
    fprintf(f, "%s next=%llu closed=%d policy=%d ret=%u epoch=%llu head=",
            kl_group_address(g), (unsigned long long)kl_group_next_index(g), kl_group_closed(g),
            (int)kl_group_policy(g), kl_group_retention_days(g),
            (unsigned long long)kl_group_epoch(g));
    hexput(f, head, 32);
    fprintf(f, "\nmembers %zu\n", kl_group_member_count(g));
    for (size_t i = 0; i < kl_group_member_count(g); i++) {
        assert_int_equal(kl_group_member_at(g, i, &m), 0);
        hexput(f, m.key, 32);
        fprintf(f, " %s %d\n", m.address, (int)m.role);
    }
    assert_int_equal(kl_group_member_at(g, kl_group_member_count(g), &m), KL_ENOTFOUND);
    fprintf(f, "candidates %zu\n", kl_group_candidate_count(g));
    for (size_t i = 0; i < kl_group_candidate_count(g); i++) {
        assert_int_equal(kl_group_candidate_at(g, i, &c), 0);
        hexput(f, c.key, 32);
        fprintf(f, " %s %zu %zu:", c.address, c.approvals, c.missing);
        for (size_t j = 0; j < NU; j++)
            fprintf(f, "%d", kl_group_has_approved(g, c.key, U[j].pk));
        for (size_t j = 0; j < nx; j++)
            fprintf(f, "%d", kl_group_has_approved(g, c.key, extra[j].pk));
        fprintf(f, "\n");
    }
    assert_int_equal(kl_group_candidate_at(g, kl_group_candidate_count(g), &c), KL_ENOTFOUND);
    for (size_t j = 0; j < NU; j++)
        fprintf(f, "%d", (int)kl_group_role_of(g, U[j].pk));
    for (size_t j = 0; j < nx; j++)
        fprintf(f, "%d", (int)kl_group_role_of(g, extra[j].pk));
    fclose(f);
    return buf;
}

char *snapshot(const kl_group_t *g)
{
    return snapshot_x(g, NULL, 0);
}

opbuf_t build(const kl_group_t *g, const user_t *u, kl_group_opdesc_t d)
{
    opbuf_t o = {NULL, 0};
    assert_int_equal(kl_group_op_build(g, u->sk, u->pk, u->addr, TS, &d, &o.p, &o.len), 0);
    assert_non_null(o.p);
    assert_true(o.len > 0 && o.len <= KL_GROUP_MAX_OP);
    return o;
}

static int code_of(kl_group_verr_t why)
{
    switch (why) {
    case KL_GV_MALFORMED:
    case KL_GV_WRONG_GROUP:
    case KL_GV_CHAIN: return KL_EPROTO;
    case KL_GV_SIGNATURE: return KL_ECRYPTO;
    case KL_GV_LIMIT: return KL_ELIMIT;
    default: return KL_ESTATE;
    }
}

kl_group_event_t apply_ok(kl_group_t *g, const opbuf_t *o)
{
    kl_group_event_t ev;
    kl_group_verr_t why = KL_GV_LIMIT;
    uint64_t next = kl_group_next_index(g);
    uint8_t head[32], want[32];

    assert_int_equal(kl_group_apply(g, o->p, o->len, &ev, &why), 0);
    assert_int_equal(why, KL_GV_OK);
    assert_int_equal(ev.index, next);
    assert_int_equal(kl_group_next_index(g), next + 1);
    kl_sha256(o->p, o->len, want);
    kl_group_head(g, head);
    assert_memory_equal(head, want, 32);
    return ev;
}

void apply_refused_x(kl_group_t *g, const uint8_t *p, size_t len,
                     kl_group_verr_t want, const user_t *extra, size_t nx)
{
    kl_group_event_t ev;
    kl_group_verr_t why = KL_GV_OK;
    char *before = snapshot_x(g, extra, nx), *after;
    int r = kl_group_apply(g, p, len, &ev, &why);

    if (why != want)
        fprintf(stderr, "refused for %s, expected %s\n", kl_group_verr_str(why),
                kl_group_verr_str(want));
    assert_int_equal(why, want);
    assert_int_equal(r, code_of(want));
    after = snapshot_x(g, extra, nx);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

void apply_refused(kl_group_t *g, const opbuf_t *o, kl_group_verr_t want)
{
    apply_refused_x(g, o->p, o->len, want, NULL, 0);
}

kl_group_event_t act(kl_group_t *g, const user_t *u, kl_group_opdesc_t d)
{
    opbuf_t o = build(g, u, d);
    kl_group_event_t ev = apply_ok(g, &o);
    free(o.p);
    return ev;
}

void act_refused(kl_group_t *g, const user_t *u, kl_group_opdesc_t d,
                 kl_group_verr_t want)
{
    opbuf_t o = build(g, u, d);
    apply_refused(g, &o, want);
    free(o.p);
}

kl_group_t *group_of(size_t n, kl_group_policy_t policy)
{
    kl_group_t *g = group_new(GADDR);
    act(g, &U[0], d_create(KL_POLICY_FACILITATORS, 0));
    for (size_t i = 1; i < n; i++) {
        kl_group_event_t ev = act(g, &U[0], d_on(KL_GOP_INVITE, &U[i]));
        assert_true(ev.admitted);
    }
    if (policy != KL_POLICY_FACILITATORS)
        act(g, &U[0], d_policy(policy));
    assert_int_equal(kl_group_member_count(g), n);
    return g;
}

kl_group_candidate_t cand_of(const kl_group_t *g, const uint8_t key[32])
{
    kl_group_candidate_t c;
    for (size_t i = 0; i < kl_group_candidate_count(g); i++) {
        assert_int_equal(kl_group_candidate_at(g, i, &c), 0);
        if (memcmp(c.key, key, 32) == 0)
            return c;
    }
    fail_msg("no such candidate");
    return c;
}

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    assert_true(a->n < 1024);
    a->p[a->n] = malloc(size);
    return a->p[a->n++];
}

static void arena_nofree(void *data, void *p)
{
    (void)data;
    (void)p;
}

void arena_release(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    a->n = 0;
}

Kollega__Group__V1__Op *op_of(const opbuf_t *o, arena_t *a)
{
    ProtobufCAllocator al = {arena_alloc, arena_nofree, a};
    Kollega__Group__V1__SignedOp *so = kollega__group__v1__signed_op__unpack(&al, o->len, o->p);
    assert_non_null(so);
    Kollega__Group__V1__Op *op = kollega__group__v1__op__unpack(&al, so->op.len, so->op.data);
    assert_non_null(op);
    return op;
}

Kollega__Group__V1__Op *draft(const kl_group_t *g, const user_t *u,
                              kl_group_opdesc_t d, arena_t *a)
{
    opbuf_t o = build(g, u, d);
    Kollega__Group__V1__Op *op = op_of(&o, a);
    free(o.p);
    return op;
}

opbuf_t wrap(const uint8_t *op, size_t oplen, const uint8_t *sig, size_t siglen)
{
    Kollega__Group__V1__SignedOp so = KOLLEGA__GROUP__V1__SIGNED_OP__INIT;
    opbuf_t o;
    so.op.data = (uint8_t *)op;
    so.op.len = oplen;
    so.signature.data = (uint8_t *)sig;
    so.signature.len = siglen;
    o.len = kollega__group__v1__signed_op__get_packed_size(&so);
    o.p = malloc(o.len + 1);
    assert_non_null(o.p);
    assert_int_equal(kollega__group__v1__signed_op__pack(&so, o.p), o.len);
    return o;
}

void sign_raw(const user_t *signer, const uint8_t *op, size_t oplen,
              uint8_t sig[64])
{
    const size_t cl = strlen(KL_GROUP_OP_CONTEXT);
    uint8_t *m = malloc(cl + oplen + 1);
    assert_non_null(m);
    memcpy(m, KL_GROUP_OP_CONTEXT, cl);
    memcpy(m + cl, op, oplen);
    assert_int_equal(kl_sign(signer->sk, m, cl + oplen, sig), 0);
    free(m);
}

opbuf_t seal(const Kollega__Group__V1__Op *op, const user_t *signer)
{
    uint8_t sig[64];
    size_t n = kollega__group__v1__op__get_packed_size(op);
    uint8_t *b = malloc(n + 1);
    assert_non_null(b);
    assert_int_equal(kollega__group__v1__op__pack(op, b), n);
    sign_raw(signer, b, n, sig);
    opbuf_t o = wrap(b, n, sig, sizeof sig);
    free(b);
    return o;
}
