/* Sending one Content to one user over the relay: start or continue the
 * 1:1 session (fetching a prekey bundle when needed), encrypt, commit the
 * ratchet, send. Used by the group and channel code to hand out keys. */
#ifndef KOLLEGA_CLIENT_OUTBOUND_H
#define KOLLEGA_CLIENT_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "net.h"
#include "session.h"
#include "store.h"

/* Encrypt c for peer (identity key peer_ik, which the caller has checked)
 * over the 1:1 session, starting one with a fetched bundle when needed
 * (kl_session_encrypt_content: the ratchet is committed first, so outside
 * the caller's transaction), and send it identified; *seq as kl_rpc_send.
 * KL_ENOTFOUND: peer has no prekeys; KL_EKEYCHANGED: the relay's bundle is
 * for another key; KL_ECRYPTO: its signature does not verify; relay errors
 * as rpc.h; store errors. */
int kl_out_send_content(kl_store_t *st, const kl_identity_t *me, kl_net_t *conn,
                        const char *peer, const uint8_t peer_ik[32], const kl_content_t *c,
                        uint64_t *seq);

#endif
