/* Writes the seed corpora of the fuzz targets: real handshake messages,
 * real frames and sessions built with the same fixed keys and fixtures as
 * the targets (fuzz.h), plus near-valid variants of each.
 *
 *   kl-fuzz-gen DIR      (DIR = tests/fuzz/corpus; writes DIR/<target>/seed-*)
 *
 * Files named seed-* are rewritten on every run; crash reproducers are
 * committed beside them as crash-* and left alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "fuzz_client.h"
#include "fuzz_relay.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/fedhint.h"
#include "kollega/frame.h"
#include "kollega/ratchet.h"
#include "kollega/sealed.h"
#include "kollega/wire.h"
#include "kollega/x3dh.h"
#include "session.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x

static const char *out_dir;
static size_t written;

/* A growable byte buffer for building inputs. */
typedef struct buf {
    uint8_t p[16384];
    size_t n;
} buf_t;

static void b_reset(buf_t *b)
{
    b->n = 0;
}

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

static void b_u16(buf_t *b, uint16_t v)
{
    b_u8(b, (uint8_t)(v >> 8));
    b_u8(b, (uint8_t)v);
}

static void put(const char *target, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fuzz_fail("mkdir", __FILE__, __LINE__);
    snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
    written++;
}

static void put_buf(const char *target, const char *name, const buf_t *b)
{
    put(target, name, b->p, b->n);
}

/* ---- framer ------------------------------------------------------------ */

static void gen_framer(void)
{
    static buf_t b;
    uint8_t body[4000];
    memset(body, 'f', sizeof body);
    struct {
        const char *name;
        uint16_t max;
        const char *stream;
        size_t len;
    } s[] = {
        {"one", 65535, "\x00\x05hello", 7},
        {"two", 65535, "\x00\x01x\x00\x03" "abc", 8},
        {"partial-header", 65535, "\x00\x01x\x00", 4},
        {"partial-body", 65535, "\x00\x09" "abc", 5},
        {"zero-length", 65535, "\x00\x01x\x00\x00yz", 7},
        {"too-big", 16, "\x00\x01x\x00\x20" "abc", 7},
        {"stop", 65535, "\x00\x02\xee\x01\x00\x01z", 7},
        {"max0", 0, "\x00\x01x", 3},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        b_reset(&b);
        b_u8(&b, (uint8_t)(i * 37));
        b_u16(&b, s[i].max);
        b_put(&b, s[i].stream, s[i].len);
        put_buf("framer", s[i].name, &b);
    }
    b_reset(&b);
    b_u8(&b, 8);
    b_u16(&b, 65535);
    b_u16(&b, sizeof body);
    b_put(&b, body, sizeof body);
    b_u16(&b, 1);
    b_u8(&b, 'e');
    put_buf("framer", "large", &b);
    b_reset(&b);
    b_u8(&b, 1);
    b_u16(&b, 4);
    for (int i = 0; i < 200; i++) {
        b_u16(&b, (uint16_t)(1 + i % 4));
        b_put(&b, "abcd", (size_t)(1 + i % 4));
    }
    put_buf("framer", "many-small", &b);
}

/* ---- noise ------------------------------------------------------------- */

