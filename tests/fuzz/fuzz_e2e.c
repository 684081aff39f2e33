/* The end-to-end decoding the client does on every received body
 * (client/session.c): kl_session_open (sealed sender, Sealed unpack, sender
 * address and key checks) and kl_session_decrypt (Envelope, X3DH responder
 * from the store's prekeys, Double Ratchet, unpadding, Content unpack, UTF-8
 * sanitising), against alice's real client store from fuzz.h. Decryption
 * only reads the store, so every input starts from the same state.
 *
 * Input: u8 mode | rest.
 *   0  rest is the body as the relay delivers it;
 *   1  rest is the Sealed plaintext (sealed to alice here);
 *   2  rest is a Content plaintext, padded here, encrypted by bob (a new
 *      X3DH session) or carol (an existing session: mode bit 0x80), so it
 *      reaches the Content decoding;
 *   3  as 2 without padding (rest must carry its own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_client.h"
#include "kollega/addr.h"
#include "kollega/err.h"
#include "kollega/sealed.h"
#include "session.h"
#include "util.h"

/* Open and decrypt as kl_sync_entry does; returns the decryption result. */
static int receive(fuzz_client_t *C, const uint8_t *body, size_t len, kl_decrypted_t *d)
{
    kl_inbound_t in;
    int rc = kl_session_open(&C->alice, body, len, &in);
    memset(d, 0, sizeof *d);
    if (rc != 0) {
        FUZZ_CHECK(rc == KL_EPROTO || rc == KL_ECRYPTO);
        FUZZ_CHECK(in.sealed == NULL);
        return rc;
    }
    kl_addr_t a;
    FUZZ_CHECK(kl_addr_parse(in.sender, &a) == 0 && !a.is_group);
    FUZZ_CHECK(in.sealed != NULL && in.sealed->envelope != NULL);
    rc = kl_session_decrypt(C->st, &C->alice, &in, d);
    if (rc == 0) {
        FUZZ_CHECK(d->content.text != NULL);
        FUZZ_CHECK(strlen(d->content.text) == d->content.text_len);
        FUZZ_CHECK(kl_utf8_valid(d->content.text, d->content.text_len));
        FUZZ_CHECK(strlen(d->content.to) > 0 && strlen(d->content.to) <= KL_ADDR_MAX);
        FUZZ_CHECK(d->session != NULL && d->session_len > 0);
    } else {
        FUZZ_CHECK(d->content.text == NULL && d->session == NULL);
    }
    if (getenv("KL_FUZZ_TRACE") != NULL)
        fprintf(stderr, "from %s: %s%s\n", in.sender, rc ? kl_strerror(rc) : "text: ",
                rc ? "" : d->content.text);
    kl_inbound_free(&in);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_client_t *C = fuzz_client_get();
    uint8_t mode = data[0];
    const uint8_t *rest = data + 1;
    size_t n = size - 1, blen = 0;
    uint8_t *body = NULL, *padded = NULL;
    kl_decrypted_t d;
    memset(&d, 0, sizeof d);
    fuzz_rng_reset(size);
    switch (mode % 4) {
    case 0:
        receive(C, rest, n, &d);
        break;
    case 1:
        if (n > KL_BODY_MAX || fuzz_e2e_seal(C, rest, n, &body, &blen) != 0)
            break;
        receive(C, body, blen, &d);
        break;
    default: {
        const fuzz_sender_t *s = (mode & 0x80) ? &C->carol : &C->bob;
        size_t plen = n;
        if (n > KL_TEXT_MAX)
            break;
        padded = malloc(n + KL_PAD_BLOCK);
        FUZZ_CHECK(padded != NULL);
        memcpy(padded, rest, n);
        if (mode % 4 == 2)
            FUZZ_CHECK(kl_pad(padded, n, n + KL_PAD_BLOCK, &plen) == 0);
        FUZZ_CHECK(fuzz_e2e_body(C, s, padded, plen, &body, &blen) == 0);
        int rc = receive(C, body, blen, &d);
        /* The crypto layers are genuine: only the Content may be refused. */
        FUZZ_CHECK(rc == 0 || rc == KL_EPROTO);
        if (rc == 0 && mode % 4 == 2)
            FUZZ_CHECK(d.new_session == !(mode & 0x80));
        break;
    }
    }
    kl_decrypted_free(&d);
    free(body);
    free(padded);
    return 0;
}
