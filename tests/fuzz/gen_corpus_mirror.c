/* Writes the seed corpus of fuzz_mirror.c: a home relay's answers to a
 * sync round of the mirror of FC_ADDR (fuzz_mirror.h): the whole log with
 * valid posts and a forged one, a first page only (posts must wait),
 * entries out of order and repeated, and an empty round.
 *
 *   kl-fuzz-gen-mirror DIR    (DIR = tests/fuzz/corpus; writes DIR/mirror/seed-*) */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz_mirror.h"

static uint8_t A[32768], B[32768], OUT[65536 + 2];

static void put(const char *dir, const char *name, size_t alen, size_t blen)
{
    char path[512];
    OUT[0] = (uint8_t)(alen >> 8);
    OUT[1] = (uint8_t)alen;
    memcpy(OUT + 2, A, alen);
    memcpy(OUT + 2 + alen, B, blen);
    snprintf(path, sizeof path, "%s/mirror/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL && fwrite(OUT, 1, 2 + alen + blen, f) == 2 + alen + blen &&
               fclose(f) == 0);
}

static void post(kl_channel_t *c, const fc_user_t *u, uint8_t idb, const char *text,
                 uint8_t **out, size_t *len)
{
    uint8_t id[16] = {idb};
    FUZZ_CHECK(kl_channel_post_build(c, u->sk, u->pk, u->addr, id, FC_TS, text, out, len) == 0);
}

int main(int argc, char **argv)
{
    static fc_fx_t fx;
    char sub[512];
    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen-mirror CORPUS_DIR\n");
        return 2;
    }
    snprintf(sub, sizeof sub, "%s/mirror", argv[1]);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST)
        return 1;
    fc_fixture(&fx);
    kl_channel_t *c = fc_state(&fx);
    uint8_t *p[4];
    size_t pl[4];
    post(c, &fx.u[1], 1, "Nordic seminar in Riga", &p[0], &pl[0]);
    post(c, &fx.u[0], 2, "from the owner", &p[1], &pl[1]);
    post(c, &fx.u[1], 3, "forged below", &p[2], &pl[2]);
    p[2][pl[2] - 1] ^= 0x55; /* its signature no longer verifies */
    p[3] = p[0];
    pl[3] = pl[0];

    size_t blen = fm_log(fx.prefix, fx.prefix_len, 2, 0, 2, B, sizeof B);
    uint64_t seqs[] = {1, 2, 3, 4};
    put(argv[1], "whole-log", fm_deliver(p, pl, seqs, 4, A, sizeof A), blen);
    uint64_t shuffled[] = {3, 1, 2, 2};
    put(argv[1], "out-of-order", fm_deliver(p, pl, shuffled, 4, A, sizeof A), blen);
    size_t first = fm_log(fx.prefix, fx.prefix_len, 1, 0, 2, B, sizeof B);
    put(argv[1], "first-page", fm_deliver(p, pl, seqs, 2, A, sizeof A), first);
    put(argv[1], "empty", 0, 0);
    for (int i = 0; i < 3; i++)
        free(p[i]);
    kl_channel_free(c);
    return 0;
}