static void gen_noise(void)
{
    static buf_t b;
    uint8_t m1[256], m2[256], pl[256];
    size_t l1 = 0, l2 = 0, pn = 0;
    kl_noise_pattern_t pats[2] = {KL_NOISE_NK, KL_NOISE_KK};
    const char *names[2] = {"nk", "kk"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        kl_noise_hs_t *i = fuzz_hs_make(pats[k], 1), *r = fuzz_hs_make(pats[k], 0);
        FUZZ_CHECK(kl_noise_hs_write(i, NULL, 0, m1, sizeof m1, &l1) == 0);
        FUZZ_CHECK(kl_noise_hs_read(r, m1, l1, pl, sizeof pl, &pn) == 0);
        FUZZ_CHECK(kl_noise_hs_write(r, NULL, 0, m2, sizeof m2, &l2) == 0);
        /* mode 0/2: the responder reads msg1; 1/3: the initiator reads msg2 */
        b_reset(&b);
        b_u8(&b, (uint8_t)(2 * k));
        b_put(&b, m1, l1);
        snprintf(name, sizeof name, "%s-msg1", names[k]);
        put_buf("noise", name, &b);
        b.n = 1 + l1 - 1; /* one byte short */
        snprintf(name, sizeof name, "%s-msg1-short", names[k]);
        put_buf("noise", name, &b);
        b_reset(&b);
        b_u8(&b, (uint8_t)(2 * k + 1));
        b_put(&b, m2, l2);
        snprintf(name, sizeof name, "%s-msg2", names[k]);
        put_buf("noise", name, &b);
        b_put(&b, "trailing", 8);
        snprintf(name, sizeof name, "%s-msg2-long", names[k]);
        put_buf("noise", name, &b);
        kl_noise_hs_free(i);
        kl_noise_hs_free(r);
    }
    /* NK msg1 with a payload (the relay refuses it, the reader must not) */
    kl_noise_hs_t *i = fuzz_hs_make(KL_NOISE_NK, 1);
    FUZZ_CHECK(kl_noise_hs_write(i, (const uint8_t *)"payload", 7, m1, sizeof m1, &l1) == 0);
    b_reset(&b);
    b_u8(&b, 0);
    b_put(&b, m1, l1);
    put_buf("noise", "nk-msg1-payload", &b);
    kl_noise_hs_free(i);

    /* mode 4: transport records */
    b_reset(&b);
    b_u8(&b, 4);
    b_u8(&b, 1), b_u16(&b, 5), b_put(&b, "hello", 5);
    b_u8(&b, 1), b_u16(&b, 0);
    b_u8(&b, 0), b_u16(&b, 20), b_put(&b, "raw bytes, not valid", 20);
    b_u8(&b, 3 | (9 << 2)), b_u16(&b, 4), b_put(&b, "flip", 4);
    b_u8(&b, 1), b_u16(&b, 5), b_put(&b, "again", 5);
    put_buf("noise", "transport", &b);

    /* mode 5: round trips */
    uint8_t flips[3] = {0, 1 | (40 << 1), 0x80};
    const char *rn[3] = {"roundtrip", "roundtrip-flip1", "roundtrip-flip2"};
    for (int k = 0; k < 3; k++) {
        b_reset(&b);
        b_u8(&b, 5);
        b_u8(&b, flips[k]);
        b_u8(&b, 5);
        b_put(&b, "hello", 5);
        b_put(&b, "world, longer payload", 21);
        put_buf("noise", rn[k], &b);
    }
}

/* ---- frames ------------------------------------------------------------ */

/* Pack f into b (appending). */
static void b_frame(buf_t *b, const kl_frame_t *f)
{
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    FUZZ_CHECK(b->n + n <= sizeof b->p);
    FUZZ_CHECK(kollega__relay__v1__frame__pack(f, b->p + b->n) == n);
    b->n += n;
}

/* A frame (its body's address in any member of the union). */
static kl_frame_t frame(uint32_t id, int body_case, void *body)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.id = id;
    f.body_case = (Kollega__Relay__V1__Frame__BodyCase)body_case;
    f.ping = body;
    return f;
}

/* Sample frames of every kind. Bodies live in static storage. */
#define N_SAMPLES 20
static kl_frame_t samples[N_SAMPLES];
static const char *sample_names[N_SAMPLES];
static size_t n_samples;

static void sample(const char *name, kl_frame_t f)
{
    FUZZ_CHECK(n_samples < N_SAMPLES);
    sample_names[n_samples] = name;
    samples[n_samples++] = f;
}

