/* Writes the seed corpus of fuzz_group.c: real signed logs built on the
 * fixture of fuzz_group.h (valid, reordered, replayed, flipped, another
 * group's, over-size), and programs that reach every op kind.
 *
 *   kl-fuzz-gen-group DIR      (DIR = tests/fuzz/corpus; writes DIR/group/seed-*)
 *
 * Files named seed-* are rewritten on every run; crash reproducers are
 * committed beside them as crash-* and left alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "fuzz_group.h"

static const char *out_dir;
static size_t written;

typedef struct buf {
    uint8_t p[16384];
    size_t n;
} buf_t;

static void b_put(buf_t *b, const void *p, size_t n)
{
    FUZZ_CHECK(b->n + n <= sizeof b->p);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void b_u8(buf_t *b, uint8_t v)
{
    b_put(b, &v, 1);
}

/* One log entry: u16 BE length, then the bytes. */
static void b_entry(buf_t *b, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(n <= 0xffff);
    b_u8(b, (uint8_t)(n >> 8));
    b_u8(b, (uint8_t)n);
    b_put(b, p, n);
}

static void put(const char *name, const buf_t *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/group", out_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fuzz_fail("mkdir", __FILE__, __LINE__);
    snprintf(path, sizeof path, "%s/group/seed-%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(b->p, 1, b->n, f) == b->n);
    FUZZ_CHECK(fclose(f) == 0);
    written++;
}

/* ops built and applied in sequence on one state */
typedef struct seq {
    uint8_t *op[16];
    size_t len[16];
    size_t n;
} seq_t;

static void seq_add(seq_t *s, kl_group_t *g, const fg_user_t *u, kl_group_opdesc_t d)
{
    FUZZ_CHECK(s->n < 16);
    fg_must(g, u, d, &s->op[s->n], &s->len[s->n]);
    s->n++;
}

static void seq_free(seq_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->op[i]);
    s->n = 0;
}

static kl_group_opdesc_t with_policy(kl_group_opdesc_t d, kl_group_policy_t p)
{
    d.policy = p;
    return d;
}

static kl_group_opdesc_t with_role(kl_group_opdesc_t d, kl_group_role_t r)
{
    d.role = r;
    return d;
}

/* Mode 0: logs from a fresh state. */
static void gen_fresh(const fg_fx_t *fx)
{
    buf_t b;
    static const int orders[][6] = {
        {0, 1, 2, 3, 4, -1}, /* valid */
        {0, 2, 1, 3, 4, -1}, /* reordered */
        {0, 0, 1, 1, 2, -1}, /* replayed */
        {1, 2, 3, 4, -1, 0}, /* create dropped */
    };
    static const char *names[] = {"fresh-prefix", "fresh-reordered", "fresh-replayed",
                                  "fresh-dropped"};
    for (size_t k = 0; k < sizeof orders / sizeof *orders; k++) {
        b.n = 0;
        b_u8(&b, 0);
        for (int i = 0; i < 6 && orders[k][i] >= 0; i++)
            b_entry(&b, fx->prefix[orders[k][i]], fx->prefix_len[orders[k][i]]);
        put(names[k], &b);
    }
    /* The prefix with one bit flipped in the approval. */
    uint8_t tmp[KL_GROUP_MAX_OP + 1];
    b.n = 0;
    b_u8(&b, 0);
    for (int i = 0; i < FG_PREFIX; i++) {
        memcpy(tmp, fx->prefix[i], fx->prefix_len[i]);
        if (i == 3)
            tmp[fx->prefix_len[i] / 2] ^= 0x10;
        b_entry(&b, tmp, fx->prefix_len[i]);
    }
    put("fresh-flipped", &b);
    /* Another group's create, then ours. */
    kl_group_t *h = NULL;
    uint8_t *op = NULL;
    size_t len = 0;
    FUZZ_CHECK(kl_group_new(&h, "#other@oslo.test") == 0);
    kl_group_opdesc_t d = with_policy(fg_desc(KL_GOP_CREATE, NULL), KL_POLICY_ALL);
    fg_must(h, &fx->u[0], d, &op, &len);
    b.n = 0;
    b_u8(&b, 0);
    b_entry(&b, op, len);
    b_entry(&b, fx->prefix[0], fx->prefix_len[0]);
    put("fresh-other-group", &b);
    free(op);
    kl_group_free(h);
    /* Over-size and empty entries around a valid create. */
    memset(tmp, 0, sizeof tmp);
    memcpy(tmp, fx->prefix[0], fx->prefix_len[0]);
    b.n = 0;
    b_u8(&b, 0);
    b_entry(&b, tmp, KL_GROUP_MAX_OP + 1);
    b_entry(&b, tmp, 0);
    b_entry(&b, fx->prefix[0], fx->prefix_len[0]);
    put("fresh-oversize", &b);
}

