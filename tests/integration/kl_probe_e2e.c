/* kl-probe modes that play a hostile USER at the end-to-end layer: sealed
 * sender envelopes whose claimed sender is a lie (see kl_probe.c for the
 * usage). The probe builds every layer itself from libkollega's primitives
 * (X3DH, Double Ratchet, sealed box, padding) and the e2e protobuf, exactly
 * as an independent hostile client would; it uses none of the kollega
 * client's code. Every result is one JSON line on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.pb-c.h"
#include "kl_probe.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/ratchet.h"
#include "kollega/sealed.h"
#include "kollega/x3dh.h"
#include "relay.pb-c.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x

/* prekey_fetch of address: 0 with *b, or -1. */
static int fetch_bundle(pconn_t *c, const char *address, kl_prekey_bundle_t *b)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    kl_frame_t *rep = NULL;
    int r = -1;
    memset(b, 0, sizeof *b);
    pf.address = (char *)address;
    f.body_case = BODY(PREKEY_FETCH);
    f.prekey_fetch = &pf;
    if (probe_call(c, &f, &rep) != 0)
        return -1;
    const Kollega__Relay__V1__PrekeyBundle *pb = rep->prekey_bundle;
    if (rep->body_case != BODY(PREKEY_BUNDLE) || pb == NULL || pb->identity_key.len != 32 ||
        pb->signed_prekey == NULL || pb->signed_prekey->public_key.len != 32 ||
        pb->signed_prekey->signature.len != 64)
        goto out;
    memcpy(b->identity_key, pb->identity_key.data, 32);
    b->spk_id = pb->signed_prekey->id;
    memcpy(b->spk, pb->signed_prekey->public_key.data, 32);
    memcpy(b->spk_sig, pb->signed_prekey->signature.data, 64);
    if (pb->one_time_prekey && pb->one_time_prekey->public_key.len == 32) {
        b->has_opk = 1;
        b->opk_id = pb->one_time_prekey->id;
        memcpy(b->opk, pb->one_time_prekey->public_key.data, 32);
    }
    r = 0;
out:
    kl_wire_free(rep);
    return r;
}

/* Padded e2e Content{id, sent_at, text, to} into pt (cap bytes). */
static int pack_content(const char *text, const char *to, uint8_t *pt, size_t cap, size_t *len)
{
    Kollega__E2e__V1__Content m = KOLLEGA__E2E__V1__CONTENT__INIT;
    uint8_t id[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kl_random(id, sizeof id);
    m.id.data = id;
    m.id.len = sizeof id;
    m.sent_at = (uint64_t)ts.tv_sec * 1000u;
    m.text = (char *)text;
    m.to = (char *)to;
    size_t n = kollega__e2e__v1__content__get_packed_size(&m);
    if (n + KL_PAD_BLOCK > cap)
        return -1;
    kollega__e2e__v1__content__pack(&m, pt);
    return kl_pad(pt, n, cap, len) == 0 ? 0 : -1;
}

/* The envelope of a forged message: with proven, a real X3DH start from
 * the probe's own key to bundle carrying text; otherwise random bytes
 * where the ratchet message would be. body gets the sealed result. */
static int build(const probe_ident_t *id, const kl_prekey_bundle_t *bundle, int proven,
                 const char *claim, const char *to, const char *text, uint8_t *body,
                 size_t cap, size_t *blen)
{
    Kollega__E2e__V1__Envelope env = KOLLEGA__E2E__V1__ENVELOPE__INIT;
    Kollega__E2e__V1__Sealed sealed = KOLLEGA__E2E__V1__SEALED__INIT;
    static uint8_t pt[4096], rmsg[4096 + KL_RATCHET_OVERHEAD], packed[8192];
    uint8_t sk[32], ek[32], ad[KL_X3DH_AD], claimed_ik[32];
    size_t ptlen = 0, rlen = 0;
    kl_ratchet_t *r = NULL;
    int rc = -1;
    if (proven) {
        memcpy(claimed_ik, id->pk, 32);
        if (pack_content(text, to, pt, sizeof pt, &ptlen) != 0 ||
            kl_x3dh_initiate(id->sk, id->pk, bundle, sk, ek, ad) != 0 ||
            kl_ratchet_init_initiator(&r, sk, bundle->spk, ad) != 0 ||
            kl_ratchet_encrypt(r, pt, ptlen, rmsg, sizeof rmsg, &rlen) != 0)
            goto out;
        env.has_opk = bundle->has_opk;
        env.opk_id = bundle->opk_id;
    } else {
        kl_random(claimed_ik, 32);
        kl_random(ek, 32);
        rlen = 300;
        kl_random(rmsg, rlen);
    }
    env.prekey = 1;
    env.ephemeral_key.data = ek;
    env.ephemeral_key.len = 32;
    env.spk_id = bundle->spk_id;
    env.ratchet.data = rmsg;
    env.ratchet.len = rlen;
    sealed.sender_address = (char *)claim;
    sealed.sender_identity_key.data = claimed_ik;
    sealed.sender_identity_key.len = 32;
    sealed.envelope = &env;
    size_t n = kollega__e2e__v1__sealed__get_packed_size(&sealed);
    if (n > sizeof packed || n + KL_SEAL_OVERHEAD > cap)
        goto out;
    kollega__e2e__v1__sealed__pack(&sealed, packed);
    rc = kl_sealed_seal(bundle->identity_key, packed, n, body, cap, blen) == 0 ? 0 : -1;
out:
    kl_ratchet_free(r);
    kl_memzero(sk, sizeof sk);
    kl_memzero(pt, sizeof pt);
    return rc;
}

int probe_forge(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[4], "junk") != 0 && strcmp(argv[4], "proven") != 0)) {
        fprintf(stderr, "usage: kl-probe ... forge KEYFILE MY_ADDRESS TO CLAIMED_SENDER "
                        "junk|proven TEXT\n");
        return 2;
    }
    const char *keyfile = argv[0], *me = argv[1], *to = argv[2], *claim = argv[3];
    int proven = strcmp(argv[4], "proven") == 0;
    probe_ident_t id;
    pconn_t c;
    kl_prekey_bundle_t bundle;
    static uint8_t body[16384];
    size_t blen = 0;
    uint64_t seq = 0;
    int ok = 0;
    if (probe_key_load(keyfile, &id) != 0 || probe_connect_user(&c, &id, me) != 0) {
        printf("{\"mode\":\"forge\",\"ok\":false,\"error\":\"cannot connect as %s\"}\n", me);
        return 1;
    }
    if (fetch_bundle(&c, to, &bundle) == 0 &&
        build(&id, &bundle, proven, claim, to, argv[5], body, sizeof body, &blen) == 0) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
        kl_frame_t *rep = NULL;
        s.to = (char *)to;
        s.body.data = body;
        s.body.len = blen;
        f.body_case = BODY(SEND);
        f.send = &s;
        if (probe_call(&c, &f, &rep) == 0 && rep->body_case == BODY(SENT)) {
            ok = 1;
            seq = rep->sent->seq;
        }
        kl_wire_free(rep);
    }
    pconn_close(&c);
    kl_memzero(&id, sizeof id);
    printf("{\"mode\":\"forge\",\"ok\":%s,\"seq\":%llu}\n", ok ? "true" : "false",
           (unsigned long long)seq);
    return ok ? 0 : 1;
}