static void make_samples(const fuzz_relay_t *R)
{
    static Kollega__Relay__V1__Ping ping = KOLLEGA__RELAY__V1__PING__INIT;
    static Kollega__Relay__V1__Register reg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    static Kollega__Relay__V1__Auth auth = KOLLEGA__RELAY__V1__AUTH__INIT;
    static Kollega__Relay__V1__Lookup lookup = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    static Kollega__Relay__V1__PrekeyFetch pfetch = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    static Kollega__Relay__V1__PrekeyStatus pstatus = KOLLEGA__RELAY__V1__PREKEY_STATUS__INIT;
    static Kollega__Relay__V1__Send send = KOLLEGA__RELAY__V1__SEND__INIT;
    static Kollega__Relay__V1__Fetch fetch = KOLLEGA__RELAY__V1__FETCH__INIT;
    static Kollega__Relay__V1__Ack ack = KOLLEGA__RELAY__V1__ACK__INIT;
    static Kollega__Relay__V1__PrekeyUpload upload = KOLLEGA__RELAY__V1__PREKEY_UPLOAD__INIT;
    static Kollega__Relay__V1__SignedPrekey spk = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    static Kollega__Relay__V1__OneTimePrekey opk[3];
    static Kollega__Relay__V1__OneTimePrekey *opkp[3];
    static Kollega__Relay__V1__Ok ok = KOLLEGA__RELAY__V1__OK__INIT;
    static Kollega__Relay__V1__Error err = KOLLEGA__RELAY__V1__ERROR__INIT;
    static Kollega__Relay__V1__Sent sent = KOLLEGA__RELAY__V1__SENT__INIT;
    static Kollega__Relay__V1__Deliver deliver = KOLLEGA__RELAY__V1__DELIVER__INIT;
    static Kollega__Relay__V1__Entry entry[2];
    static Kollega__Relay__V1__Entry *entryp[2];
    static Kollega__Relay__V1__PrekeyBundle bundle = KOLLEGA__RELAY__V1__PREKEY_BUNDLE__INIT;
    static Kollega__Relay__V1__LookupResult lres = KOLLEGA__RELAY__V1__LOOKUP_RESULT__INIT;
    static uint8_t reg_sig[64], auth_sig[64], spk_pub[32], spk_priv[32], spk_sig[64];
    static uint8_t body[300];
    uint8_t msg[256];
    size_t mlen = 0;

    ping.nonce = 0x1122334455667788ull;
    sample("ping", frame(1, BODY(PING), &ping));

    FUZZ_CHECK(kl_wire_register_msg(R->hh, "carol", FUZZ_INVITE, msg, sizeof msg, &mlen) == 0);
    FUZZ_CHECK(kl_sign(R->carol.sk, msg, mlen, reg_sig) == 0);
    reg.handle = "carol";
    reg.invite_code = FUZZ_INVITE;
    reg.identity_key.data = (uint8_t *)R->carol.pk;
    reg.identity_key.len = 32;
    reg.signature.data = reg_sig;
    reg.signature.len = 64;
    sample("register", frame(2, BODY(REGISTER), &reg));

    FUZZ_CHECK(kl_wire_auth_msg(R->hh, msg, sizeof msg, &mlen) == 0);
    FUZZ_CHECK(kl_sign(R->alice.sk, msg, mlen, auth_sig) == 0);
    auth.address = "alice@" FUZZ_RELAY_NAME;
    auth.signature.data = auth_sig;
    auth.signature.len = 64;
    sample("auth", frame(3, BODY(AUTH), &auth));

    lookup.address = "bob@" FUZZ_RELAY_NAME;
    sample("lookup", frame(4, BODY(LOOKUP), &lookup));
    pfetch.address = "bob@" FUZZ_RELAY_NAME;
    sample("prekey-fetch", frame(5, BODY(PREKEY_FETCH), &pfetch));
    sample("prekey-status", frame(6, BODY(PREKEY_STATUS), &pstatus));

    memset(body, 'b', sizeof body);
    send.to = "bob@" FUZZ_RELAY_NAME;
    send.body.data = body;
    send.body.len = sizeof body;
    send.ttl_s = 60;
    sample("send", frame(7, BODY(SEND), &send));
    fetch.after = 1;
    fetch.limit = 2;
    sample("fetch", frame(8, BODY(FETCH), &fetch));
    ack.seq = 2;
    sample("ack", frame(9, BODY(ACK), &ack));

    kl_x_keypair(spk_pub, spk_priv);
    FUZZ_CHECK(kl_x3dh_spk_sign(R->alice.sk, 7, spk_pub, spk_sig) == 0);
    spk.id = 7;
    spk.public_key.data = spk_pub;
    spk.public_key.len = 32;
    spk.signature.data = spk_sig;
    spk.signature.len = 64;
    for (int i = 0; i < 3; i++) {
        Kollega__Relay__V1__OneTimePrekey o = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
        opk[i] = o;
        opk[i].id = 200 + (uint32_t)i;
        opk[i].public_key.data = spk_pub;
        opk[i].public_key.len = 32;
        opkp[i] = &opk[i];
    }
    upload.signed_prekey = &spk;
    upload.one_time_prekeys = opkp;
    upload.n_one_time_prekeys = 3;
    sample("prekey-upload", frame(10, BODY(PREKEY_UPLOAD), &upload));

    /* Frames only the relay sends. */
    sample("ok", frame(11, BODY(OK), &ok));
    err.code = KOLLEGA__RELAY__V1__ERROR_CODE__RATE_LIMITED;
    err.message = "slow down";
    sample("error", frame(12, BODY(ERROR), &err));
    sent.seq = 99;
    sample("sent", frame(13, BODY(SENT), &sent));
    for (int i = 0; i < 2; i++) {
        Kollega__Relay__V1__Entry e = KOLLEGA__RELAY__V1__ENTRY__INIT;
        entry[i] = e;
        entry[i].seq = 5 + (uint64_t)i;
        entry[i].ts = FUZZ_NOW_MS;
        entry[i].body.data = body;
        entry[i].body.len = 40;
        entryp[i] = &entry[i];
    }
    deliver.entries = entryp;
    deliver.n_entries = 2;
    deliver.more = 1;
    sample("deliver", frame(0, BODY(DELIVER), &deliver));
    bundle.address = "bob@" FUZZ_RELAY_NAME;
    bundle.identity_key.data = (uint8_t *)R->bob.pk;
    bundle.identity_key.len = 32;
    bundle.signed_prekey = &spk;
    bundle.one_time_prekey = &opk[0];
    sample("prekey-bundle", frame(14, BODY(PREKEY_BUNDLE), &bundle));
    lres.address = "bob@" FUZZ_RELAY_NAME;
    lres.exists = 1;
    lres.identity_key.data = (uint8_t *)R->bob.pk;
    lres.identity_key.len = 32;
    sample("lookup-result", frame(15, BODY(LOOKUP_RESULT), &lres));
}