/* Mode 1: logs continuing the prefix. */
static void gen_after_prefix(const fg_fx_t *fx)
{
    const fg_user_t *u = fx->u;
    buf_t b;
    seq_t s = {{0}, {0}, 0};
    kl_group_t *g;

    /* Admission of u3 by majority, roles, removal, leave, policy. */
    g = fg_state(fx, 1);
    seq_add(&s, g, &u[0], fg_desc(KL_GOP_APPROVE, &u[3]));
    seq_add(&s, g, &u[1], fg_desc(KL_GOP_APPROVE, &u[3]));
    seq_add(&s, g, &u[0], with_role(fg_desc(KL_GOP_SET_ROLE, &u[1]), KL_ROLE_FACILITATOR));
    seq_add(&s, g, &u[1], fg_desc(KL_GOP_REMOVE, &u[2]));
    seq_add(&s, g, &u[0], with_policy(fg_desc(KL_GOP_SET_POLICY, NULL), KL_POLICY_ALL));
    kl_group_opdesc_t ret = fg_desc(KL_GOP_SET_RETENTION, NULL);
    ret.days = 30;
    seq_add(&s, g, &u[1], ret);
    seq_add(&s, g, &u[4], fg_desc(KL_GOP_REQUEST, NULL));
    seq_add(&s, g, &u[1], fg_desc(KL_GOP_INVITE, &u[5]));
    seq_add(&s, g, &u[0], fg_desc(KL_GOP_LEAVE, NULL));
    seq_add(&s, g, &u[1], fg_desc(KL_GOP_REMOVE, &u[4]));
    b.n = 0;
    b_u8(&b, 1);
    for (size_t i = 0; i < s.n; i++)
        b_entry(&b, s.op[i], s.len[i]);
    put("prefix-every-kind", &b);
    /* The same with the last two swapped. */
    b.n = 0;
    b_u8(&b, 1);
    for (size_t i = 0; i + 2 < s.n; i++)
        b_entry(&b, s.op[i], s.len[i]);
    b_entry(&b, s.op[s.n - 1], s.len[s.n - 1]);
    b_entry(&b, s.op[s.n - 2], s.len[s.n - 2]);
    put("prefix-swapped", &b);
    seq_free(&s);
    kl_group_free(g);

    /* Everybody leaves: the group closes; then a request. */
    g = fg_state(fx, 1);
    seq_add(&s, g, &u[0], fg_desc(KL_GOP_LEAVE, &u[1]));
    seq_add(&s, g, &u[2], fg_desc(KL_GOP_LEAVE, NULL));
    seq_add(&s, g, &u[1], fg_desc(KL_GOP_LEAVE, NULL));
    b.n = 0;
    b_u8(&b, 1);
    for (size_t i = 0; i < s.n; i++)
        b_entry(&b, s.op[i], s.len[i]);
    b_entry(&b, fx->prefix[4], fx->prefix_len[4]);
    put("prefix-closed", &b);
    seq_free(&s);
    kl_group_free(g);

    /* A relay (never a member) inviting itself, and a replay of create. */
    g = fg_state(fx, 1);
    uint8_t *op = NULL;
    size_t len = 0;
    kl_group_opdesc_t d = fg_desc(KL_GOP_INVITE, &u[FG_NUSERS - 1]);
    FUZZ_CHECK(kl_group_op_build(g, u[FG_NUSERS - 1].sk, u[FG_NUSERS - 1].pk,
                                 u[FG_NUSERS - 1].addr, FG_TS, &d, &op, &len) == 0);
    b.n = 0;
    b_u8(&b, 1);
    b_entry(&b, op, len);
    b_entry(&b, fx->prefix[0], fx->prefix_len[0]);
    put("prefix-relay-insert", &b);
    free(op);
    kl_group_free(g);
}