/* A send without authenticating, with TOKEN (base64url) or a random one as
 * the recipient's delivery token: what the relay answers, and whether it
 * closed the connection afterwards. */
int probe_unidentified(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kl-probe ... unidentified TO TOKEN_B64|random\n");
        return 2;
    }
    uint8_t token[32], body[64];
    size_t n = 0;
    pconn_t c;
    kl_frame_t *rep = NULL, *after = NULL;
    if (strcmp(argv[1], "random") == 0)
        kl_random(token, sizeof token);
    else if (kl_b64_decode(argv[1], token, sizeof token, &n) != 0 || n != sizeof token) {
        fprintf(stderr, "kl-probe: TOKEN must be 32 bytes base64url\n");
        return 2;
    }
    kl_random(body, sizeof body);
    if (pconn_open(&c) != 0) {
        printf("{\"mode\":\"unidentified\",\"ok\":false,\"error\":\"no connection\"}\n");
        return 1;
    }
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
    s.to = argv[0];
    s.body.data = body;
    s.body.len = sizeof body;
    s.delivery_token.data = token;
    s.delivery_token.len = sizeof token;
    f.body_case = BODY(SEND);
    f.send = &s;
    int ok = 0, code = -1, closed = 0;
    if (probe_call(&c, &f, &rep) == 0) {
        ok = rep->body_case == BODY(SENT);
        if (rep->body_case == BODY(ERROR))
            code = (int)rep->error->code;
        /* Closed after the answer? (a ping would be answered otherwise) */
        kl_frame_t p = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Ping ping = KOLLEGA__RELAY__V1__PING__INIT;
        p.body_case = BODY(PING);
        p.ping = &ping;
        closed = probe_call(&c, &p, &after) != 0;
    }
    kl_wire_free(rep);
    kl_wire_free(after);
    pconn_close(&c);
    kl_memzero(token, sizeof token);
    printf("{\"mode\":\"unidentified\",\"ok\":%s,\"error_code\":", ok ? "true" : "false");
    if (code >= 0)
        printf("%d", code);
    else
        printf("null");
    printf(",\"closed\":%s}\n", closed ? "true" : "false");
    return 0;
}