static void gen_wire(void)
{
    static buf_t b;
    uint8_t wire[1024];
    size_t wlen = 0;
    kl_noise_transport_t c, r;
    for (size_t i = 0; i < n_samples; i++) {
        b_reset(&b);
        b_u8(&b, 0);
        b_frame(&b, &samples[i]);
        put_buf("wire", sample_names[i], &b);
    }
    /* a Frame with an id and no body; and a truncated register */
    b_reset(&b);
    b_u8(&b, 0);
    b_put(&b, "\x08\x05", 2);
    put_buf("wire", "no-body", &b);
    b_reset(&b);
    b_u8(&b, 0);
    b_frame(&b, &samples[1]);
    b.n -= 10;
    put_buf("wire", "register-truncated", &b);
    /* mode 1: a genuine ciphertext, and the same with one bit flipped */
    fuzz_transport_pair(&c, &r);
    FUZZ_CHECK(kl_wire_seal(&c, &samples[0], wire, sizeof wire, &wlen) == 0);
    b_reset(&b);
    b_u8(&b, 1);
    b_put(&b, wire + 2, wlen - 2);
    put_buf("wire", "ciphertext", &b);
    b.p[5] ^= 1;
    put_buf("wire", "ciphertext-flipped", &b);
}

/* One dispatch record: dt, length, packed frame. */
static void b_record(buf_t *b, uint8_t dt, const kl_frame_t *f)
{
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    b_u8(b, dt);
    b_u16(b, (uint16_t)n);
    b_frame(b, f);
}

