/* Fixtures of libkollega shared by the fuzz targets and the corpus
 * generators; see fuzz.h.
 *
 * This file includes sodium.h although only proto/crypto*.c normally do:
 * a deterministic random generator can only be installed through libsodium's
 * own randombytes_set_implementation, and fuzzing needs one (fuzz.h). */
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/ratchet.h"
#include "kollega/sealed.h"
#include "kollega/x3dh.h"

const uint8_t FUZZ_RELAY_SK[32] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                   0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
                                   0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
                                   0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};
const uint8_t FUZZ_CLIENT_E[32] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
                                   0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
                                   0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                   0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f};
const uint8_t FUZZ_PEER_SK[32] = {0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
                                  0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
                                  0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
                                  0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f};
const uint8_t FUZZ_RELAY_E[32] = {0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
                                  0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
                                  0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
                                  0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f};

void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, file, line);
    abort();
}

/* ---- deterministic RNG (splitmix64) ---------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *rng_name(void)
{
    return "kollega-fuzz-splitmix64";
}

static uint32_t rng_random(void)
{
    return (uint32_t)rng_next();
}

static void rng_buf(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        uint64_t v = rng_next();
        size_t k = n < sizeof v ? n : sizeof v;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}

static randombytes_implementation rng_impl = {
    .implementation_name = rng_name,
    .random = rng_random,
    .buf = rng_buf,
};

void fuzz_rng_reset(uint64_t seed)
{
    rng_state = seed;
}

void fuzz_init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    fuzz_rng_reset(1);
    if (randombytes_set_implementation(&rng_impl) != 0 || kl_crypto_init() != 0)
        fuzz_fail("libsodium initialisation", __FILE__, __LINE__);
}

/* ---- input reader ----------------------------------------------------- */

