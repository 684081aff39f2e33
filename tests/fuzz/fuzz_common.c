/* Fixtures shared by the fuzz targets and the corpus generator; see fuzz.h.
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
#include "session.h"

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

/* ---- relay fixture ---------------------------------------------------- */

static void user_keys(fuzz_user_t *u, const char *handle)
{
    snprintf(u->handle, sizeof u->handle, "%s", handle);
    FUZZ_CHECK(kl_sign_keypair(u->pk, u->sk) == 0);
}

fuzz_relay_t *fuzz_relay_get(void)
{
    static fuzz_relay_t R;
    static int built;
    char dir[256], path[300];
    if (built)
        return &R;
    fuzz_init();
    fuzz_rng_reset(0x52454c4159ull);
    fuzz_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/relay.db", dir);
    FUZZ_CHECK(kl_storage_open(&R.st, path, KL_STORAGE_CREATE | KL_STORAGE_SYNC_NORMAL) == 0);
    R.cfg.relay_name = FUZZ_RELAY_NAME;
    R.cfg.max_body = 60 * 1024;
    R.cfg.ttl_default_s = 30 * 24 * 3600;
    R.cfg.ttl_max_s = 30 * 24 * 3600;
    /* Small quotas, so that QUOTA_EXCEEDED is within a fuzz input's reach. */
    R.cfg.quota.max_entries = 8;
    R.cfg.quota.max_bytes = 8192;
    R.cfg.rate = 50;
    R.cfg.burst = 40;
    for (size_t i = 0; i < sizeof R.hh; i++)
        R.hh[i] = (uint8_t)(0xa5 ^ (i * 7));
    user_keys(&R.alice, "alice");
    user_keys(&R.bob, "bob");
    user_keys(&R.carol, "carol");

    kl_storage_t *st = R.st;
    uint64_t now = FUZZ_NOW_MS, later = FUZZ_NOW_MS + 3650ull * 24 * 3600 * 1000;
    FUZZ_CHECK(kl_storage_invite_create(st, FUZZ_INVITE, 1000000, later, now) == 0);
    FUZZ_CHECK(kl_storage_register(st, "alice", R.alice.pk, FUZZ_INVITE, now, &R.alice.u) == 0);
    FUZZ_CHECK(kl_storage_register(st, "bob", R.bob.pk, FUZZ_INVITE, now, &R.bob.u) == 0);

    uint8_t spk_pub[32], spk_priv[32], sig[64];
    kl_storage_opk_t opks[5];
    kl_x_keypair(spk_pub, spk_priv);
    FUZZ_CHECK(kl_x3dh_spk_sign(R.bob.sk, 1, spk_pub, sig) == 0);
    FUZZ_CHECK(kl_storage_prekey_set_signed(st, R.bob.u.id, 1, spk_pub, sig) == 0);
    for (uint32_t i = 0; i < 5; i++) {
        opks[i].id = 100 + i;
        kl_x_keypair(opks[i].public_key, spk_priv);
    }
    FUZZ_CHECK(kl_storage_prekey_add_onetime(st, R.bob.u.id, opks, 5) == 0);

    kl_storage_quota_t q = {1000, 1 << 20};
    for (int i = 0; i < 3; i++) {
        uint8_t body[100];
        uint64_t seq = 0;
        memset(body, 'a' + i, sizeof body);
        FUZZ_CHECK(kl_storage_log_append(st, R.alice.u.inbox, now, later, body,
                                         sizeof body - (size_t)i * 10, &q, &seq) == 0);
    }
    built = 1;
    return &R;
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

/* ---- client fixture ---------------------------------------------------- */

/* Encrypt pt with s's ratchet and wrap it as Envelope inside Sealed. With
 * keep, s's stored state advances (the fixture's own messages). */
static int sender_sealed(fuzz_sender_t *s, const uint8_t *pt, size_t len, int keep,
                         uint8_t **out, size_t *out_len)
{
    kl_ratchet_t *r = NULL;
    uint8_t *rmsg = NULL, *buf = NULL;
    size_t rlen = 0;
    int rc;
    *out = NULL;
    if ((rc = kl_ratchet_deserialize(&r, s->ratchet, s->ratchet_len)) != 0)
        return rc;
    rc = KL_ENOMEM;
    if ((rmsg = malloc(len + KL_RATCHET_OVERHEAD)) == NULL)
        goto out;
    if ((rc = kl_ratchet_encrypt(r, pt, len, rmsg, len + KL_RATCHET_OVERHEAD, &rlen)) != 0)
        goto out;
    Kollega__E2e__V1__Envelope env = KOLLEGA__E2E__V1__ENVELOPE__INIT;
    Kollega__E2e__V1__Sealed sealed = KOLLEGA__E2E__V1__SEALED__INIT;
    env.prekey = 1;
    env.ephemeral_key.data = s->ek;
    env.ephemeral_key.len = 32;
    env.spk_id = s->spk_id;
    env.has_opk = s->has_opk;
    env.opk_id = s->opk_id;
    env.ratchet.data = rmsg;
    env.ratchet.len = rlen;
    sealed.sender_address = (char *)s->address;
    sealed.sender_identity_key.data = s->pk;
    sealed.sender_identity_key.len = 32;
    sealed.envelope = &env;
    size_t n = kollega__e2e__v1__sealed__get_packed_size(&sealed);
    rc = KL_ENOMEM;
    if ((buf = malloc(n)) == NULL)
        goto out;
    kollega__e2e__v1__sealed__pack(&sealed, buf);
    if (keep) {
        uint8_t *ser = NULL;
        size_t slen = 0;
        if ((rc = kl_ratchet_serialize(r, &ser, &slen)) != 0)
            goto out;
        kl_free_wipe(s->ratchet, s->ratchet_len);
        s->ratchet = ser;
        s->ratchet_len = slen;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    free(rmsg);
    kl_ratchet_free(r);
    return rc;
}

int fuzz_e2e_seal(const fuzz_client_t *c, const uint8_t *pt, size_t len, uint8_t **body,
                  size_t *body_len)
{
    uint8_t *out = malloc(len + KL_SEAL_OVERHEAD);
    int rc;
    *body = NULL;
    if (out == NULL)
        return KL_ENOMEM;
    rc = kl_sealed_seal(c->alice.pk, pt, len, out, len + KL_SEAL_OVERHEAD, body_len);
    if (rc) {
        free(out);
        return rc;
    }
    *body = out;
    return 0;
}

int fuzz_e2e_sealed_pt(const fuzz_sender_t *s, const uint8_t *pt, size_t len, uint8_t **out,
                       size_t *out_len)
{
    return sender_sealed((fuzz_sender_t *)s, pt, len, 0, out, out_len);
}

int fuzz_e2e_body(const fuzz_client_t *c, const fuzz_sender_t *s, const uint8_t *pt,
                  size_t len, uint8_t **body, size_t *body_len)
{
    uint8_t *sp = NULL;
    size_t sl = 0;
    int rc = fuzz_e2e_sealed_pt(s, pt, len, &sp, &sl);
    *body = NULL;
    if (rc == 0)
        rc = fuzz_e2e_seal(c, sp, sl, body, body_len);
    free(sp);
    return rc;
}

static void sender_init(fuzz_client_t *c, fuzz_sender_t *s, const char *address,
                        uint32_t opk_id)
{
    kl_prekey_bundle_t b;
    uint8_t sk[32], ad[KL_X3DH_AD];
    kl_ratchet_t *r = NULL;
    s->address = address;
    FUZZ_CHECK(kl_sign_keypair(s->pk, s->sk) == 0);
    FUZZ_CHECK(kl_prekeys_local_bundle(c->st, &c->alice, opk_id, &b) == 0);
    FUZZ_CHECK(kl_x3dh_initiate(s->sk, s->pk, &b, sk, s->ek, ad) == 0);
    FUZZ_CHECK(kl_ratchet_init_initiator(&r, sk, b.spk, ad) == 0);
    FUZZ_CHECK(kl_ratchet_serialize(r, &s->ratchet, &s->ratchet_len) == 0);
    s->spk_id = b.spk_id;
    s->has_opk = b.has_opk;
    s->opk_id = b.has_opk ? b.opk_id : 0;
    kl_ratchet_free(r);
}

void fuzz_content(const char *text, const char *to, uint8_t **out, size_t *len)
{
    Kollega__E2e__V1__Content m = KOLLEGA__E2E__V1__CONTENT__INIT;
    uint8_t id[16];
    memset(id, 0x42, sizeof id);
    m.id.data = id;
    m.id.len = sizeof id;
    m.sent_at = FUZZ_NOW_MS;
    m.text = (char *)text;
    m.to = (char *)to;
    size_t n = kollega__e2e__v1__content__get_packed_size(&m);
    uint8_t *buf = malloc(n + KL_PAD_BLOCK);
    FUZZ_CHECK(buf != NULL);
    kollega__e2e__v1__content__pack(&m, buf);
    FUZZ_CHECK(kl_pad(buf, n, n + KL_PAD_BLOCK, len) == 0);
    *out = buf;
}

fuzz_client_t *fuzz_client_get(void)
{
    static fuzz_client_t C;
    static int built;
    char dir[256], path[300];
    kl_relay_info_t relay;
    if (built)
        return &C;
    fuzz_init();
    fuzz_rng_reset(0x434c49454e54ull);
    fuzz_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/kollega.db", dir);
    FUZZ_CHECK(kl_store_create(path, NULL, &C.st) == 0);
    FUZZ_CHECK(kl_identity_generate(&C.alice, FUZZ_ALICE) == 0);
    memset(&relay, 0, sizeof relay);
    snprintf(relay.name, sizeof relay.name, FUZZ_RELAY_NAME);
    snprintf(relay.host, sizeof relay.host, "127.0.0.1");
    relay.port = 7447;
    fuzz_relay_pub(relay.key);
    FUZZ_CHECK(kl_store_begin(C.st) == 0);
    FUZZ_CHECK(kl_identity_save(C.st, &C.alice, &relay) == 0);
    FUZZ_CHECK(kl_store_commit(C.st) == 0);
    FUZZ_CHECK(kl_prekeys_generate(C.st, &C.alice, 5, 1, &C.batch) == 0);
    sender_init(&C, &C.bob, FUZZ_BOB, C.batch.ids[0]);
    sender_init(&C, &C.carol, FUZZ_CAROL, 0);

    /* Alice receives carol's first message, so she holds a session with
     * carol and carol's later messages take the existing-session path. */
    uint8_t *pt = NULL, *sp = NULL, *body = NULL;
    size_t ptlen = 0, splen = 0, blen = 0;
    kl_inbound_t in;
    kl_decrypted_t d;
    fuzz_content("hei alice", FUZZ_ALICE, &pt, &ptlen);
    FUZZ_CHECK(sender_sealed(&C.carol, pt, ptlen, 1, &sp, &splen) == 0);
    FUZZ_CHECK(fuzz_e2e_seal(&C, sp, splen, &body, &blen) == 0);
    FUZZ_CHECK(kl_session_open(&C.alice, body, blen, &in) == 0);
    FUZZ_CHECK(kl_session_decrypt(C.st, &C.alice, &in, &d) == 0);
    FUZZ_CHECK(kl_store_begin(C.st) == 0);
    FUZZ_CHECK(kl_session_apply(C.st, in.sender, &d) == 0);
    FUZZ_CHECK(kl_store_commit(C.st) == 0);
    kl_decrypted_free(&d);
    kl_inbound_free(&in);
    free(pt);
    free(sp);
    free(body);
    built = 1;
    return &C;
}
