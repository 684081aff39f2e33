/* Strict protobuf decoding for signed records (contract in pbcanon.h). */
#include <stdlib.h>
#include <string.h>

#include "channel.pb-c.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "pbcanon.h"

static void *budget_alloc(void *data, size_t size)
{
    kl_pb_budget_t *b = data;
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

void kl_pb_budget_init(kl_pb_budget_t *b, size_t bytes)
{
    b->left = bytes;
    b->alloc.alloc = budget_alloc;
    b->alloc.free = budget_free;
    b->alloc.allocator_data = b;
}

int kl_pb_known_only(const void *msg)
{
    return msg == NULL || ((const ProtobufCMessage *)msg)->n_unknown_fields == 0;
}

ProtobufCMessage *kl_pb_unpack_canonical(const ProtobufCMessageDescriptor *d, kl_pb_budget_t *b,
                                         const uint8_t *in, size_t len, size_t max)
{
    ProtobufCMessage *m;
    uint8_t *again;

    if (in == NULL || len == 0 || len > max)
        return NULL;
    m = protobuf_c_message_unpack(d, &b->alloc, len, in);
    if (m == NULL)
        return NULL;
    if (!kl_pb_known_only(m) || protobuf_c_message_get_packed_size(m) != len)
        goto bad;
    again = malloc(len);
    if (again == NULL)
        goto bad;
    int same = protobuf_c_message_pack(m, again) == len && memcmp(again, in, len) == 0;
    free(again);
    if (same)
        return m;
bad:
    protobuf_c_message_free_unpacked(m, &b->alloc);
    return NULL;
}

void kl_pb_free(ProtobufCMessage *m, kl_pb_budget_t *b)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, &b->alloc);
}

void *kl_pb_unpack_signed(kl_pb_signed_t *s, const ProtobufCMessageDescriptor *d,
                          const uint8_t *in, size_t len, size_t max)
{
    memset(s, 0, sizeof *s);
    /* protobuf-c allocates a struct per message and copies every string
     * and bytes field; two nested unpacks of at most max bytes each stay
     * far below this. */
    kl_pb_budget_init(&s->budget, 8u * max);
    /* Every signed record has this layout (kl_pb_sign_wrap). */
    Kollega__Channel__V1__SignedOp *so = (Kollega__Channel__V1__SignedOp *)kl_pb_unpack_canonical(
        &kollega__channel__v1__signed_op__descriptor, &s->budget, in, len, max);
    s->wrap = (ProtobufCMessage *)so;
    if (so == NULL || so->signature.len != KL_SIG)
        return NULL;
    s->bytes = so->op;
    s->sig = so->signature;
    s->rec = kl_pb_unpack_canonical(d, &s->budget, so->op.data, so->op.len, max);
    return s->rec;
}

void kl_pb_signed_free(kl_pb_signed_t *s)
{
    kl_pb_free(s->rec, &s->budget);
    kl_pb_free(s->wrap, &s->budget);
    s->rec = NULL;
    s->wrap = NULL;
}

int kl_pb_signed_verify(const kl_pb_signed_t *s, const uint8_t pk[32], const char *ctx,
                        size_t max)
{
    return kl_pb_verify_ctx(pk, ctx, s->bytes.data, s->bytes.len, max, &s->sig);
}

int kl_pb_chain_ok(uint64_t index, const ProtobufCBinaryData *prev, int is_create, uint64_t next,
                   const uint8_t head[32])
{
    if (index != next || (index == 0) != (is_create != 0))
        return 0;
    return index == 0 ? prev->len == 0 : prev->len == 32 && memcmp(prev->data, head, 32) == 0;
}

int kl_pb_key32(const ProtobufCBinaryData *f, uint8_t out[32])
{
    if (f->len != 32 || f->data == NULL)
        return 0;
    memcpy(out, f->data, 32);
    return 1;
}

/* ctx || msg in one heap buffer (records are at most a few KiB). */
static uint8_t *with_ctx(const char *ctx, const uint8_t *msg, size_t len, size_t max_msg,
                         size_t *total)
{
    size_t cl = strlen(ctx);
    if (len > max_msg)
        return NULL;
    uint8_t *buf = malloc(cl + len + 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, ctx, cl);
    if (len > 0)
        memcpy(buf + cl, msg, len);
    *total = cl + len;
    return buf;
}

int kl_pb_verify_ctx(const uint8_t pk[32], const char *ctx, const uint8_t *msg, size_t len,
                     size_t max_msg, const ProtobufCBinaryData *sig)
{
    size_t total;
    if (sig->len != KL_SIG || sig->data == NULL)
        return KL_ECRYPTO;
    uint8_t *buf = with_ctx(ctx, msg, len, max_msg, &total);
    if (buf == NULL)
        return len > max_msg ? KL_ETOOBIG : KL_ENOMEM;
    int r = kl_sign_verify(pk, buf, total, sig->data) == 0 ? 0 : KL_ECRYPTO;
    free(buf);
    return r;
}

int kl_pb_sign_ctx(const uint8_t sk[64], const char *ctx, const uint8_t *msg, size_t len,
                   size_t max_msg, uint8_t sig[64])
{
    size_t total;
    uint8_t *buf = with_ctx(ctx, msg, len, max_msg, &total);
    if (buf == NULL)
        return len > max_msg ? KL_ETOOBIG : KL_ENOMEM;
    int r = kl_sign(sk, buf, total, sig);
    free(buf);
    return r;
}

int kl_pb_sign_wrap(const void *inner_msg, const char *ctx, size_t max, const uint8_t sk[64],
                    uint8_t **out, size_t *outlen)
{
    const ProtobufCMessage *inner = inner_msg;
    uint8_t sig[KL_SIG];
    size_t n = protobuf_c_message_get_packed_size(inner);
    int r = KL_ETOOBIG;
    uint8_t *packed = NULL;

    *out = NULL;
    if (n > max)
        return KL_ETOOBIG;
    packed = malloc(n ? n : 1);
    if (packed == NULL)
        return KL_ENOMEM;
    protobuf_c_message_pack(inner, packed);
    r = kl_pb_sign_ctx(sk, ctx, packed, n, max, sig);
    if (r != 0)
        goto out;
    /* Every signed record has this layout: the channel's SignedOp packs
     * exactly as a SignedPost or a group's SignedOp would. */
    Kollega__Channel__V1__SignedOp so = KOLLEGA__CHANNEL__V1__SIGNED_OP__INIT;
    so.op.data = packed;
    so.op.len = n;
    so.signature.data = sig;
    so.signature.len = sizeof sig;
    size_t total = kollega__channel__v1__signed_op__get_packed_size(&so);
    r = KL_ETOOBIG;
    if (total > max)
        goto out;
    r = KL_ENOMEM;
    *out = malloc(total);
    if (*out == NULL)
        goto out;
    kollega__channel__v1__signed_op__pack(&so, *out);
    *outlen = total;
    r = 0;
out:
    free(packed);
    return r;
}
