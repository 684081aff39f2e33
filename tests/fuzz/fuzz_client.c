/* The client (e2e) fixture of the fuzz targets; see fuzz_client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_client.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/ratchet.h"
#include "kollega/sealed.h"
#include "kollega/x3dh.h"
#include "session.h"

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
