/* Writes the seed corpus of fuzz_channel.c: the fixture's own ops and a
 * valid post as raw records, a flipped and a replayed op, and programs
 * that reach every rule.
 *
 *   kl-fuzz-gen-channel DIR    (DIR = tests/fuzz/corpus; writes DIR/channel/seed-*) */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz_channel.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/channel/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static size_t raw(uint8_t *b, size_t at, uint8_t mode, const uint8_t *p, size_t n)
{
    b[at++] = mode;
    b[at++] = (uint8_t)(n >> 8);
    b[at++] = (uint8_t)n;
    memcpy(b + at, p, n);
    return at + n;
}

int main(int argc, char **argv)
{
    static fc_fx_t fx;
    static uint8_t b[65536];
    char sub[512];
    size_t n;

    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen-channel CORPUS_DIR\n");
        return 2;
    }
    snprintf(sub, sizeof sub, "%s/channel", argv[1]);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST)
        return 1;
    fc_fixture(&fx);
    kl_channel_t *c = fc_state(&fx);

    /* u0 adds u2 (raw), u1 posts (raw), u0 removes u1, u1's post again. */
    uint8_t *add = NULL, *rm = NULL, *post = NULL;
    size_t add_len, rm_len, post_len;
    uint8_t id[16] = {7};
    FUZZ_CHECK(kl_channel_op_build(c, fx.u[0].sk, fx.u[0].pk, fx.u[0].addr, FC_TS,
                                   KL_COP_ADD_PUBLISHER, fx.u[2].pk, fx.u[2].addr, &add,
                                   &add_len) == 0);
    FUZZ_CHECK(kl_channel_post_build(c, fx.u[1].sk, fx.u[1].pk, fx.u[1].addr, id, FC_TS,
                                     "Sommerseminar i Bergen", &post, &post_len) == 0);
    FUZZ_CHECK(kl_channel_apply(c, add, add_len, NULL, NULL) == 0);
    FUZZ_CHECK(kl_channel_op_build(c, fx.u[0].sk, fx.u[0].pk, fx.u[0].addr, FC_TS,
                                   KL_COP_REMOVE_PUBLISHER, fx.u[1].pk, NULL, &rm, &rm_len) == 0);
    n = raw(b, 0, 0, add, add_len);
    n = raw(b, n, 1, post, post_len);
    n = raw(b, n, 0, rm, rm_len);
    n = raw(b, n, 1, post, post_len);
    put(argv[1], "ops-and-posts", b, n);
    n = raw(b, 0, 0, add, add_len);
    n = raw(b, n, 0, add, add_len);
    put(argv[1], "replay", b, n);
    n = raw(b, 0, 0, add, add_len);
    b[n / 2] ^= 0x20;
    put(argv[1], "flipped", b, n);
    n = raw(b, 0, 1, post, post_len);
    put(argv[1], "post", b, n);
    /* Programs: every op kind by every user, then posts by every user. */
    n = 0;
    for (uint8_t a = 0; a < FC_NUSERS; a++)
        for (uint8_t k = 0; k < 3; k++)
            for (uint8_t t = 0; t < FC_NUSERS; t++) {
                b[n++] = 2, b[n++] = a, b[n++] = k, b[n++] = t;
            }
    put(argv[1], "program-ops", b, n);
    n = 0;
    for (uint8_t a = 0; a < FC_NUSERS; a++)
        b[n++] = 3, b[n++] = a, b[n++] = (uint8_t)(40 * a + 1);
    put(argv[1], "program-posts", b, n);
    free(add);
    free(rm);
    free(post);
    kl_channel_free(c);
    return 0;
}
