/* End-to-end sessions with contacts: X3DH + Double Ratchet, the e2e
 * Content/Envelope/Sealed encodings and sealed sender.
 *
 * Sending: kl_session_encrypt advances the ratchet and COMMITS the new
 * state before it returns the body to send, so a crash after it can never
 * make a message key be used twice. Receiving is split in two so the
 * caller can decide inside one transaction: kl_session_decrypt reads the
 * store and computes the plaintext and the new session state without
 * writing; kl_session_apply writes the state and deletes a consumed
 * one-time prekey in the caller's transaction (with the message and the
 * inbox cursor). No network here: the caller fetches prekey bundles. */
#ifndef KOLLEGA_CLIENT_SESSION_H
#define KOLLEGA_CLIENT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "e2e.pb-c.h"
#include "identity.h"
#include "kollega/senderkey.h"
#include "kollega/x3dh.h"
#include "store.h"

/* The relay's body limit (60 KiB). */
#define KL_BODY_MAX (60u * 1024u)

/* What a person wrote (e2e Content). text is NUL-terminated UTF-8. A
 * Content with has_dist carries a group sender key (client/group.c) and no
 * text for the user. */
typedef struct kl_content {
    uint8_t id[KL_MSG_ID];
    uint64_t sent_at;
    char *text;                  /* malloc'd (unpack); borrowed when packing */
    size_t text_len;
    char to[KL_ADDR_MAX + 1];
    int has_dist;
    char dist_group[KL_ADDR_MAX + 1];
    uint64_t dist_epoch;
    uint8_t dist[KL_SENDERKEY_DIST];
    uint64_t group_index;        /* group message: the author's next_index (0 = none) */
    uint8_t group_head[32];      /* and its head then (with group_index) */
    int has_ckey;                /* a members-only channel's key (client/channel_keys.c) */
    char ckey_channel[KL_ADDR_MAX + 1];
    uint64_t ckey_epoch;
    uint8_t ckey[32];
    int has_token;               /* 1:1 only: the sender's delivery token */
    uint8_t token[32];           /* (client/delivery.h); set by kl_session_encrypt_content */
} kl_content_t;

/* Pack c and pad it to 256-byte blocks: *out malloc'd with *cap bytes
 * (free with kl_free_wipe(*out, *cap)), *outlen used. KL_ETOOBIG for a
 * text over KL_TEXT_MAX. */
int kl_content_pack(const kl_content_t *c, uint8_t **out, size_t *cap, size_t *outlen);
/* Unpad and decode; c->text is malloc'd, sanitised UTF-8 (kl_content_free).
 * KL_EPROTO for anything malformed (bad id, empty or long to, a sender key
 * record of the wrong size or for a non-group address). */
int kl_content_unpack(const uint8_t *pt, size_t len, kl_content_t *c);
void kl_content_free(kl_content_t *c);

/* *has = 1 if a session with peer exists whose peer identity key is
 * peer_ik (a session with another key, or one that no longer opens or
 * parses, does not count), else 0. Store errors. */
int kl_session_has(kl_store_t *st, const char *peer, const uint8_t peer_ik[32], int *has);

/* Encrypt one message to peer (pinned key peer_ik) and commit the advanced
 * session (own transaction: KL_ESTATE inside the caller's; nothing is
 * stored on failure). Without a session for peer_ik, bundle must be
 * given (its identity key must equal peer_ik, else KL_EKEYCHANGED) and a
 * new session is started with X3DH; with neither, KL_ENOTFOUND. *body (for
 * send.body, malloc'd) is the sealed-sender envelope; KL_ETOOBIG if it
 * would exceed KL_BODY_MAX. */
int kl_session_encrypt(kl_store_t *st, const kl_identity_t *me, const char *peer,
                       const uint8_t peer_ik[32], const kl_prekey_bundle_t *bundle,
                       const uint8_t id[KL_MSG_ID], uint64_t sent_at, const char *text,
                       size_t text_len, uint8_t **body, size_t *body_len);

/* The same for any Content (a sender-key distribution, say). Every 1:1
 * Content carries our delivery token, when we have one, so the peer can
 * write back without identifying itself to its relay. */
int kl_session_encrypt_content(kl_store_t *st, const kl_identity_t *me, const char *peer,
                               const uint8_t peer_ik[32], const kl_prekey_bundle_t *bundle,
                               const kl_content_t *c, uint8_t **body, size_t *body_len);

/* A received body after opening the sealed-sender layer. */
typedef struct kl_inbound {
    char sender[KL_ADDR_MAX + 1];     /* validated user address */
    uint8_t sender_ik[32];
    Kollega__E2e__V1__Sealed *sealed; /* owns the envelope */
} kl_inbound_t;

/* Open body with our identity. KL_ECRYPTO (not for us / tampered),
 * KL_EPROTO (malformed: bad address, key length, missing envelope). */
int kl_session_open(const kl_identity_t *me, const uint8_t *body, size_t len, kl_inbound_t *in);
void kl_inbound_free(kl_inbound_t *in);

/* The result of a decryption, not yet written to the store. */
typedef struct kl_decrypted {
    kl_content_t content;
    uint8_t *session;            /* new sealed-record plaintext for the peer */
    size_t session_len;
    int used_opk;                /* a one-time prekey to delete */
    uint32_t opk_id;
    int new_session;             /* 1 if X3DH started a new session: then */
    uint32_t start_spk_id;       /* the start (signed prekey id, initiator's */
    uint8_t start_ek[32];        /* ephemeral key) is recorded by apply */
} kl_decrypted_t;

/* Decrypt in->sealed->envelope with the session for in->sender, or (for a
 * prekey envelope, also when the existing session cannot decrypt it) with
 * a new responder session from our prekeys. Reads the store only. A
 * session start that was answered before (kl_session_apply records each)
 * never starts a session again: a relay re-delivering an old start cannot
 * replace a live session with a stale one. KL_ENOTFOUND (no session /
 * unknown prekey id), KL_EREPLAY (a used session start the current
 * sessions cannot decrypt), KL_ECRYPTO, KL_EPROTO. Success proves that the
 * sender holds the private half of in->sender_ik (X3DH binds it), not that
 * in->sender is its address. */
int kl_session_decrypt(kl_store_t *st, const kl_identity_t *me, const kl_inbound_t *in,
                       kl_decrypted_t *out);
/* Write the new session state, delete a consumed one-time prekey and
 * record a new session start as used. Call inside the caller's
 * transaction, which must roll back on an error: store errors (store.h).
 * kl_decrypted_free wipes and frees d's content and session record and
 * zeroes d (a zeroed one is fine). */
int kl_session_apply(kl_store_t *st, const char *peer, const kl_decrypted_t *d);
void kl_decrypted_free(kl_decrypted_t *d);

#endif