static void gen_dispatch(void)
{
    static buf_t b;
    enum { PING, REG, AUTH, LOOKUP, PFETCH, PSTATUS, SEND, FETCH, ACK, UPLOAD, OK };
    struct {
        const char *name;
        uint8_t state;
        int seq[12];
    } s[] = {
        {"register-then-use", 0, {REG, PING, LOOKUP, PFETCH, SEND, FETCH, ACK, PSTATUS, -1}},
        {"auth-then-use", 0, {AUTH, FETCH, ACK, UPLOAD, PSTATUS, PFETCH, -1}},
        {"unauthenticated", 0, {PING, FETCH, -1}},
        {"relay-only-frame", 1, {OK, PING, -1}},
        {"alice", 1, {SEND, SEND, FETCH, ACK, FETCH, UPLOAD, PSTATUS, LOOKUP, -1}},
        {"bob", 2, {FETCH, PSTATUS, PFETCH, PFETCH, PFETCH, -1}},
        {"register-when-authed", 1, {REG, -1}},
        {"quota", 1, {SEND, SEND, SEND, SEND, SEND, SEND, SEND, SEND, SEND, SEND, -1}},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        b_reset(&b);
        b_u8(&b, s[i].state);
        for (int k = 0; k < 12 && s[i].seq[k] >= 0; k++)
            b_record(&b, 1, &samples[s[i].seq[k]]);
        put_buf("dispatch", s[i].name, &b);
    }
    /* over the rate: 45 pings at one instant */
    b_reset(&b);
    b_u8(&b, 1);
    for (int k = 0; k < 45; k++)
        b_record(&b, 0, &samples[PING]);
    put_buf("dispatch", "rate", &b);
    /* a register for a taken handle, and an auth with a broken signature */
    static Kollega__Relay__V1__Register reg;
    static Kollega__Relay__V1__Auth auth;
    static uint8_t sig[64];
    kl_frame_t f;
    reg = *samples[REG].register_;
    reg.handle = "alice";
    f = frame(2, BODY(REGISTER), &reg);
    b_reset(&b);
    b_u8(&b, 0);
    b_record(&b, 1, &f);
    put_buf("dispatch", "register-bad-signature", &b);
    auth = *samples[AUTH].auth;
    memcpy(sig, auth.signature.data, 64);
    sig[10] ^= 1;
    auth.signature.data = sig;
    f = frame(3, BODY(AUTH), &auth);
    b_reset(&b);
    b_u8(&b, 0);
    b_record(&b, 1, &f);
    put_buf("dispatch", "auth-bad-signature", &b);
    /* Unidentified delivery: alice sets her token hash; an unauthenticated
     * session sends and looks up with a token (wrong here: the fuzzer finds
     * its way from these to the other answers). */
    static Kollega__Relay__V1__DeliveryToken dt;
    static Kollega__Relay__V1__Send usend;
    static Kollega__Relay__V1__Lookup ulook;
    static uint8_t token[32], hash[32];
    kollega__relay__v1__delivery_token__init(&dt);
    kl_random(token, sizeof token);
    kl_sha256(token, sizeof token, hash);
    dt.token_hash.data = hash;
    dt.token_hash.len = sizeof hash;
    f = frame(4, BODY(DELIVERY_TOKEN), &dt);
    b_reset(&b);
    b_u8(&b, 1);
    b_record(&b, 1, &f);
    put_buf("dispatch", "delivery-token", &b);
    usend = *samples[SEND].send;
    usend.delivery_token.data = token;
    usend.delivery_token.len = sizeof token;
    ulook = *samples[LOOKUP].lookup;
    ulook.delivery_token.data = token;
    ulook.delivery_token.len = sizeof token;
    b_reset(&b);
    b_u8(&b, 0);
    f = frame(5, BODY(LOOKUP), &ulook);
    b_record(&b, 1, &f);
    f = frame(6, BODY(SEND), &usend);
    b_record(&b, 1, &f);
    put_buf("dispatch", "unidentified", &b);
}

/* ---- ratchet ----------------------------------------------------------- */

