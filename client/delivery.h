/* Unidentified delivery: sealed sender at run time, not only at rest.
 *
 * Sealed sender hides the sender inside the envelope, but a send on a
 * connection authenticated as alice still shows the relay "alice -> bob"
 * while it runs. So each user has a random 32-byte delivery token; the
 * relay keeps only SHA-256 of it (DeliveryToken, sent on every
 * authenticated connection until the relay has it), and the user hands the
 * token itself to its contacts inside every 1:1 message (e2e
 * Content.delivery_token). A contact holding bob's token writes to bob on a
 * connection that is NOT authenticated: lookup and send carry the token,
 * the relay checks it and stores the message without ever knowing who sent
 * it (Signal's unidentified access, with a random token instead of a key
 * derived from a profile key). For a recipient on another relay, our relay
 * proxies the lookup with the token to the recipient's relay, which checks
 * it; only then does our relay take the send, and the recipient's relay
 * checks the token again on delivery. Without a token, or when a relay
 * refuses it, sending falls back to the authenticated path. What a relay
 * operator can still learn is in docs/SECURITY.md. */
#ifndef KOLLEGA_CLIENT_DELIVERY_H
#define KOLLEGA_CLIENT_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "store.h"

/* Our delivery token into token, made (random) and committed at first use
 * in a transaction of its own (so outside the caller's: KL_ESTATE inside
 * one then); another process's token made meanwhile is kept. Store
 * errors. */
int kl_delivery_own(kl_store_t *st, uint8_t token[32]);

/* On an authenticated connection: unless the relay confirmed the current
 * token within the last day, send DeliveryToken{SHA-256(token)} and
 * remember (own transaction) when it did. Relay errors as kl_net_call;
 * kl_delivery_own's and other store errors. */
int kl_delivery_publish(kl_store_t *st, kl_net_t *conn);

/* Sending with a token: rpc.h kl_rpc_send. */

#endif
