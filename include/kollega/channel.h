/* Broadcast channels (docs/DESIGN.md "Broadcast channels"): "!name@relay".
 *
 * A channel's publishers are set by a hash-chained log of signed ops
 * (proto/channel.proto), validated by the relay and by every subscriber
 * with this one implementation:
 *  - Every op: SignedOp and Op decode canonically (pbcanon.h); Op.channel
 *    is the channel's address; index == next index; prev == SHA-256 of the
 *    previous SignedOp (empty at 0); actor is 32 bytes with a valid user
 *    address; the signature by actor over "kollega-channel-op-v1" || op
 *    verifies. Otherwise the op is refused and the state is unchanged.
 *  - create: only at index 0 (and index 0 must be create); the actor
 *    becomes the owner, and a publisher.
 *  - add_publisher{key, address}: the actor is the owner; the key is not
 *    a publisher yet; at most KL_CHANNEL_MAX_PUBLISHERS.
 *  - remove_publisher{key}: the actor is the owner; the key is a
 *    publisher other than the owner.
 *  - add_member{key, address} / remove_member{key}: members-only channels
 *    only (else KL_CV_PUBLIC); the actor is the owner.
 * A post (SignedPost) is valid when it decodes canonically, names this
 * channel, carries a 16-byte id and a publisher who is a publisher in the
 * CURRENT state with a matching address, and its signature by that
 * publisher over "kollega-channel-post-v1" || post verifies. So once a
 * publisher is removed, its later posts are refused everywhere; posts a
 * subscriber accepted before stay in its history.
 *
 * Members-only channels (Create.members_only; absent = public, the wire
 * format of public channels is unchanged):
 *  - Members are the owner, the publishers and the added members (at most
 *    KL_CHANNEL_MAX_MEMBERS added ones). The two sets are kept apart:
 *    add_member of a key that is already a member (publisher or added) is
 *    KL_CV_ALREADY_MEMBER; add_publisher of an added member is allowed
 *    (it is then both); remove_publisher of a key that is also an added
 *    member leaves it a member; remove_member applies to added members
 *    only (KL_CV_NOT_MEMBER otherwise: a publisher who is not an added
 *    member leaves through remove_publisher).
 *  - The key epoch starts at 1 at create and grows by one at every
 *    remove_member and every remove_publisher (in public channels too,
 *    where it means nothing), so every client and relay derives the same
 *    epoch from the same log. The owner's client makes a fresh random
 *    32-byte channel key for each epoch and hands it to each member over
 *    the 1:1 sessions; a removed member keeps the keys it had but never
 *    gets the next one.
 *  - A post carries no text: ciphertext (kl_channel_seal of the text under
 *    the key of `epoch`) with 1 <= epoch <= the current epoch; the
 *    signature covers it all, so the relay validates posts it cannot
 *    read. A public channel refuses posts with ciphertext or an epoch
 *    (KL_CV_PUBLIC); a members-only one refuses posts with text
 *    (KL_CV_MALFORMED), without ciphertext (KL_CV_MALFORMED) or with an
 *    epoch out of range (KL_CV_EPOCH).
 *  - Relay: only a member (by identity key, against the validated log)
 *    subscribes, reads posts or fetches the op log; a peer relay ("@peer")
 *    may mirror the ciphertext and its mirror checks its own users. A
 *    removal drops the removed key's subscription in the same step.
 *  - Client (client/channel_keys.c): a received channel key is used only
 *    while its sender is the owner in the validated log and we are a
 *    member; keys are sealed in the store and wiped from memory after use;
 *    a post whose key has not arrived is kept (sealed) with a warning and
 *    shown by the receive that brings the key. */
#ifndef KOLLEGA_CHANNEL_H
#define KOLLEGA_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#define KL_CHANNEL_MAX_PUBLISHERS 64
#define KL_CHANNEL_MAX_OP 2048        /* bytes of one SignedOp */
#define KL_CHANNEL_MAX_POST 49152     /* bytes of one SignedPost (fits a relay body) */
#define KL_CHANNEL_OP_CONTEXT "kollega-channel-op-v1"
#define KL_CHANNEL_POST_CONTEXT "kollega-channel-post-v1"
#define KL_CHANNEL_MAX_MEMBERS 4096   /* added members of a members-only channel */
#define KL_CHANNEL_KEY 32             /* a channel key (one per epoch) */
#define KL_CHANNEL_KEY_CONTEXT "kollega-channel-key-v1"
#define KL_CHANNEL_SEAL_OVERHEAD 40   /* 24-byte nonce + 16-byte tag */

typedef enum kl_channel_opkind {
    KL_COP_CREATE = 10,
    KL_COP_ADD_PUBLISHER = 11,
    KL_COP_REMOVE_PUBLISHER = 12,
    KL_COP_ADD_MEMBER = 13,
    KL_COP_REMOVE_MEMBER = 14,
} kl_channel_opkind_t;