static void gen_ratchet(void)
{
    static buf_t b;
    fuzz_ratchet_fx_t *F = fuzz_ratchet_get();
    b_reset(&b);
    b_u8(&b, 0);
    b_put(&b, F->a, F->a_len);
    put_buf("ratchet", "state-a", &b);
    b_reset(&b);
    b_u8(&b, 0);
    b_put(&b, F->b, F->b_len);
    put_buf("ratchet", "state-b", &b);
    b.n -= 30;
    put_buf("ratchet", "state-b-truncated", &b);
    for (int i = 0; i < 3; i++) {
        char name[32];
        b_reset(&b);
        b_u8(&b, 1);
        b_put(&b, F->held[i], F->held_len[i]);
        snprintf(name, sizeof name, "held-%d", i);
        put_buf("ratchet", name, &b);
        b.p[1 + 45] ^= 0x10;
        snprintf(name, sizeof name, "held-%d-flipped", i);
        put_buf("ratchet", name, &b);
    }
    /* a header claiming a far message number */
    b_reset(&b);
    b_u8(&b, 1);
    b_put(&b, F->held[2], F->held_len[2]);
    b.p[1 + 36] = 0x7f;
    put_buf("ratchet", "far-number", &b);
    /* conversations: op, arg pairs (0 A sends, 1 B sends, 2 to B, 3 to A,
     * 4 round trip; +8 flips) */
    const uint8_t conv1[] = {2, 0, 2, 1, 2, 2, 0, 10, 0, 20, 2, 4, 2, 3, 1, 7, 3, 0, 0, 5, 2, 5};
    const uint8_t conv2[] = {0, 1, 0, 2, 0, 3, 2, 5, 10, 4, 2, 4, 2, 4, 1, 9, 1, 8, 3, 1,
                             3, 0, 11, 0, 4, 0, 12, 0, 2, 3, 2, 0};
    b_reset(&b);
    b_u8(&b, 2);
    b_put(&b, conv1, sizeof conv1);
    put_buf("ratchet", "conversation-1", &b);
    b_reset(&b);
    b_u8(&b, 2);
    b_put(&b, conv2, sizeof conv2);
    put_buf("ratchet", "conversation-2", &b);
}

/* ---- sealed ------------------------------------------------------------ */

static void gen_sealed(void)
{
    static buf_t b;
    uint8_t pk[32], sk[64], pad[1024];
    size_t n = 0, plen = 0;
    fuzz_rng_reset(FUZZ_SEALED_SEED);
    FUZZ_CHECK(kl_sign_keypair(pk, sk) == 0);
    const char *msg = "a sealed-sender plaintext";
    b_reset(&b);
    b_u8(&b, 0);
    FUZZ_CHECK(kl_sealed_seal(pk, (const uint8_t *)msg, strlen(msg), b.p + 1, sizeof b.p - 1,
                              &n) == 0);
    b.n = 1 + n;
    put_buf("sealed", "box", &b);
    b.p[20] ^= 2;
    put_buf("sealed", "box-flipped", &b);
    b.n = 1 + KL_SEAL_OVERHEAD;
    put_buf("sealed", "box-overhead-only", &b);
    b_reset(&b);
    b_u8(&b, 1);
    b_put(&b, msg, strlen(msg));
    put_buf("sealed", "plaintext", &b);
    size_t lens[] = {0, 5, 255, 256, 700};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[32];
        memset(pad, 'p', sizeof pad);
        FUZZ_CHECK(kl_pad(pad, lens[i], sizeof pad, &plen) == 0 && plen <= sizeof pad);
        b_reset(&b);
        b_u8(&b, 2);
        b_put(&b, pad, plen);
        snprintf(name, sizeof name, "padded-%zu", lens[i]);
        put_buf("sealed", name, &b);
    }
    memset(pad, 0, 256);
    b_reset(&b);
    b_u8(&b, 2);
    b_put(&b, pad, 256);
    put_buf("sealed", "padded-zeros", &b);
}

/* ---- addr -------------------------------------------------------------- */

