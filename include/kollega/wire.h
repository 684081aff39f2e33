/* L1-L3 glue shared by relay, client and tools: a Frame is protobuf-packed,
 * encrypted as one Noise transport message and prefixed with its u16 length;
 * and the byte strings that register/auth signatures cover. */
#ifndef KOLLEGA_WIRE_H
#define KOLLEGA_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/noise.h"
#include "kollega/x3dh.h"

/* A relay Frame (kollega.relay.v1.Frame, proto/relay.proto), opaque here:
 * code that builds or reads frames field by field (the relay, the client's
 * request modules) includes the generated "relay.pb-c.h" itself. */
typedef struct Kollega__Relay__V1__Frame kl_frame_t;

/* The relay's error codes (relay.proto ErrorCode), with the same numbers:
 * what a client needs to tell one refusal from another. */
typedef enum kl_wire_err {
    KL_WIRE_ERR_NONE = 0,            /* no error (ERROR_CODE_UNSPECIFIED) */
    KL_WIRE_ERR_BAD_REQUEST = 1,
    KL_WIRE_ERR_UNAUTHENTICATED = 2,
    KL_WIRE_ERR_FORBIDDEN = 3,
    KL_WIRE_ERR_NOT_FOUND = 4,
    KL_WIRE_ERR_CONFLICT = 5,
    KL_WIRE_ERR_TOO_LARGE = 6,
    KL_WIRE_ERR_RATE_LIMITED = 7,
    KL_WIRE_ERR_QUOTA_EXCEEDED = 8,
    KL_WIRE_ERR_INVITE_INVALID = 9,
    KL_WIRE_ERR_UNAVAILABLE = 10,
    KL_WIRE_ERR_INTERNAL = 11,
} kl_wire_err_t;

/* Largest packed Frame (the Noise plaintext limit). */
#define KL_WIRE_MAX_FRAME KL_NOISE_MAX_PT
/* Bytes on the wire for a packed frame of n bytes: header + ciphertext. */
#define KL_WIRE_SIZE(n) (2u + (n) + KL_NOISE_TAG)

#define KL_AUTH_CONTEXT "kollega-auth-v1"
#define KL_REGISTER_CONTEXT "kollega-register-v1"

/* Pack f, encrypt it with t and write "u16 length || ciphertext" to out.
 * KL_ETOOBIG if the packed frame exceeds KL_WIRE_MAX_FRAME or cap. */
int kl_wire_seal(kl_noise_transport_t *t, const kl_frame_t *f, uint8_t *out, size_t cap,
                 size_t *outlen);
/* The packed size of f in bytes (what kl_wire_seal_sized and
 * kl_stream_seal_frame take as n); it cannot fail. */
size_t kl_wire_packed_size(const kl_frame_t *f);
/* kl_wire_seal when the caller already has n, the packed size of f
 * (kl_wire_packed_size). */
int kl_wire_seal_sized(kl_noise_transport_t *t, const kl_frame_t *f, size_t n, uint8_t *out,
                       size_t cap, size_t *outlen);
/* One frame to many sessions: pack f once (kl_wire_pack_alloc: *out is
 * malloc'd, *outlen bytes; free it with kl_free_wipe(*out, *outlen); only
 * frames with a body, KL_ETOOBIG over KL_WIRE_MAX_FRAME), then seal those
 * bytes for each session (kl_wire_seal_packed, same output and errors as
 * kl_wire_seal; cap must hold KL_WIRE_SIZE(n)). */
int kl_wire_pack_alloc(const kl_frame_t *f, uint8_t **out, size_t *outlen);
int kl_wire_seal_packed(kl_noise_transport_t *t, const uint8_t *pt, size_t n, uint8_t *out,
                        size_t cap, size_t *outlen);
/* Same into a malloc'd buffer (*out, *outlen); caller frees. */
int kl_wire_seal_alloc(kl_noise_transport_t *t, const kl_frame_t *f, uint8_t **out,
                       size_t *outlen);
/* Decrypt one Noise message (without its length prefix) and unpack it.
 * KL_ECRYPTO if decryption fails, KL_EPROTO if the plaintext is not a
 * Frame or carries no body. *out is freed with kl_wire_free. */
int kl_wire_open(kl_noise_transport_t *t, const uint8_t *msg, size_t len, kl_frame_t **out);
void kl_wire_free(kl_frame_t *f);

/* The code of an Error frame f (a kl_wire_err_t; a code newer than this
 * list is returned as it is), or KL_WIRE_ERR_NONE when f is NULL or
 * carries another body. */
int kl_wire_error_code(const kl_frame_t *f);
/* A relay PrekeyBundle (relay.proto), opaque here like kl_frame_t: the
 * body of a Frame (the client's prekey fetch) or of a FedFrame (a peer
 * relay's answer). */
typedef struct Kollega__Relay__V1__PrekeyBundle kl_wire_prekey_bundle_t;

/* Copy the keys of pb into *b, which is zeroed first (and stays zero on
 * error). KL_EPROTO if the identity key is not 32 bytes, or a signed or
 * one-time prekey or the signature has the wrong length; KL_ENOTFOUND if
 * pb has no signed prekey (its owner has published none). Checks lengths
 * only: pb's address is the caller's to compare, and kl_x3dh_initiate
 * verifies the signature. */
int kl_wire_prekey_bundle_get(const kl_wire_prekey_bundle_t *pb, kl_prekey_bundle_t *b);

/* The protocol's name of an error code ("QUOTA_EXCEEDED"), or "UNKNOWN"
 * for a number the protocol does not define. Static storage. */
const char *kl_wire_error_name(int code);

/* Signed strings. out receives the message (cap must hold it), *outlen its
 * length; 0, KL_EINVAL (a NULL argument) or KL_ETOOBIG (cap).
 *   auth:     "kollega-auth-v1" || hh(64)
 *   register: "kollega-register-v1" || hh(64) || handle || invite_code
 *             (no separators, no NUL) */
int kl_wire_auth_msg(const uint8_t hh[64], uint8_t *out, size_t cap, size_t *outlen);
int kl_wire_register_msg(const uint8_t hh[64], const char *handle, const char *code,
                         uint8_t *out, size_t cap, size_t *outlen);

#endif
