/* Strict protobuf decoding for signed records (group and channel logs,
 * channel posts). Internal to libkollega.
 *
 * A signed record's bytes must be unique: if a relay could re-encode a
 * record (reorder fields, add unknown ones, use a non-minimal varint), it
 * could hand different clients different bytes, and so different chain
 * hashes, for "the same" record. kl_pb_unpack_canonical therefore accepts
 * only input that is exactly protobuf-c's own encoding of what it decodes
 * to, with no unknown fields anywhere protobuf-c would keep them, and
 * decodes on a capped allocator so that hostile input cannot make it
 * allocate more than a fixed budget. */
#ifndef KOLLEGA_PBCANON_H
#define KOLLEGA_PBCANON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation budget shared by the unpacks of one record. */
typedef struct kl_pb_budget {
    size_t left;
    ProtobufCAllocator alloc;
} kl_pb_budget_t;

void kl_pb_budget_init(kl_pb_budget_t *b, size_t bytes);

/* Unpack in (1..max bytes) as message type d on b's allocator. NULL unless
 * the input decodes, has no unknown fields at the top level, and re-packs
 * to exactly the same bytes. Free with kl_pb_free. Sub-messages must be
 * checked by the caller with kl_pb_known_only. */
ProtobufCMessage *kl_pb_unpack_canonical(const ProtobufCMessageDescriptor *d, kl_pb_budget_t *b,
                                         const uint8_t *in, size_t len, size_t max);
void kl_pb_free(ProtobufCMessage *m, kl_pb_budget_t *b);

/* 1 if msg is NULL or carries no unknown fields. */
int kl_pb_known_only(const void *msg);

/* A signed record (the layout kl_pb_sign_wrap writes: bytes 1 the record,
 * bytes 2 its signature) and the record inside it, decoded on one budget
 * of two nested unpacks of at most max bytes each. */
typedef struct kl_pb_signed {
    kl_pb_budget_t budget;
    ProtobufCMessage *wrap;   /* the signed record */
    ProtobufCMessage *rec;    /* the record inside it */
    ProtobufCBinaryData bytes; /* the record's bytes (in wrap) */
    ProtobufCBinaryData sig;   /* its signature, 64 bytes (in wrap) */
} kl_pb_signed_t;

/* Decode in (1..max bytes) into s: the signed record and the record
 * inside it as message type d, both with kl_pb_unpack_canonical, and the
 * signature must be 64 bytes (it is not verified). Returns s->rec, or NULL
 * if anything fails. Either way free with kl_pb_signed_free. */
void *kl_pb_unpack_signed(kl_pb_signed_t *s, const ProtobufCMessageDescriptor *d,
                          const uint8_t *in, size_t len, size_t max);
void kl_pb_signed_free(kl_pb_signed_t *s);

/* kl_pb_verify_ctx of s's signature by pk over ctx || its record. */
int kl_pb_signed_verify(const kl_pb_signed_t *s, const uint8_t pk[32], const char *ctx,
                        size_t max);

/* 1 if an op at index with prev (empty or 32 bytes) continues a log whose
 * next index is next and head hash is head: the log starts with its
 * create op (is_create) and only there, and every later op names the hash
 * of the one before it. */
int kl_pb_chain_ok(uint64_t index, const ProtobufCBinaryData *prev, int is_create, uint64_t next,
                   const uint8_t head[32]);

/* Copy a bytes field that must hold exactly 32 bytes; 0 otherwise. */
int kl_pb_key32(const ProtobufCBinaryData *f, uint8_t out[32]);

/* Ed25519 verify of sig (must be 64 bytes) by pk over ctx || msg, with
 * msg at most max_msg bytes. 0 if valid. */
int kl_pb_verify_ctx(const uint8_t pk[32], const char *ctx, const uint8_t *msg, size_t len,
                     size_t max_msg, const ProtobufCBinaryData *sig);

/* Sign ctx || msg (at most max_msg bytes) with sk into sig[64]. */
int kl_pb_sign_ctx(const uint8_t sk[64], const char *ctx, const uint8_t *msg, size_t len,
                   size_t max_msg, uint8_t sig[64]);

/* Pack inner_msg (a ProtobufCMessage: a group or channel Op, a Post) and
 * wrap it with the Ed25519 signature by sk over ctx || packed into a signed
 * record (SignedOp / SignedPost: bytes 1 the record, bytes 2 the
 * signature), malloc'd into *out (free()), *outlen bytes. KL_ETOOBIG if the
 * record or the wrapped one exceeds max, KL_ECRYPTO, KL_ENOMEM; *out is
 * NULL on error. */
int kl_pb_sign_wrap(const void *inner_msg, const char *ctx, size_t max, const uint8_t sk[64],
                    uint8_t **out, size_t *outlen);

#endif