static void gen_addr(void)
{
    static buf_t b;
    char tok[KL_INVITE_MAX + 1];
    kl_invite_t inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.relay, sizeof inv.relay, "oslo.example.org");
    snprintf(inv.host, sizeof inv.host, "relay.example.org");
    inv.port = 7447;
    fuzz_relay_pub(inv.key);
    snprintf(inv.code, sizeof inv.code, "%s", FUZZ_INVITE);
    FUZZ_CHECK(kl_invite_format(&inv, tok, sizeof tok) == 0);
    char v6[KL_INVITE_MAX + 1];
    snprintf(inv.host, sizeof inv.host, "fe80::1");
    FUZZ_CHECK(kl_invite_format(&inv, v6, sizeof v6) == 0);
    const char *s[] = {
        "alice@oslo.test", "#erfa-oslo@oslo.example.org", "a@b", "Alice@oslo.test",
        "alice@@oslo.test", "alice@oslo..test", "alice@-oslo.test",
        "x23456789012345678901234567890123@oslo.test", "127.0.0.1:7447", "[::1]:7447",
        "relay.example.org:443", "999.1.1.1:80", "host:0", "host:07447", "[::1]7447",
        "[1.2.3.4]:80", tok, v6, "  kollega:invite?relay=a&addr=b:1&key=x&code=y  ",
        "kollega:invite?relay=oslo&relay=oslo",
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        char name[32];
        b_reset(&b);
        b_u8(&b, i % 3 == 0 ? 4 : 254);
        b_put(&b, s[i], strlen(s[i]));
        snprintf(name, sizeof name, "%02zu", i);
        put_buf("addr", name, &b);
    }
}

/* ---- e2e --------------------------------------------------------------- */

static size_t content_raw(uint8_t *out, size_t cap, const char *text, const char *to,
                          size_t id_len, size_t token_len)
{
    Kollega__E2e__V1__Content m = KOLLEGA__E2E__V1__CONTENT__INIT;
    uint8_t id[16], token[40];
    memset(id, 7, sizeof id);
    memset(token, 9, sizeof token);
    m.delivery_token.data = token;
    m.delivery_token.len = token_len;
    m.id.data = id;
    m.id.len = id_len;
    m.sent_at = FUZZ_NOW_MS;
    m.text = (char *)text;
    m.to = (char *)to;
    size_t n = kollega__e2e__v1__content__get_packed_size(&m);
    FUZZ_CHECK(n <= cap);
    kollega__e2e__v1__content__pack(&m, out);
    return n;
}

