/* Fixture of the kl_stream fuzz target (fuzz_stream.c) and of its seed
 * generator (gen_corpus_stream.c): streams configured as the relay's, a
 * client's and a federation link's, with the fixed static keys of fuzz.h,
 * and the random-generator seeds that give their ephemeral keys the same
 * values in the target and in the generator. Header-only (static inline).
 *
 * Input: u8 mode | u8 chunk seed | the rest (fuzz_stream.c). */
#ifndef KOLLEGA_FUZZ_STREAM_H
#define KOLLEGA_FUZZ_STREAM_H

#include <string.h>

#include "fuzz.h"
#include "kollega/stream.h"

/* The RNG is reset to FS_CLIENT_SEED right before the client's stream
 * writes message 1, and to FS_RELAY_SEED right before the relay's stream
 * answers it (its ephemeral key is the first draw after that). */
#define FS_CLIENT_SEED 0x636c69656e74ull
#define FS_RELAY_SEED 0x72656c6179ull
/* ... and to FS_PAIR_SEED before an established federation pair is built. */
#define FS_PAIR_SEED 0x70616972ull

#define FS_RELAY 0   /* the relay's stream reads the client's bytes */
#define FS_CLIENT 1  /* a client's stream that has sent message 1 reads the relay's */
#define FS_PAIR 2    /* an established federation pair: records, fuzz_stream.c */

/* The relay's stream, as relay/net/conn.c configures it. */
static inline void fs_relay(kl_stream_t *s)
{
    kl_stream_config_t c = {.pattern = KL_NOISE_NK,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                            .s = FUZZ_RELAY_SK,
                            .hs_max = KL_STREAM_HS_MAX,
                            .frame_max = KL_FRAME_MAX,
                            .defer = 1};
    FUZZ_CHECK(kl_stream_init(s, &c, 0) == 0);
}

/* A client's stream (client/net.c), message 1 written. */
static inline void fs_client(kl_stream_t *s)
{
    static uint8_t relay_pk[32];
    fuzz_relay_pub(relay_pk);
    kl_stream_config_t c = {.pattern = KL_NOISE_NK,
                            .initiator = 1,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                            .rs = relay_pk,
                            .hs_max = KL_STREAM_HS_MAX,
                            .frame_max = KL_FRAME_MAX,
                            .payload_max = 64};
    FUZZ_CHECK(kl_stream_init(s, &c, 0) == 0);
    fuzz_rng_reset(FS_CLIENT_SEED);
    FUZZ_CHECK(kl_stream_start(s) == 0);
}

/* One end of a federation link in plaintext mode, with the KK keys of
 * fuzz_hs_make. */
static inline void fs_peer(kl_stream_t *s, int initiator)
{
    static uint8_t relay_pk[32], peer_pk[32];
    fuzz_relay_pub(relay_pk);
    fuzz_peer_pub(peer_pk);
    kl_stream_config_t c = {.pattern = KL_NOISE_KK,
                            .initiator = initiator,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = initiator ? FUZZ_PEER_SK : FUZZ_RELAY_SK,
                            .rs = initiator ? relay_pk : peer_pk,
                            .hs_max = KL_STREAM_HS_MAX,
                            .frame_max = KL_FRAME_MAX,
                            .plaintext = 1};
    FUZZ_CHECK(kl_stream_init(s, &c, 0) == 0);
}

/* Move a's handshake output into b, whole; kl_stream_feed's result. */
static inline int fs_pump(kl_stream_t *a, kl_stream_t *b, kl_stream_cb cb, void *ud)
{
    uint8_t m[KL_STREAM_OUT_MAX];
    size_t n = 0;
    FUZZ_CHECK(kl_stream_take(a, m, sizeof m, &n) == 0 && n > 0);
    return kl_stream_feed(b, m, n, 0, cb, ud);
}

/* An established federation pair (initiator i, responder r). */
static inline void fs_pair(kl_stream_t *i, kl_stream_t *r, kl_stream_cb cb, void *ud)
{
    fuzz_rng_reset(FS_PAIR_SEED);
    fs_peer(i, 1);
    fs_peer(r, 0);
    FUZZ_CHECK(kl_stream_start(i) == 0);
    FUZZ_CHECK(fs_pump(i, r, cb, ud) == 0 && kl_stream_ready(r));
    FUZZ_CHECK(fs_pump(r, i, cb, ud) == 0 && kl_stream_ready(i));
}

#endif
