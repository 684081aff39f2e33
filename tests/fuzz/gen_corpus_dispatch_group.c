/* Writes the group seeds of fuzz_dispatch.c: sessions (as alice or bob of
 * fuzz.h's relay fixture) that create #erfa@oslo.test with real signed ops,
 * invite, send to the group, fetch and ack its log, fetch its ops, list
 * groups, and the refusals (another relay's group, a stale index, an op
 * signed by someone else, a non-member's send).
 *
 *   kl-fuzz-gen-dispatch_group DIR   (writes DIR/dispatch/seed-group-*)
 *
 * Every input runs from the fixture's state (fuzz_dispatch rolls each back),
 * so each seed carries its own create op. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "fuzz_relay.h"
#include "kollega/group.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define GA "#erfa@" FUZZ_RELAY_NAME

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

/* One record: dt, u16 length, packed frame. */
static void b_record(buf_t *b, kl_frame_t *f)
{
    static uint32_t next_id = 1;
    f->id = next_id++;
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    FUZZ_CHECK(n <= 0xffff && b->n + 3 + n <= sizeof b->p);
    b_u8(b, 1);
    b_u8(b, (uint8_t)(n >> 8));
    b_u8(b, (uint8_t)n);
    FUZZ_CHECK(kollega__relay__v1__frame__pack(f, b->p + b->n) == n);
    b->n += n;
}

static void put(const char *name, const buf_t *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/dispatch", out_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fuzz_fail("mkdir", __FILE__, __LINE__);
    snprintf(path, sizeof path, "%s/dispatch/seed-group-%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(b->p, 1, b->n, f) == b->n);
    FUZZ_CHECK(fclose(f) == 0);
    written++;
}

static char addr_of[2][64];

/* Build an op by u against g, apply it to g when apply. */
static void r_op(buf_t *b, kl_group_t *g, const fuzz_user_t *u, const char *uaddr,
                 kl_group_opdesc_t d, int apply)
{
    uint8_t *op = NULL;
    size_t len = 0;
    FUZZ_CHECK(kl_group_op_build(g, u->sk, u->pk, uaddr, FUZZ_NOW_MS, &d, &op, &len) == 0);
    if (apply)
        FUZZ_CHECK(kl_group_apply(g, op, len, NULL, NULL) == 0);
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    go.signed_op.data = op;
    go.signed_op.len = len;
    f.body_case = BODY(GROUP_OP);
    f.group_op = &go;
    b_record(b, &f);
    free(op);
}

static kl_group_opdesc_t desc(kl_group_opkind_t kind)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    d.policy = KL_POLICY_FACILITATORS;
    return d;
}

static void r_send(buf_t *b, const char *to)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = (char *)to;
    sd.body.data = (uint8_t *)"sender-key ciphertext";
    sd.body.len = 21;
    f.body_case = BODY(SEND);
    f.send = &sd;
    b_record(b, &f);
}

static void r_fetch(buf_t *b, uint64_t after)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = after;
    fe.group = GA;
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    b_record(b, &f);
}

static void r_ack(buf_t *b, uint64_t seq)
{
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    a.seq = seq;
    a.group = GA;
    f.body_case = BODY(ACK);
    f.ack = &a;
    b_record(b, &f);
}

static void r_gfetch(buf_t *b, uint64_t from)
{
    Kollega__Relay__V1__GroupFetch gf = KOLLEGA__RELAY__V1__GROUP_FETCH__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    gf.group = GA;
    gf.from_index = from;
    f.body_case = BODY(GROUP_FETCH);
    f.group_fetch = &gf;
    b_record(b, &f);
}

static void r_list(buf_t *b)
{
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(GROUP_LIST);
    f.group_list = &gl;
    b_record(b, &f);
}

int main(int argc, char **argv)
{
    static buf_t b;
    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen-dispatch_group CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    fuzz_init();
    fuzz_relay_t *R = fuzz_relay_get();
    snprintf(addr_of[0], sizeof addr_of[0], "alice@%s", FUZZ_RELAY_NAME);
    snprintf(addr_of[1], sizeof addr_of[1], "bob@%s", FUZZ_RELAY_NAME);
    kl_group_t *g = NULL;

    /* alice: create, invite bob, send, read, ack, ops, list, leave. */
    FUZZ_CHECK(kl_group_new(&g, GA) == 0);
    b.n = 0;
    b_u8(&b, 1);
    r_op(&b, g, &R->alice, addr_of[0], desc(KL_GOP_CREATE), 1);
    kl_group_opdesc_t inv = desc(KL_GOP_INVITE);
    memcpy(inv.target, R->bob.pk, 32);
    inv.has_target = 1;
    snprintf(inv.target_address, sizeof inv.target_address, "%s", addr_of[1]);
    r_op(&b, g, &R->alice, addr_of[0], inv, 1);
    r_send(&b, GA);
    r_send(&b, GA);
    r_fetch(&b, 0);
    r_ack(&b, 2);
    r_gfetch(&b, 0);
    r_list(&b);
    kl_group_opdesc_t ret = desc(KL_GOP_SET_RETENTION);
    ret.days = 3;
    r_op(&b, g, &R->alice, addr_of[0], ret, 1);
    kl_group_opdesc_t lv = desc(KL_GOP_LEAVE);
    memcpy(lv.target, R->bob.pk, 32);
    lv.has_target = 1;
    r_op(&b, g, &R->alice, addr_of[0], lv, 1);
    r_send(&b, GA);
    put("lifecycle", &b);
    kl_group_free(g);

    /* alice: duplicate create, stale index, another relay's group. */
    FUZZ_CHECK(kl_group_new(&g, GA) == 0);
    b.n = 0;
    b_u8(&b, 1);
    r_op(&b, g, &R->alice, addr_of[0], desc(KL_GOP_CREATE), 1);
    kl_group_t *fresh = NULL;
    FUZZ_CHECK(kl_group_new(&fresh, GA) == 0);
    r_op(&b, fresh, &R->alice, addr_of[0], desc(KL_GOP_CREATE), 0);
    r_op(&b, g, &R->alice, addr_of[0], inv, 0);
    r_op(&b, g, &R->alice, addr_of[0], inv, 1);
    r_op(&b, g, &R->alice, addr_of[0], inv, 0);
    r_send(&b, "#erfa@stockholm.test");
    r_gfetch(&b, 5);
    put("conflicts", &b);
    kl_group_free(fresh);
    kl_group_free(g);

    /* bob: an op of alice's on bob's connection, then a send, reads and a
     * list for a group that does not exist. */
    FUZZ_CHECK(kl_group_new(&g, GA) == 0);
    b.n = 0;
    b_u8(&b, 2);
    r_op(&b, g, &R->alice, addr_of[0], desc(KL_GOP_CREATE), 0);
    r_send(&b, GA);
    r_fetch(&b, 0);
    r_gfetch(&b, 0);
    r_list(&b);
    put("stranger", &b);
    kl_group_free(g);

    fprintf(stderr, "kl-fuzz-gen-dispatch_group: wrote %zu seeds under %s/dispatch\n", written,
            out_dir);
    return 0;
}
