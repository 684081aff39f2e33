/* Contacts and trust on first use: the first key seen for an address is
 * pinned; a different key later is never accepted silently: the contact is
 * flagged (key_changed, the new key kept as pending), sending is refused and
 * messages signed by the new key are held until the user compares safety
 * numbers and confirms.
 *
 * Proof before trust: the sender named inside a sealed-sender envelope is a
 * claim. Nothing about a contact changes because of an incoming message
 * until that message decrypted under a session bound to the claimed key
 * (proof of the key) AND the claimed address's relay vouches for that key
 * on lookup (proof that the key is that address's): Signal's rule. A claim
 * that fails either is counted and dropped, attributed to nobody.
 *
 * Writes are transactions of their own (so not inside the caller's:
 * KL_ESTATE then). Errors besides those named: store errors (store.h), and
 * for lookups kl_rpc_lookup's. */
#ifndef KOLLEGA_CLIENT_CONTACTS_H
#define KOLLEGA_CLIENT_CONTACTS_H

#include <stdint.h>

#include "net.h"
#include "store.h"

/* `contact add`: look address up and pin its key (unverified). *added = 0
 * if it was already a contact; if the relay's key differs from the pinned
 * one the contact is flagged and KL_EKEYCHANGED returned. KL_ENOTFOUND if
 * the relay has no such user and address is no contact yet (a contact
 * the relay no longer knows is kept: 0). *c gets the contact as stored. */
int kl_contacts_add(kl_store_t *st, kl_net_t *conn, const char *address, kl_contact_t *c,
                    int *added);

/* Before every send: look the address up; an unknown address is added
 * (TOFU); a key different from the pinned one flags the contact. Returns 0
 * with *c when sending may go ahead, KL_EKEYCHANGED when it must not (also
 * while a contact stays flagged), KL_ENOTFOUND for no such user. */
int kl_contacts_check_send(kl_store_t *st, kl_net_t *conn, const char *address,
                           kl_contact_t *c);
/* The same with address's delivery token on an unauthenticated conn. */
int kl_contacts_check_send_token(kl_store_t *st, kl_net_t *conn, const char *address,
                                 const uint8_t *token, kl_contact_t *c);

/* Does address's relay vouch for key (its lookup answers that key)? 0 with
 * *vouched set when the relay answered (no such user: *vouched = 0);
 * KL_EAGAIN when there is no connection or the relay cannot answer now
 * (its peer relay unreachable, rate limited): decide later; a failure of
 * the connection itself as kl_net_call. Writes nothing. */
int kl_contacts_vouch(kl_net_t *conn, const char *address, const uint8_t key[32],
                      int *vouched);

/* An incoming message from sender PROVED to come from the holder of key (it
 * decrypted under an X3DH/ratchet session bound to key) and key is the one
 * sender's relay vouches for. *accept = 1 when key is the pinned key, or
 * sender is no contact yet (key is then pinned, unverified). Otherwise the
 * contact is flagged with key as pending and *accept = 0: the caller holds
 * the message. Never call it on an unproven claim. Own transaction. */
int kl_contacts_on_proven(kl_store_t *st, const char *sender, const uint8_t key[32],
                          int *accept);

/* The key `contact verify` shows and --confirm accepts: the pending key of
 * a flagged contact, else the pinned key (NULL when it has neither). */
const uint8_t *kl_contacts_current_key(const kl_contact_t *c);

/* `contact verify` showed the safety number of key: remember it, since
 * --confirm accepts only that key. KL_ENOTFOUND if address is no contact.
 * Own transaction. */
int kl_contacts_shown(kl_store_t *st, const char *address, const uint8_t key[32]);

/* A key an owner-signed log (a group's or a channel's) names for address,
 * checked against the 1:1 pins and never written to them: a log's member
 * list is its signers' word, not the address owner's, so it neither
 * creates nor changes a contact. *conflict = 1 when address is a contact
 * pinned to another key, flagged, or without a key (the user must verify
 * it before anything secret goes to that key); 0 when the pin agrees or
 * there is none. Reads only. */
int kl_contacts_check_log_key(kl_store_t *st, const char *address, const uint8_t key[32],
                              int *conflict);

/* `contact verify --confirm`: accept expect, which must still be the
 * contact's current key (kl_contacts_current_key) — else KL_ESTATE and
 * nothing changes (a key that arrived after the user compared numbers is
 * never accepted). A pending key becomes the pinned key; the old session,
 * the contact's delivery token and messages held from any other key are
 * dropped; the contact is marked verified and *c gets it. KL_ENOTFOUND if
 * not a contact. One transaction. */
int kl_contacts_confirm(kl_store_t *st, const char *address, const uint8_t expect[32],
                        kl_contact_t *c);

/* `contact reject`: drop the pending key and every message held from a key
 * other than the pinned one; the contact goes back to its pinned key (or
 * is forgotten if it never had one) and *c gets it. *dropped = held
 * messages deleted. KL_ENOTFOUND if not a contact, KL_ESTATE when nothing
 * is pending. One transaction. */
int kl_contacts_reject(kl_store_t *st, const char *address, kl_contact_t *c, uint64_t *dropped);

#endif
