/* Sending to one user over the relay: fetch a prekey bundle, hand a body
 * to `send`, and the whole path for one Content (start or continue the 1:1
 * session, encrypt, commit the ratchet, send). Used by `send` and by the
 * group code to distribute sender keys. */
#ifndef KOLLEGA_CLIENT_OUTBOUND_H
#define KOLLEGA_CLIENT_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "net.h"
#include "session.h"
#include "store.h"

/* prekey_fetch for addr: 0 with *b, KL_ENOTFOUND when addr has published
 * no signed prekey, KL_EPROTO for an answer about someone else, relay
 * errors as kl_net_call. */
int kl_out_fetch_bundle(kl_net_t *conn, const char *addr, kl_prekey_bundle_t *b);
/* send{to, body} -> *seq once the relay has committed it. */
int kl_out_send_body(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                     uint64_t *seq);
/* The same for a group message, with Send.group_index = the sender's
 * next_index (relay.proto: CONFLICT when a remove or leave came later). */
int kl_out_send_group_body(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                           uint64_t group_index, uint64_t *seq);
/* send{to, body, delivery_token} on an unauthenticated connection
 * (delivery.h): *seq once the relay committed it. KL_EREFUSED with
 * FORBIDDEN when the relay does not accept the token, RATE_LIMITED when
 * to takes no more unidentified messages now (send identified). */
int kl_out_send_unidentified(kl_net_t *conn, const char *to, const uint8_t token[32],
                             const uint8_t *body, size_t len, uint64_t *seq);
/* Encrypt c for peer (identity key peer_ik, which the caller has checked)
 * over the 1:1 session, starting one with a fetched bundle when needed,
 * and send it. KL_ENOTFOUND: peer has no prekeys; KL_EKEYCHANGED: the
 * relay's bundle is for another key; other errors as above. */
int kl_out_send_content(kl_store_t *st, const kl_identity_t *me, kl_net_t *conn,
                        const char *peer, const uint8_t peer_ik[32], const kl_content_t *c,
                        uint64_t *seq);

#endif