static void gen_e2e(void)
{
    static buf_t b;
    fuzz_client_t *C = fuzz_client_get();
    uint8_t *pt = NULL, *body = NULL, *sp = NULL;
    size_t ptlen = 0, blen = 0, splen = 0;
    const fuzz_sender_t *senders[2] = {&C->bob, &C->carol};
    const char *sn[2] = {"bob", "carol"};
    fuzz_content("hei, har du tid i dag?", FUZZ_ALICE, &pt, &ptlen);
    for (int k = 0; k < 2; k++) {
        char name[48];
        FUZZ_CHECK(fuzz_e2e_body(C, senders[k], pt, ptlen, &body, &blen) == 0);
        b_reset(&b);
        b_u8(&b, 0);
        b_put(&b, body, blen);
        snprintf(name, sizeof name, "body-%s", sn[k]);
        put_buf("e2e", name, &b);
        free(body);
        FUZZ_CHECK(fuzz_e2e_sealed_pt(senders[k], pt, ptlen, &sp, &splen) == 0);
        b_reset(&b);
        b_u8(&b, 1);
        b_put(&b, sp, splen);
        snprintf(name, sizeof name, "sealed-%s", sn[k]);
        put_buf("e2e", name, &b);
        free(sp);
        b_reset(&b);
        b_u8(&b, (uint8_t)(3 | (k ? 0x80 : 0)));
        b_put(&b, pt, ptlen);
        snprintf(name, sizeof name, "padded-content-%s", sn[k]);
        put_buf("e2e", name, &b);
    }
    free(pt);
    struct {
        const char *name, *text, *to;
        size_t id_len;
        uint8_t mode;
        size_t token_len;
    } c[] = {
        {"content", "hello", FUZZ_ALICE, 16, 2, 0},
        {"content-carol", "hello again", FUZZ_ALICE, 16, 2 | 0x80, 0},
        {"content-bad-utf8", "caf\xc3\x28 \xff\xfe", FUZZ_ALICE, 16, 2, 0},
        {"content-no-to", "hello", "", 16, 2, 0},
        {"content-short-id", "hello", FUZZ_ALICE, 15, 2, 0},
        {"content-other-recipient", "hello", FUZZ_BOB, 16, 2 | 0x80, 0},
        {"content-delivery-token", "hello", FUZZ_ALICE, 16, 2 | 0x80, 32},
        {"content-token-short", "hello", FUZZ_ALICE, 16, 2 | 0x80, 31},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        b_reset(&b);
        b_u8(&b, c[i].mode);
        b.n += content_raw(b.p + 1, sizeof b.p - 1, c[i].text, c[i].to, c[i].id_len,
                           c[i].token_len);
        put_buf("e2e", c[i].name, &b);
    }
    /* Sealed plaintexts with a bad sender or no envelope */
    struct {
        const char *name, *addr;
        size_t key_len;
        int envelope;
    } s[] = {
        {"sealed-group-sender", "#erfa@oslo.test", 32, 1},
        {"sealed-bad-address", "Bob@oslo.test", 32, 1},
        {"sealed-short-key", FUZZ_BOB, 31, 1},
        {"sealed-no-envelope", FUZZ_BOB, 32, 0},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        Kollega__E2e__V1__Envelope env = KOLLEGA__E2E__V1__ENVELOPE__INIT;
        Kollega__E2e__V1__Sealed m = KOLLEGA__E2E__V1__SEALED__INIT;
        uint8_t key[32], ratchet[80];
        memset(key, 9, sizeof key);
        memset(ratchet, 1, sizeof ratchet);
        env.prekey = 1;
        env.ephemeral_key.data = C->bob.ek;
        env.ephemeral_key.len = 32;
        env.spk_id = C->bob.spk_id;
        env.ratchet.data = ratchet;
        env.ratchet.len = sizeof ratchet;
        m.sender_address = (char *)s[i].addr;
        m.sender_identity_key.data = key;
        m.sender_identity_key.len = s[i].key_len;
        m.envelope = s[i].envelope ? &env : NULL;
        b_reset(&b);
        b_u8(&b, 1);
        size_t n = kollega__e2e__v1__sealed__get_packed_size(&m);
        kollega__e2e__v1__sealed__pack(&m, b.p + 1);
        b.n += n;
        put_buf("e2e", s[i].name, &b);
    }
}

/* ---- fedhint: the same fixed keys as fuzz_fedhint.c ------------------- */

static void gen_fedhint(void)
{
    static buf_t b;
    uint8_t sk[32], peer_sk[32], peer_pk[32], key[KL_FEDHINT_KEY], msg1[48], hint[KL_FEDHINT_LEN];
    memset(sk, 0x11, sizeof sk);
    memset(peer_sk, 0x22, sizeof peer_sk); /* peer 1 */
    FUZZ_CHECK(kl_x_public(peer_sk, peer_pk) == 0);
    FUZZ_CHECK(kl_fedhint_key(sk, peer_pk, key) == 0);
    kl_random(msg1, sizeof msg1);
    FUZZ_CHECK(kl_fedhint_make(key, msg1, sizeof msg1, hint) == 0);
    b_reset(&b);
    b_put(&b, hint, sizeof hint);
    b_put(&b, msg1, sizeof msg1);
    put_buf("fedhint", "peer1", &b);
    b.p[3] ^= 1;
    put_buf("fedhint", "wrong-hint", &b);
    b_reset(&b);
    b_put(&b, hint, sizeof hint);
    b_put(&b, msg1, 20);
    put_buf("fedhint", "short", &b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kl-fuzz-gen: cannot create %s\n", out_dir);
        return 1;
    }
    fuzz_init();
    fuzz_relay_t *R = fuzz_relay_get();
    make_samples(R);
    gen_framer();
    gen_noise();
    gen_wire();
    gen_dispatch();
    gen_ratchet();
    gen_sealed();
    gen_addr();
    gen_e2e();
    gen_fedhint();
    printf("kl-fuzz-gen: %zu seeds written to %s\n", written, out_dir);
    return 0;
}
