/* L1-L3 glue: Frame <-> protobuf <-> Noise transport message <-> u16-length
 * framed bytes, plus the byte strings register/auth signatures cover. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"

/* kl_wire_err_t is ErrorCode by number. */
#define SAME_CODE(x) \
    _Static_assert((int)KL_WIRE_ERR_##x == (int)KOLLEGA__RELAY__V1__ERROR_CODE__##x, #x)
_Static_assert((int)KL_WIRE_ERR_NONE == (int)KOLLEGA__RELAY__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED,
               "no error");
SAME_CODE(BAD_REQUEST);
SAME_CODE(UNAUTHENTICATED);
SAME_CODE(FORBIDDEN);
SAME_CODE(NOT_FOUND);
SAME_CODE(CONFLICT);
SAME_CODE(TOO_LARGE);
SAME_CODE(RATE_LIMITED);
SAME_CODE(QUOTA_EXCEEDED);
SAME_CODE(INVITE_INVALID);
SAME_CODE(UNAVAILABLE);
SAME_CODE(INTERNAL);

/* protobuf-c copies every string and bytes field and allocates a struct per
 * sub-message, so a hostile 64 KiB frame packed with tiny repeated
 * sub-messages could make unpack allocate some 40 times its size. Unpack
 * therefore runs on a malloc-backed allocator that refuses to hand out more
 * than this many bytes in total for one frame: legitimate frames (large
 * bodies, dozens of prekeys or entries) need at most about 3 times their
 * size.
 *
 * A decoded frame can hold an invite code or a signature, so its blocks are
 * wiped when it is freed: each carries its size in a small header, and
 * kl_wire_free frees through the same allocator (never free a frame with
 * ..._free_unpacked(f, NULL)). Headers count against the budget. */
#define UNPACK_BUDGET (8u * KL_WIRE_MAX_FRAME)
#define BLOCK_HDR _Alignof(max_align_t)
_Static_assert(BLOCK_HDR >= sizeof(size_t), "block header holds the size");

typedef struct budget {
    size_t left;
} budget_t;

static void *budget_alloc(void *data, size_t size)
{
    budget_t *b = data;
    if (size > b->left || b->left - size < BLOCK_HDR)
        return NULL;
    b->left -= size + BLOCK_HDR;
    uint8_t *p = malloc(BLOCK_HDR + size);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    return p + BLOCK_HDR;
}

static void wipe_free(void *data, void *p)
{
    (void)data;
    if (p == NULL)
        return;
    uint8_t *base = (uint8_t *)p - BLOCK_HDR;
    size_t size;
    memcpy(&size, base, sizeof size);
    kl_free_wipe(base, BLOCK_HDR + size);
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
    if (f == NULL)
        return KL_EINVAL;
    return kl_wire_seal_sized(t, f, kollega__relay__v1__frame__get_packed_size(f), out, cap,
                              outlen);
}

/* kl_wire_seal without computing the packed size again: protobuf-c walks
 * the whole message for it, and the relay already did so to reserve room
 * in its write buffer. */
int kl_wire_seal_sized(kl_noise_transport_t *t, const kl_frame_t *f, size_t n, uint8_t *out,
                       size_t cap, size_t *outlen)
{
    size_t clen = 0;
    int r;

    if (t == NULL || f == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    if (!frame_has_body(f))
        return KL_EINVAL;
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

int kl_wire_pack_alloc(const kl_frame_t *f, uint8_t **out, size_t *outlen)
{
    if (f == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (!frame_has_body(f))
        return KL_EINVAL;
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    if (n > KL_WIRE_MAX_FRAME)
        return KL_ETOOBIG;
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return KL_ENOMEM;
    if (kollega__relay__v1__frame__pack(f, buf) != n) {
        kl_free_wipe(buf, n);
        return KL_EINVAL;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int kl_wire_seal_packed(kl_noise_transport_t *t, const uint8_t *pt, size_t n, uint8_t *out,
                        size_t cap, size_t *outlen)
{
    size_t clen = 0;
    if (t == NULL || pt == NULL || out == NULL || outlen == NULL)
        return KL_EINVAL;
    if (n > KL_WIRE_MAX_FRAME || cap < KL_WIRE_SIZE(n))
        return KL_ETOOBIG;
    int r = kl_noise_encrypt(t, pt, n, out + 2, cap - 2, &clen);
    if (r)
        return r;
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

/* protobuf-c accepts field number 0, which protobuf forbids, when its tag
 * is spelled with a redundant continuation byte (0x82 0x00), and keeps it as
 * an unknown field; packed again, such a message is bytes no parser accepts.
 * So a Frame with field 0 anywhere is not a Frame. Only the active member of
 * a oneof is looked at (the others alias it). Frames nest three deep; the
 * walk stops at FIELD_ZERO_DEPTH. */
#define FIELD_ZERO_DEPTH 4

static int has_field_zero(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;

    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    if (depth == 0)
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + fd->quantifier_offset) != fd->id)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *arr =
                *(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (arr[k] != NULL && has_field_zero(arr[k], depth - 1))
                    return 1;
        } else {
            const ProtobufCMessage *sub =
                *(const ProtobufCMessage *const *)(const void *)(base + fd->offset);
            if (sub != NULL && has_field_zero(sub, depth - 1))
                return 1;
        }
    }
    return 0;
}

/* Decrypt one transport message (no length prefix) and unpack its Frame.
 * Returns 0 with *out set, KL_EPROTO (shorter than a tag, not a Frame, a
 * Frame with field number 0, or a Frame without body), KL_ETOOBIG (over 65535 bytes), KL_ECRYPTO (failed
 * authentication: the receive nonce does not advance) or KL_ENOMEM. The
 * plaintext buffer is wiped before it is freed. */
int kl_wire_open(kl_noise_transport_t *t, const uint8_t *msg, size_t len, kl_frame_t **out)
{
    uint8_t *pt = NULL;
    size_t ptcap = 0, ptlen = 0;
    kl_frame_t *f = NULL;
    budget_t budget = {UNPACK_BUDGET};
    ProtobufCAllocator alloc = {budget_alloc, wipe_free, &budget};
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
    if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY__NOT_SET ||
        has_field_zero(&f->base, FIELD_ZERO_DEPTH)) {
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
    ProtobufCAllocator alloc = {budget_alloc, wipe_free, NULL};
    if (f != NULL)
        kollega__relay__v1__frame__free_unpacked(f, &alloc);
}

int kl_wire_error_code(const kl_frame_t *f)
{
    if (f == NULL || f->body_case != KOLLEGA__RELAY__V1__FRAME__BODY_ERROR || f->error == NULL)
        return KL_WIRE_ERR_NONE;
    return (int)f->error->code;
}

int kl_wire_prekey_bundle_get(const kl_wire_prekey_bundle_t *pb, kl_prekey_bundle_t *b)
{
    const Kollega__Relay__V1__SignedPrekey *spk = pb->signed_prekey;
    const Kollega__Relay__V1__OneTimePrekey *opk = pb->one_time_prekey;
    memset(b, 0, sizeof *b);
    if (pb->identity_key.len != 32)
        return KL_EPROTO;
    if (spk == NULL)
        return KL_ENOTFOUND;
    if (spk->public_key.len != 32 || spk->signature.len != 64 ||
        (opk && opk->public_key.len != 32))
        return KL_EPROTO;
    memcpy(b->identity_key, pb->identity_key.data, 32);
    b->spk_id = spk->id;
    memcpy(b->spk, spk->public_key.data, 32);
    memcpy(b->spk_sig, spk->signature.data, 64);
    if (opk) {
        b->has_opk = 1;
        b->opk_id = opk->id;
        memcpy(b->opk, opk->public_key.data, 32);
    }
    return 0;
}

const char *kl_wire_error_name(int code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&kollega__relay__v1__error_code__descriptor, code);
    return v ? v->name : "UNKNOWN";
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

size_t kl_wire_packed_size(const kl_frame_t *f)
{
    return kollega__relay__v1__frame__get_packed_size(f);
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
