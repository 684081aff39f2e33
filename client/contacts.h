/* Contacts and trust on first use (DESIGN.md "Identities"): the first key
 * seen for an address is pinned; a different key later is never accepted
 * silently: the contact is flagged (key_changed, the new key kept as
 * pending), sending is refused and messages signed by the new key are held
 * until the user compares safety numbers and confirms. */
#ifndef KOLLEGA_CLIENT_CONTACTS_H
#define KOLLEGA_CLIENT_CONTACTS_H

#include <stdint.h>

#include "net.h"
#include "store.h"

/* Ask the relay for address's identity key. *exists = 0 if the relay has
 * no such user. Relay errors as kl_conn_call (UNAVAILABLE for users of
 * other relays). */
int kl_contacts_lookup(kl_conn_t *c, const char *address, int *exists, uint8_t key[32]);

/* `contact add`: look address up and pin its key (unverified). *added = 0
 * if it was already a contact; if the relay's key differs from the pinned
 * one the contact is flagged and KL_EKEYCHANGED returned. KL_ENOTFOUND if
 * the relay has no such user. *c gets the contact as stored. */
int kl_contacts_add(kl_store_t *st, kl_conn_t *conn, const char *address, kl_contact_t *c,
                    int *added);

/* Before every send: look the address up; an unknown address is added
 * (TOFU); a key different from the pinned one flags the contact. Returns 0
 * with *c when sending may go ahead, KL_EKEYCHANGED when it must not (also
 * while a contact stays flagged), KL_ENOTFOUND for no such user. */
int kl_contacts_check_send(kl_store_t *st, kl_conn_t *conn, const char *address,
                           kl_contact_t *c);

/* For an incoming message from sender signed with key: *accept = 1 if key
 * is the pinned key, or if sender is unknown and the relay (conn, may be
 * NULL when offline) confirms key, which is then pinned. Otherwise the
 * contact is created or flagged with key as pending and *accept = 0 (the
 * caller holds the message). Writes in its own transaction. If the lookup
 * fails for lack of a connection (not a relay refusal), KL_EAGAIN is
 * returned and nothing is written: decide again later. */
int kl_contacts_check_sender(kl_store_t *st, kl_conn_t *conn, const char *sender,
                             const uint8_t key[32], int *accept);

/* A key an owner-signed log (a group's or a channel's) names for address,
 * checked against the 1:1 pins and never written to them: a log's member
 * list is its signers' word, not the address owner's, so it neither
 * creates nor changes a contact. *conflict = 1 when address is a contact
 * pinned to another key, flagged, or without a key (the user must verify
 * it before anything secret goes to that key); 0 when the pin agrees or
 * there is none. Reads only. */
int kl_contacts_check_log_key(kl_store_t *st, const char *address, const uint8_t key[32],
                              int *conflict);

/* `contact verify --confirm`: accept the pending key if there is one (it
 * becomes the pinned key and the old session is dropped), mark verified.
 * KL_ENOTFOUND if not a contact, KL_ESTATE if there is no key at all. */
int kl_contacts_confirm(kl_store_t *st, const char *address, kl_contact_t *c);

#endif
