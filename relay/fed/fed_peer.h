/* The configured peers of the federation module as its parts and its unit
 * tests see them, without the module's internals (fed_int.h, private to
 * relay/fed/): the opaque fed_peer_t and what may be asked of one, how an
 * inbound link names its peer (fed_ident.c), and how a peer's answer to a
 * proxied group request is taken (fed_group.c). Everything here runs on the
 * loop thread. */
#ifndef KOLLEGA_RELAY_FED_PEER_H
#define KOLLEGA_RELAY_FED_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "fed.h"
#include "federation.pb-c.h"
#include "kollega/noise.h"

typedef Kollega__Federation__V1__FedFrame kl_fedframe_t;
typedef struct fed_peer fed_peer_t;

/* Largest handshake frame (KK messages are 48 bytes; message 1 has the
 * 16-byte hint in front). */
#define FED_HS_MAX 128

/* fed_peers.c. Peers belong to the module (they live until kl_fed_free):
 * the configured peer i (i below kl_fed_peer_count); the peer with storage
 * id id, configured or removed by a reload, or NULL; a peer's
 * configuration; and 1 if a reload (kl_fed_set_peers) removed it (it is
 * never dialled again), else 0. */
fed_peer_t *kl_fed_peer_at(const kl_fed_t *f, size_t i);
fed_peer_t *kl_fed_peer_by_id(kl_fed_t *f, uint64_t id);
const kl_storage_peer_t *kl_fed_peer_cfg(const fed_peer_t *p);
int kl_fed_peer_removed(const fed_peer_t *p);

/* fed_ident.c: derive every peer's hint key (kl_fed_new; 0 or KL_ENOMEM);
 * the first frame an initiator sends on p's link (hint || Noise message 1,
 * cap >= KL_FEDHINT_LEN + the message) into out; and the responder's
 * side: the peer whose hint leads the first frame msg, with the Noise
 * handshake that read its message 1 in *hs (the caller frees it), or NULL
 * (no hint matched, or the one handshake it names failed). */
int kl_fed_hint_keys(kl_fed_t *f);
int kl_fed_hello(fed_peer_t *p, kl_noise_hs_t *hs, uint8_t *out, size_t cap, size_t *outlen);
fed_peer_t *kl_fed_identify(kl_fed_t *f, const uint8_t *msg, size_t len, kl_noise_hs_t **hs);
/* fed_ident.c: the hint key of configured peer i (KL_FEDHINT_KEY bytes of
 * the module's guarded memory), and how many Noise handshakes inbound
 * links have tried since kl_fed_new. */
const uint8_t *kl_fed_hint_key(const kl_fed_t *f, size_t i);
uint64_t kl_fed_hs_tries(const kl_fed_t *f);

/* fed_group.c: take the answer fr (a group_reply) of peer p to a GROUP or
 * GROUP_LIST job: 0, or -1 if it is malformed or does not fit the request
 * (a peer lists only its own groups). fr may be robbed of its body (the
 * job then owns it). */
int kl_fedgroup_answer(fed_peer_t *p, kl_job_t *job, kl_fedframe_t *fr);

#endif