typedef enum kl_channel_verr {
    KL_CV_OK = 0,
    KL_CV_MALFORMED,       /* does not decode, fields missing or of wrong size */
    KL_CV_SIGNATURE,       /* signature does not verify */
    KL_CV_WRONG_CHANNEL,   /* names another channel */
    KL_CV_CHAIN,           /* index or prev does not continue the log */
    KL_CV_NOT_OWNER,       /* only the owner changes publishers */
    KL_CV_NOT_PUBLISHER,   /* target or post author is not a publisher */
    KL_CV_ALREADY_PUBLISHER,
    KL_CV_OWNER,           /* the owner cannot be removed */
    KL_CV_LIMIT,           /* too many publishers or members */
    KL_CV_PUBLIC,          /* a member op, or a sealed post, in a public channel */
    KL_CV_NOT_MEMBER,      /* remove_member of a key that is not an added member */
    KL_CV_ALREADY_MEMBER,
    KL_CV_EPOCH,           /* a sealed post's epoch is 0 or after the current one */
} kl_channel_verr_t;

/* A short English text for why (static storage, never NULL). */
const char *kl_channel_verr_str(kl_channel_verr_t why);

/* 1 if s is "!handle@relay" with a valid handle and relay name. */
int kl_channel_addr_valid(const char *s);

typedef struct kl_channel kl_channel_t; /* opaque validated state */

typedef struct kl_channel_event {
    kl_channel_opkind_t kind;
    uint64_t index;
    uint8_t actor[32];
    uint8_t target[32];        /* add/remove publisher or member */
    char target_address[256];  /* its address (for a remove: as the state had it) */
    int members_only;          /* the channel's kind (after the op) */
    uint64_t epoch;            /* the key epoch after the op */
} kl_channel_event_t;

/* New empty state for the channel at address ("!name@relay", at most 255
 * characters) in *out (the caller's: kl_channel_free, NULL is fine).
 * KL_EINVAL, KL_ENOMEM. */
int kl_channel_new(kl_channel_t **out, const char *address);
void kl_channel_free(kl_channel_t *c);

/* Validate the next SignedOp and apply it: 0 (ev, if not NULL, describes
 * it), or KL_EPROTO / KL_ECRYPTO / KL_ESTATE / KL_ELIMIT with *why set and
 * the state unchanged. */
int kl_channel_apply(kl_channel_t *c, const uint8_t *signed_op, size_t len,
                     kl_channel_event_t *ev, kl_channel_verr_t *why);

/* What a SignedOp says of itself (kl_channel_op_peek). */
typedef struct kl_channel_peek {
    uint64_t index;
    kl_channel_opkind_t kind;
    uint8_t actor[32];
    char actor_address[256];
    char channel[256];
} kl_channel_peek_t;

/* What a SignedOp says of itself, checked without any channel state:
 * kl_channel_op_peek decodes it as kl_channel_apply does (canonical
 * encoding, body set, 32-byte actor, channel and actor_address under 256
 * bytes) and verifies its signature with the actor key it names. A relay
 * calls it before loading the channel's log, so an op with a bogus
 * signature costs one verification and nothing more. The caller still
 * compares actor with the identity it expects. 0 with the caller's *out
 * filled; KL_EPROTO (malformed), KL_ETOOBIG (over KL_CHANNEL_MAX_OP),
 * KL_ECRYPTO (signature), KL_EINVAL (NULL argument); *out is zeroed on
 * error. */
int kl_channel_op_peek(const uint8_t *signed_op, size_t len, kl_channel_peek_t *out);

/* Build and sign the next op (index, prev and channel filled in); *out is
 * malloc'd (free()). target/target_address are used by add (both) and
 * remove (key only). KL_COP_CREATE makes a public channel. Not applied:
 * pass it to kl_channel_apply. KL_EINVAL for a NULL argument, an invalid
 * address or an unknown kind; KL_ETOOBIG over KL_CHANNEL_MAX_OP;
 * KL_ECRYPTO, KL_ENOMEM; nothing is allocated on error. */
int kl_channel_op_build(const kl_channel_t *c, const uint8_t actor_sk[64],
                        const uint8_t actor_pk[32], const char *actor_address, uint64_t ts,
                        kl_channel_opkind_t kind, const uint8_t target[32],
                        const char *target_address, uint8_t **out, size_t *outlen);
/* The create op, public or members-only: as kl_channel_op_build (*out
 * malloc'd, same errors). */
int kl_channel_op_build_create(const kl_channel_t *c, const uint8_t actor_sk[64],
                               const uint8_t actor_pk[32], const char *actor_address,
                               uint64_t ts, int members_only, uint8_t **out, size_t *outlen);

/* Queries of the state; none fails. The channel's address (owned by the
 * state, valid while it lives), the index of the next op, and the hash of
 * the last op (zeros before create). */
const char *kl_channel_address(const kl_channel_t *c);
uint64_t kl_channel_next_index(const kl_channel_t *c);
void kl_channel_head(const kl_channel_t *c, uint8_t hash[32]);
/* The owner's key (0), or KL_ENOTFOUND before create. */
int kl_channel_owner(const kl_channel_t *c, uint8_t key[32]);
int kl_channel_is_publisher(const kl_channel_t *c, const uint8_t key[32]);
size_t kl_channel_publisher_count(const kl_channel_t *c);
/* i-th publisher in order of addition (the owner first): its key and
 * address into the caller's buffers, or KL_ENOTFOUND past the last. */
