/* What the operator's commands need from storage (a backend implements it):
 * listing and revoking invites, invites bound to one handle (user reset),
 * listing and removing users, retired handles, and whole-database backup
 * and checks.
 *
 * A removed user's handle is retired: kept in a table of its own so that
 * no later invite can register it (kl_storage_register answers KL_EEXIST as
 * for a taken handle). Otherwise nothing of the account stays.
 *
 * An invite may be bound to a handle (kl_storage_invite_create_for): it
 * registers only that handle, and only while that user exists, and then
 * replaces the user's identity key instead of creating a user (the lost
 * device case). An invite without a handle never takes an existing or
 * retired handle. */
#ifndef KOLLEGA_RELAY_STORAGE_ADMIN_H
#define KOLLEGA_RELAY_STORAGE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "storage.h"

/* An invite's id: the first 6 bytes of SHA-256(code) in lower-case hex.
 * It names the invite without revealing anything that registers. */
#define KL_INVITE_ID_LEN 12
/* The shortest id prefix revoke accepts. */
#define KL_INVITE_ID_MIN 4

typedef struct kl_storage_invite_info {
    char id[KL_INVITE_ID_LEN + 1];
    uint32_t uses_left;
    uint64_t created_ms, expires_ms;
    char handle[KL_HANDLE_MAX + 1]; /* the handle a reset invite is bound to, else "" */
} kl_storage_invite_info_t;

typedef struct kl_storage_user_info {
    char handle[KL_HANDLE_MAX + 1];
    uint64_t created_ms;
    uint64_t entries, bytes; /* waiting in the inbox */
} kl_storage_user_info_t;

/* Invites with uses left and not expired at now_ms, oldest first: *out
 * malloc'd (NULL when *n is 0), free(). 0, KL_ENOMEM or a storage error
 * (then *out NULL, *n 0). */
int kl_storage_invite_list(kl_storage_t *st, uint64_t now_ms, kl_storage_invite_info_t **out,
                           size_t *n);
/* Delete the active invite whose id starts with prefix (at least
 * KL_INVITE_ID_MIN hex digits). KL_EINVAL for a malformed prefix,
 * KL_ENOTFOUND when none matches, KL_EEXIST when several do (ambiguous:
 * nothing deleted). */
int kl_storage_invite_revoke(kl_storage_t *st, const char *prefix, uint64_t now_ms);
/* kl_storage_invite_create bound to handle, which must be a user:
 * KL_ENOTFOUND otherwise. */
int kl_storage_invite_create_for(kl_storage_t *st, const char *code, uint32_t uses,
                                 uint64_t expires_ms, uint64_t now_ms, const char *handle);

/* The users of this relay (not federation's shadow users) by handle:
 * *out malloc'd (NULL when *n is 0), free(). 0, KL_ENOMEM or a storage
 * error (then *out NULL, *n 0). */
int kl_storage_user_list(kl_storage_t *st, kl_storage_user_info_t **out, size_t *n);
/* Delete handle's account: the user, its inbox and what waits in it, its
 * prekeys, delivery token, channel subscriptions, group cursors and the
 * invites bound to it; its group memberships no longer name a user here.
 * The handle is retired. *id (may be NULL) gets the removed user's id, for
 * closing its connections. KL_ENOTFOUND if no such user. The route cache
 * of st forgets the handle. */
int kl_storage_user_remove(kl_storage_t *st, const char *handle, uint64_t now_ms, uint64_t *id);

/* Write a consistent copy of st's whole database to path (which must not
 * exist) with the backend's online backup, as of one moment: writers of
 * other connections go on meanwhile. The copy is one self-contained file
 * the backend can open (for sqlite an ordinary rollback-journal database),
 * not yet synced to disk: the caller fsyncs and renames it. 0; KL_EEXIST
 * when path cannot be created (sqlite's CANTOPEN: path exists, but also a
 * missing or unwritable directory); else a storage error, and a partial
 * file may be left at path (the caller removes it). */
int kl_storage_backup(kl_storage_t *st, const char *path);
/* Check that path holds an intact relay database: integrity check, then
 * its meta name and public_key into name/key. KL_EPROTO when it is not a
 * relay database or fails the integrity check, KL_ENOTFOUND when it
 * cannot be opened. */
int kl_storage_check_file(const char *path, char *name, size_t name_cap, char *key,
                          size_t key_cap);

#endif
