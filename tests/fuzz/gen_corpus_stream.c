/* Writes the seed corpus of fuzz_stream.c (fuzz_stream.h): a real client
 * message 1 alone, twice, followed by frames and by a tampered frame for
 * the relay's stream; a real message 2 with a frame, tampered, and a frame
 * in its place for a client's stream; bad lengths; records of genuine,
 * raw and bit-flipped messages for a federation pair.
 *
 *   kl-fuzz-gen-stream DIR    (DIR = tests/fuzz/corpus; writes DIR/stream/seed-*) */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fuzz_stream.h"
#include "relay.pb-c.h"

static const char *out_dir;
static uint8_t in[8192];
static size_t n_in;

static void begin(uint8_t mode, uint8_t chunk_seed)
{
    in[0] = mode;
    in[1] = chunk_seed;
    n_in = 2;
}

static void add(const void *p, size_t n)
{
    FUZZ_CHECK(n_in + n <= sizeof in);
    memcpy(in + n_in, p, n);
    n_in += n;
}

/* An FS_PAIR record. */
static void rec(uint8_t flags, const void *p, size_t n)
{
    uint8_t h[3] = {flags, (uint8_t)(n >> 8), (uint8_t)n};
    add(h, sizeof h);
    add(p, n);
}

static void put(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/stream/seed-%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL && fwrite(in, 1, n_in, f) == n_in && fclose(f) == 0);
}

static int ignore(void *ud, kl_stream_event_t *ev)
{
    (void)ud;
    if (ev->type == KL_STREAM_EV_FRAME && ev->frame != NULL)
        kl_wire_free(ev->frame);
    return 0;
}

/* A ping frame sealed by s into out (cap bytes); its length. */
static size_t ping(kl_stream_t *s, uint64_t nonce, uint8_t *out, size_t cap)
{
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    size_t len = 0;
    p.nonce = nonce;
    f.id = (uint32_t)nonce;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
    f.ping = &p;
    size_t n = kollega__relay__v1__frame__get_packed_size(&f);
    FUZZ_CHECK(kl_stream_seal_frame(s, &f, n, out, cap, &len, 0) == 0);
    return len;
}

int main(int argc, char **argv)
{
    char sub[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: kl-fuzz-gen-stream CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    snprintf(sub, sizeof sub, "%s/stream", out_dir);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST)
        return 1;
    fuzz_init();

    /* A client and the relay through a whole handshake, as the target
     * replays each side. */
    kl_stream_t c, r;
    uint8_t m1[KL_STREAM_OUT_MAX], m2[KL_STREAM_OUT_MAX], f1[64], f2[64], g1[64];
    size_t l1 = 0, l2 = 0;
    fs_client(&c);
    FUZZ_CHECK(kl_stream_take(&c, m1, sizeof m1, &l1) == 0);
    fs_relay(&r);
    FUZZ_CHECK(kl_stream_feed(&r, m1, l1, 0, ignore, NULL) == 0 && kl_stream_held(&r));
    fuzz_rng_reset(FS_RELAY_SEED);
    FUZZ_CHECK(kl_stream_handshake(&r) == 0);
    FUZZ_CHECK(kl_stream_take(&r, m2, sizeof m2, &l2) == 0);
    FUZZ_CHECK(kl_stream_feed(&c, m2, l2, 0, ignore, NULL) == 0 && kl_stream_ready(&c));
    size_t lf1 = ping(&c, 1, f1, sizeof f1), lf2 = ping(&c, 2, f2, sizeof f2);
    size_t lg1 = ping(&r, 3, g1, sizeof g1);

    begin(FS_RELAY, 0);
    add(m1, l1);
    put("relay-msg1");
    begin(FS_RELAY, 13); /* chunks that end message 1 before a frame is whole */
    add(m1, l1);
    add(f1, lf1);
    add(f2, lf2);
    put("relay-frames");
    begin(FS_RELAY, 5);
    add(m1, l1);
    add(m1, l1);
    put("relay-msg1-twice");
    begin(FS_RELAY, 7);
    add(m1, l1);
    add(f1, lf1);
    in[n_in - 3] ^= 0x10;
    put("relay-tampered");
    begin(FS_RELAY, 1);
    add("\x00\x81", 2);
    put("relay-hs-too-long");
    begin(FS_RELAY, 1);
    add(m1, l1);
    add("\x00\x00", 2);
    put("relay-empty-frame");

    begin(FS_CLIENT, 0);
    add(m2, l2);
    add(g1, lg1);
    put("client-msg2-frame");
    begin(FS_CLIENT, 4);
    add(m2, l2);
    in[n_in - 1] ^= 0x01;
    put("client-msg2-bad");
    begin(FS_CLIENT, 6);
    add(g1, lg1);
    put("client-frame-first");

    static uint8_t big[3000];
    memset(big, 'b', sizeof big);
    begin(FS_PAIR, 2);
    rec(1, big, sizeof big);
    rec(1, "", 0);
    rec(1, "x", 1);
    put("pair-clean");
    begin(FS_PAIR, 0);
    rec(1, "hello", 5);
    rec(0, "raw bytes", 9);
    rec(1, "lost", 4);
    put("pair-raw");
    begin(FS_PAIR, 9);
    rec(1, "one", 3);
    rec(1 | 2 | (5 << 2), "flipped", 7);
    rec(1, "after", 5);
    put("pair-flip");

    kl_stream_free(&c);
    kl_stream_free(&r);
    return 0;
}
