/* L1-L3 glue: Frame <-> protobuf <-> Noise transport message <-> u16-length
 * framed bytes, plus the byte strings register/auth signatures cover. */
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/wire.h"

/* protobuf-c copies every string and bytes field and allocates a struct per
 * sub-message, so a hostile 64 KiB frame packed with tiny repeated
 * sub-messages could make unpack allocate some 40 times its size. Unpack
 * therefore runs on a malloc-backed allocator that refuses to hand out more
 * than this many bytes in total for one frame: legitimate frames (large
 * bodies, dozens of prekeys or entries) need at most about 3 times their
 * size. Because the blocks come from malloc, the result is still freed with
 * the default allocator (kl_wire_free or ..._free_unpacked(f, NULL)). */
#define UNPACK_BUDGET (8u * KL_WIRE_MAX_FRAME)

typedef struct budget {
    size_t left;
} budget_t;

static void *budget_alloc(void *data, size_t size)
{
    budget_t *b = data;
    if (size > b->left)
        return NULL;
    b->left -= size;
    return malloc(size);
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* The body is set only if body_case names a field of the oneof and the
 * sub-message behind it exists: protobuf-c silently packs a NULL message (or
 * a case the schema does not know) as nothing, which would make a Frame
 * without body that every peer rejects. */
static int frame_has_body(const kl_frame_t *f)
{
    const ProtobufCFieldDescriptor *fd;

    if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY__NOT_SET)
        return 0;
    fd = protobuf_c_message_descriptor_get_field(&kollega__relay__v1__frame__descriptor,
                                                 (unsigned)f->body_case);
    if (fd == NULL || fd->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    return *(void *const *)((const char *)f + fd->offset) != NULL;
}

/* Pack f, then encrypt it in place right after the 2-byte header, so no
 * plaintext copy outlives the call. Returns 0, KL_EINVAL (NULL argument or a
 * frame without a body, which no peer accepts), KL_ETOOBIG (packed frame over
 * KL_WIRE_MAX_FRAME or over cap), or a kl_noise_encrypt error (KL_ELIMIT
 * when the send nonce is exhausted). The send nonce advances only on
 * success. */
int kl_wire_seal(kl_noise_transport_t *t, const kl_frame_t *f, uint8_t *out, size_t cap,
                 size_t *outlen)
{
    size_t n, clen = 0;
    int r;

    if (t == NULL || f == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    if (!frame_has_body(f))
        return KL_EINVAL;
    n = kollega__relay__v1__frame__get_packed_size(f);
    if (n > KL_WIRE_MAX_FRAME || cap < KL_WIRE_SIZE(n))
        return KL_ETOOBIG;
    if (kollega__relay__v1__frame__pack(f, out + 2) != n) {
        kl_memzero(out, KL_WIRE_SIZE(n));
        return KL_EINVAL;
    }
    r = kl_noise_encrypt(t, out + 2, n, out + 2, cap - 2, &clen);
    if (r) {
        kl_memzero(out, KL_WIRE_SIZE(n));
        return r;
    }
    r = kl_frame_header(clen, out);
    if (r)
        return r;
    *outlen = 2 + clen;
    return 0;
}

/* As kl_wire_seal into a buffer of exactly the right size; *out is
 * malloc'd and owned by the caller (free()). Nothing is allocated on error. */
int kl_wire_seal_alloc(kl_noise_transport_t *t, const kl_frame_t *f, uint8_t **out,
                       size_t *outlen)
{
    size_t n, len = 0;
    uint8_t *buf;
    int r;

    if (out == NULL || outlen == NULL || f == NULL)
        return KL_EINVAL;
    *out = NULL;
    n = kollega__relay__v1__frame__get_packed_size(f);
    if (n > KL_WIRE_MAX_FRAME)
        return KL_ETOOBIG;
    buf = malloc(KL_WIRE_SIZE(n));
    if (buf == NULL)
        return KL_ENOMEM;
    r = kl_wire_seal(t, f, buf, KL_WIRE_SIZE(n), &len);
    if (r) {
        free(buf);
        return r;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Decrypt one transport message (no length prefix) and unpack its Frame.
 * Returns 0 with *out set, KL_EPROTO (shorter than a tag, not a Frame, or a
 * Frame without body), KL_ETOOBIG (over 65535 bytes), KL_ECRYPTO (failed
 * authentication: the receive nonce does not advance) or KL_ENOMEM. The
 * plaintext buffer is wiped before it is freed. */
int kl_wire_open(kl_noise_transport_t *t, const uint8_t *msg, size_t len, kl_frame_t **out)
{
    uint8_t *pt = NULL;
    size_t ptcap = 0, ptlen = 0;
    kl_frame_t *f = NULL;
    budget_t budget = {UNPACK_BUDGET};
    ProtobufCAllocator alloc = {budget_alloc, budget_free, &budget};
    int r = KL_EINVAL;

    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (t == NULL || msg == NULL)
        goto out;
    r = KL_EPROTO;
    if (len < KL_NOISE_TAG)
        goto out;
    r = KL_ETOOBIG;
    if (len > KL_NOISE_MAX_MSG)
        goto out;
    ptcap = len - KL_NOISE_TAG;
    /* One spare byte so an empty plaintext still gets a real buffer. */
    pt = malloc(ptcap + 1);
    r = KL_ENOMEM;
    if (pt == NULL)
        goto out;
    r = kl_noise_decrypt(t, msg, len, pt, ptcap, &ptlen);
    if (r)
        goto out;
    r = KL_ETOOBIG;
    if (ptlen > KL_WIRE_MAX_FRAME)
        goto out;
    r = KL_EPROTO;
    f = kollega__relay__v1__frame__unpack(&alloc, ptlen, pt);
    if (f == NULL)
        goto out;
    if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY__NOT_SET) {
        kollega__relay__v1__frame__free_unpacked(f, &alloc);
        f = NULL;
        goto out;
    }
    *out = f;
    r = 0;
out:
    kl_free_wipe(pt, ptcap + 1);
    return r;
}

void kl_wire_free(kl_frame_t *f)
{
    if (f != NULL)
        kollega__relay__v1__frame__free_unpacked(f, NULL);
}

static int concat(uint8_t *out, size_t cap, size_t *outlen, const void *a, size_t alen,
                  const void *b, size_t blen, const void *c, size_t clen, const void *d,
                  size_t dlen)
{
    size_t n = alen + blen + clen + dlen;
    if (n > cap)
        return KL_ETOOBIG;
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    if (clen > 0)
        memcpy(out + alen + blen, c, clen);
    if (dlen > 0)
        memcpy(out + alen + blen + clen, d, dlen);
    *outlen = n;
    return 0;
}

/* "kollega-auth-v1" || hh. 0, KL_EINVAL or KL_ETOOBIG (cap). */
int kl_wire_auth_msg(const uint8_t hh[64], uint8_t *out, size_t cap, size_t *outlen)
{
    if (hh == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    return concat(out, cap, outlen, KL_AUTH_CONTEXT, strlen(KL_AUTH_CONTEXT), hh, 64, NULL, 0,
                  NULL, 0);
}

/* "kollega-register-v1" || hh || handle || code (no separators, no NUL).
 * 0, KL_EINVAL or KL_ETOOBIG (cap). */
int kl_wire_register_msg(const uint8_t hh[64], const char *handle, const char *code,
                         uint8_t *out, size_t cap, size_t *outlen)
{
    if (hh == NULL || handle == NULL || code == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    return concat(out, cap, outlen, KL_REGISTER_CONTEXT, strlen(KL_REGISTER_CONTEXT), hh, 64,
                  handle, strlen(handle), code, strlen(code));
}