/* Modes 2 and 3: programs (actor, kind, target, param, f1, f2). Kinds are
 * KL_GOP_CREATE + kind % 9: 0 create, 1 invite, 2 request, 3 approve,
 * 4 remove, 5 leave, 6 set_role, 7 set_policy, 8 set_retention. */
static void gen_programs(void)
{
    static const uint8_t after_prefix[][6] = {
        {0, 3, 3, 0, 0, 0}, {1, 3, 3, 0, 0, 0},       /* u3 admitted */
        {0, 6, 1, 4, 0, 0},                           /* u1 facilitator */
        {2, 1, 4, 0, 0, 0}, {0, 3, 4, 0, 0, 0},       /* u4 invited, approved */
        {1, 4, 2, 0, 0, 0},                           /* u2 removed */
        {5, 2, 0, 0, 0, 0}, {6, 3, 5, 0, 0, 0},       /* u5 requests; relay approves */
        {0, 7, 0, 2, 0, 0}, {1, 8, 0, 9, 0, 0},       /* FACILITATORS, retention 9 */
        {0, 5, 1, 0x40, 0, 0},                        /* u0 leaves naming u1 */
        {1, 3, 5, 0, 0x80, 77}, {1, 3, 5, 0, 0, 0},   /* a flipped approval, the real one */
    };
    static const uint8_t fresh[][6] = {
        {0, 0, 0, 0, 0, 0}, /* create, policy ALL */
        {0, 1, 1, 0, 0, 0}, {0, 1, 2, 0, 0, 0}, {1, 3, 2, 0, 0, 0},
        {3, 2, 0, 0, 0, 0}, {0, 3, 3, 0, 0, 0}, {1, 5, 0, 0, 0, 0}, {0, 5, 0, 0, 0, 0},
    };
    /* The address-once rule: param 0x80 makes an invite name the target's
     * key under the next user's address. */
    static const uint8_t addresses[][6] = {
        {0, 1, 6, 0x80, 0, 0}, /* "relay"'s key as u0: taken by a member */
        {0, 1, 2, 0x80, 0, 0}, /* u2's key as u3: u2 is a member already */
        {0, 1, 4, 0x80, 0, 0}, /* u4's key as u5: accepted */
        {5, 2, 0, 0, 0, 0},    /* u5's own request: its address is taken */
        {0, 4, 4, 0, 0, 0},    /* the candidate refused; then u5 may ask */
        {5, 2, 0, 0, 0, 0},
    };
    buf_t b;
    b.n = 0;
    b_u8(&b, 2);
    b_put(&b, after_prefix, sizeof after_prefix);
    put("program-after-prefix", &b);
    b.n = 0;
    b_u8(&b, 2);
    b_put(&b, addresses, sizeof addresses);
    put("program-addresses", &b);
    b.n = 0;
    b_u8(&b, 3);
    b_put(&b, fresh, sizeof fresh);
    put("program-fresh", &b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen-group CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kl-fuzz-gen-group: cannot create %s\n", out_dir);
        return 1;
    }
    fuzz_init();
    const fg_fx_t *fx = fg_get();
    gen_fresh(fx);
    gen_after_prefix(fx);
    gen_programs();
    printf("kl-fuzz-gen-group: %zu seeds written to %s\n", written, out_dir);
    return 0;
}