uint8_t fuzz_u8(fuzz_in_t *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

uint16_t fuzz_u16(fuzz_in_t *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

const uint8_t *fuzz_bytes(fuzz_in_t *in, size_t n, size_t *len)
{
    const uint8_t *p = in->p;
    if (n > in->left)
        n = in->left;
    in->p += n;
    in->left -= n;
    *len = n;
    return p;
}

/* ---- temporary directories ------------------------------------------- */

#define MAX_DIRS 4
static char tmp_dirs[MAX_DIRS][256];
static int n_tmp_dirs;

static void remove_tmp_dirs(void)
{
    for (int i = 0; i < n_tmp_dirs; i++) {
        DIR *d = opendir(tmp_dirs[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        if (d != NULL)
            closedir(d);
        rmdir(tmp_dirs[i]);
    }
    n_tmp_dirs = 0;
}

void fuzz_tmpdir(char *path, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0' || strlen(base) > 180)
        base = "/tmp";
    FUZZ_CHECK(n_tmp_dirs < MAX_DIRS && cap >= sizeof tmp_dirs[0]);
    char *d = tmp_dirs[n_tmp_dirs];
    snprintf(d, sizeof tmp_dirs[0], "%s/kl-fuzz-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(d) != NULL);
    if (n_tmp_dirs++ == 0)
        atexit(remove_tmp_dirs);
    snprintf(path, cap, "%s", d);
}

/* ---- Noise ------------------------------------------------------------ */

void fuzz_relay_pub(uint8_t pk[32])
{
    FUZZ_CHECK(kl_x_public(FUZZ_RELAY_SK, pk) == 0);
}

void fuzz_peer_pub(uint8_t pk[32])
{
    FUZZ_CHECK(kl_x_public(FUZZ_PEER_SK, pk) == 0);
}

kl_noise_hs_t *fuzz_hs_make(kl_noise_pattern_t p, int initiator)
{
    uint8_t relay_pk[32], peer_pk[32];
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t c = {p, initiator, 0, NULL, 0, NULL, NULL, NULL, NULL};
    fuzz_relay_pub(relay_pk);
    fuzz_peer_pub(peer_pk);
    if (p == KL_NOISE_NK) {
        c.prologue = (const uint8_t *)KL_PROLOGUE_CLIENT;
        c.prologue_len = strlen(KL_PROLOGUE_CLIENT);
        c.s = initiator ? NULL : FUZZ_RELAY_SK;
        c.rs = initiator ? relay_pk : NULL;
    } else {
        c.prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION;
        c.prologue_len = strlen(KL_PROLOGUE_FEDERATION);
        c.s = initiator ? FUZZ_PEER_SK : FUZZ_RELAY_SK;
        c.rs = initiator ? relay_pk : peer_pk;
    }
    c.e = initiator ? FUZZ_CLIENT_E : FUZZ_RELAY_E;
    FUZZ_CHECK(kl_noise_hs_new(&hs, &c) == 0);
    return hs;
}

void fuzz_transport_pair(kl_noise_transport_t *client, kl_noise_transport_t *relay)
{
    static kl_noise_transport_t c, r;
    static int built;
    if (!built) {
        uint8_t rpk[32], m1[128], m2[128], pl[16];
        size_t l1 = 0, l2 = 0, pn = 0;
        kl_noise_hs_t *ci = NULL, *re = NULL;
        kl_noise_config_t cc = {KL_NOISE_NK, 1, 0, (const uint8_t *)KL_PROLOGUE_CLIENT,
                                strlen(KL_PROLOGUE_CLIENT), NULL, rpk, FUZZ_CLIENT_E, NULL};
        kl_noise_config_t rc = {KL_NOISE_NK, 0, 0, (const uint8_t *)KL_PROLOGUE_CLIENT,
                                strlen(KL_PROLOGUE_CLIENT), FUZZ_RELAY_SK, NULL, FUZZ_RELAY_E,
                                NULL};
        fuzz_init();
        fuzz_relay_pub(rpk);
        FUZZ_CHECK(kl_noise_hs_new(&ci, &cc) == 0 && kl_noise_hs_new(&re, &rc) == 0);
        FUZZ_CHECK(kl_noise_hs_write(ci, NULL, 0, m1, sizeof m1, &l1) == 0);
        FUZZ_CHECK(kl_noise_hs_read(re, m1, l1, pl, sizeof pl, &pn) == 0);
        FUZZ_CHECK(kl_noise_hs_write(re, NULL, 0, m2, sizeof m2, &l2) == 0);
        FUZZ_CHECK(kl_noise_hs_read(ci, m2, l2, pl, sizeof pl, &pn) == 0);
        FUZZ_CHECK(kl_noise_hs_split(ci, &c) == 0 && kl_noise_hs_split(re, &r) == 0);
        kl_noise_hs_free(ci);
        kl_noise_hs_free(re);
        built = 1;
    }
    *client = c;
    *relay = r;
}

/* ---- Double Ratchet fixture -------------------------------------------- */

static uint8_t *ratchet_msg(kl_ratchet_t *r, const char *text, size_t *len)
{
    size_t n = strlen(text);
    uint8_t *m = malloc(n + KL_RATCHET_OVERHEAD);
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(kl_ratchet_encrypt(r, (const uint8_t *)text, n, m, n + KL_RATCHET_OVERHEAD,
                                  len) == 0);
    return m;
}

static void ratchet_recv(kl_ratchet_t *r, const uint8_t *m, size_t len)
{
    uint8_t pt[256];
    size_t n = 0;
    FUZZ_CHECK(kl_ratchet_decrypt(r, m, len, pt, sizeof pt, &n) == 0);
}

fuzz_ratchet_fx_t *fuzz_ratchet_get(void)
{
    static fuzz_ratchet_fx_t F;
    static int built;
    if (built)
        return &F;
    fuzz_init();
    fuzz_rng_reset(0x524154434854ull);
    uint8_t sk[32], ad[64], spk_pub[32], spk_priv[32];
    kl_ratchet_t *a = NULL, *b = NULL;
    uint8_t *m[6], *reply;
    size_t ml[6], rl;
    kl_random(sk, sizeof sk);
    kl_random(ad, sizeof ad);
    kl_x_keypair(spk_pub, spk_priv);
    FUZZ_CHECK(kl_ratchet_init_initiator(&a, sk, spk_pub, ad) == 0);
    FUZZ_CHECK(kl_ratchet_init_responder(&b, sk, spk_priv, spk_pub, ad) == 0);
    for (int i = 0; i < 5; i++) {
        char t[32];
        snprintf(t, sizeof t, "message %d of the first chain", i);
        m[i] = ratchet_msg(a, t, &ml[i]);
    }
    ratchet_recv(b, m[0], ml[0]);
    ratchet_recv(b, m[3], ml[3]);
    reply = ratchet_msg(b, "a reply that turns the ratchet", &rl);
    ratchet_recv(a, reply, rl);
    m[5] = ratchet_msg(a, "first message of a new chain", &ml[5]);
    FUZZ_CHECK(kl_ratchet_serialize(a, &F.a, &F.a_len) == 0);
    FUZZ_CHECK(kl_ratchet_serialize(b, &F.b, &F.b_len) == 0);
    F.held[0] = m[1], F.held_len[0] = ml[1];
    F.held[1] = m[2], F.held_len[1] = ml[2];
    F.held[2] = m[5], F.held_len[2] = ml[5];
    free(m[0]);
    free(m[3]);
    free(m[4]);
    free(reply);
    kl_ratchet_free(a);
    kl_ratchet_free(b);
    built = 1;
    return &F;
}