int kl_channel_publisher_at(const kl_channel_t *c, size_t i, uint8_t key[32], char address[256]);
/* 1 for a members-only channel, else 0. */
int kl_channel_members_only(const kl_channel_t *c);
/* 1 if key is a member: the owner, a publisher or an added member (in a
 * public channel: the owner or a publisher). */
int kl_channel_is_member(const kl_channel_t *c, const uint8_t key[32]);
/* The current key epoch: 0 before create, then 1 + the number of
 * remove_member and remove_publisher ops. */
uint64_t kl_channel_epoch(const kl_channel_t *c);
/* The added members (not the publishers), in order of addition; an added
 * member may also be a publisher. kl_channel_added_at: the i-th one's key
 * and address into the caller's buffers, or KL_ENOTFOUND past the last. */
size_t kl_channel_added_count(const kl_channel_t *c);
int kl_channel_added_at(const kl_channel_t *c, size_t i, uint8_t key[32], char address[256]);

/* A verified post. text is malloc'd and NUL-terminated (it may not contain
 * NUL bytes); in a members-only channel it is "" until
 * kl_channel_post_unseal, and ciphertext (malloc'd) and epoch are set.
 * Release with kl_channel_post_clear (wipes the text). */
typedef struct kl_channel_post {
    uint8_t publisher[32];
    char publisher_address[256];
    uint8_t id[16];
    uint64_t ts;
    char *text;
    size_t text_len;
    uint8_t *ciphertext;
    size_t ciphertext_len;
    uint64_t epoch;            /* 0 in a public channel */
} kl_channel_post_t;

/* Sign a post by a current publisher (KL_ESTATE if pk is not one, or the
 * channel is members-only; KL_ETOOBIG when it would exceed
 * KL_CHANNEL_MAX_POST). *out malloc'd. */
int kl_channel_post_build(const kl_channel_t *c, const uint8_t sk[64], const uint8_t pk[32],
                          const char *address, const uint8_t id[16], uint64_t ts,
                          const char *text, uint8_t **out, size_t *outlen);
/* The same for a members-only channel: text is sealed under key (the
 * channel key of epoch, 1 <= epoch <= the current epoch, else KL_ESTATE;
 * KL_ESTATE too for a public channel). *out malloc'd. */
int kl_channel_post_build_sealed(const kl_channel_t *c, const uint8_t sk[64],
                                 const uint8_t pk[32], const char *address,
                                 const uint8_t id[16], uint64_t ts,
                                 const uint8_t key[KL_CHANNEL_KEY], uint64_t epoch,
                                 const char *text, uint8_t **out, size_t *outlen);

/* Seal len bytes of pt for channel (its address), epoch and post id under
 * key: *out (malloc'd, *outlen = padded + KL_CHANNEL_SEAL_OVERHEAD) is a
 * random 24-byte nonce || XChaCha20-Poly1305 ciphertext of pt padded with
 * kl_pad to a multiple of KL_PAD_BLOCK, AD KL_CHANNEL_KEY_CONTEXT ||
 * channel || epoch (8 bytes big-endian) || id. KL_EINVAL, KL_ETOOBIG
 * (over KL_CHANNEL_MAX_POST - KL_PAD_BLOCK - KL_CHANNEL_SEAL_OVERHEAD),
 * KL_ENOMEM. */
int kl_channel_seal(const uint8_t key[KL_CHANNEL_KEY], const char *channel, uint64_t epoch,
                    const uint8_t id[16], const uint8_t *pt, size_t len, uint8_t **out,
                    size_t *outlen);
/* The reverse: KL_ECRYPTO when anything differs (key, channel, epoch, id,
 * a flipped bit), KL_EPROTO when too short or badly padded. *out is malloc'd with a NUL
 * after its *outlen bytes; free with kl_free_wipe(*out, *outlen + 1). */
int kl_channel_unseal(const uint8_t key[KL_CHANNEL_KEY], const char *channel, uint64_t epoch,
                      const uint8_t id[16], const uint8_t *ct, size_t len, uint8_t **out,
                      size_t *outlen);
/* Decrypt an opened members-only post of channel with the key of its
 * epoch: p->text becomes the text (KL_EPROTO if it holds a NUL byte).
 * KL_ECRYPTO for a wrong key, KL_EINVAL for a post without ciphertext. */
int kl_channel_post_unseal(const char *channel, kl_channel_post_t *p,
                           const uint8_t key[KL_CHANNEL_KEY]);
/* Verify a SignedPost against the current state (rules above): 0 and *out
 * filled, or KL_EPROTO / KL_ECRYPTO / KL_ESTATE with *why set. */
int kl_channel_post_open(const kl_channel_t *c, const uint8_t *in, size_t len,
                         kl_channel_post_t *out, kl_channel_verr_t *why);
void kl_channel_post_clear(kl_channel_post_t *p);

#endif
