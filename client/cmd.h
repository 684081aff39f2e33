/* The kollega commands. Each prints its own output (human, or JSON with
 * cli->json) and errors, and returns the process exit code (cli.h):
 * KL_EXIT_OK; KL_EXIT_USAGE for an argument the user must change (an
 * address, a name, a text); KL_EXIT_FAIL for an operational failure (the
 * store, the relay unreachable or refusing, a changed key). Commands that
 * open the store leave it in cli->st for the caller's kl_cli_close;
 * connections are closed before they return. */
#ifndef KOLLEGA_CLIENT_CMD_H
#define KOLLEGA_CLIENT_CMD_H

#include "cli.h"

/* `init`: create the home (0700) and the store under a temporary name,
 * register name with the invite's relay, upload prekeys (a failed upload
 * is said, not fatal), then rename the store into place. KL_EXIT_USAGE for
 * an invalid name, a malformed invite or an empty passphrase; KL_EXIT_FAIL
 * when an identity exists already, or the store, the passphrase, the relay
 * or the rename fails (no store is left behind unless registered). */
int kl_cmd_init(kl_cli_t *cli, const char *invite, const char *name, int no_passphrase);
/* `whoami`: our address, keys, relay, home and held/failed counts, from the
 * store only. KL_EXIT_FAIL only when the store does not open. */
int kl_cmd_whoami(kl_cli_t *cli);
/* `passphrase`: re-wrap the store key under a new passphrase (none with
 * no_passphrase; a store without one stays as it is). KL_EXIT_USAGE for an
 * empty new passphrase; KL_EXIT_FAIL when the store does not open, the new
 * one cannot be read or the re-wrap fails (nothing changed then). */
int kl_cmd_passphrase(kl_cli_t *cli, int no_passphrase);
/* `contact add`: look address up and pin its key (kl_contacts_add).
 * KL_EXIT_USAGE for an invalid or our own address; KL_EXIT_FAIL for no
 * such user, a changed key, a store or relay failure. */
int kl_cmd_contact_add(kl_cli_t *cli, const char *address);
/* `contact list`, from the store only: KL_EXIT_FAIL when it cannot be
 * read. */
int kl_cmd_contact_list(kl_cli_t *cli);
/* `contact verify`: show the safety number of the contact's current key
 * (adding the contact first if unknown) and remember it was shown; with
 * confirm, accept that key (number: the one the user typed after
 * --confirm, or NULL: the key shown last) and release the messages held
 * from it. KL_EXIT_USAGE for an invalid or our own address or a malformed
 * number; KL_EXIT_FAIL when the number or key does not match, or the store
 * or relay fails. */
int kl_cmd_contact_verify(kl_cli_t *cli, const char *address, int confirm, const char *number);
/* `contact reject`: drop the pending key (kl_contacts_reject). KL_EXIT_FAIL
 * when none is pending or the store fails; KL_EXIT_USAGE for an invalid
 * address. */
int kl_cmd_contact_reject(kl_cli_t *cli, const char *address);
/* `send` to a person (unidentified when we hold its delivery token) or, for
 * "#...", to a group (kl_cmd_group_send); text "-" reads the message from
 * stdin. KL_EXIT_USAGE for an invalid or our own address or an empty,
 * too long (also once encrypted) or non-UTF-8 text; KL_EXIT_FAIL when the
 * recipient is unknown,
 * its key changed, it has no prekeys, or the store or relay fails. A sent
 * message that cannot be stored in history is said, not a failure. */
int kl_cmd_send(kl_cli_t *cli, const char *address, const char *text);
/* `receive`: the inbox, groups and channels, printed; with follow until
 * SIGINT/SIGTERM, with timeout_s >= 0 until then (timeout_s < 0: none),
 * reconnecting with backoff. KL_EXIT_FAIL when the store fails, the relay
 * refuses, the connection fails without follow or timeout, or the first
 * connection fails without follow; a stop signal or the timeout ends it
 * with KL_EXIT_OK. */
int kl_cmd_receive(kl_cli_t *cli, int follow, long timeout_s);
/* `history`, from the store only, oldest of the newest limit (> 0) first:
 * address (a person, "#group" or "!channel") and search may be NULL.
 * Expired group messages are deleted first. KL_EXIT_USAGE for an invalid
 * address; KL_EXIT_FAIL when the store cannot be read (KL_ECRYPTO: it was
 * altered) or memory runs out. */
int kl_cmd_history(kl_cli_t *cli, const char *address, const char *search, long limit);

/* Groups (cmd_group.c, cmd_group_members.c). name is "#name" or
 * "#name@relay" (KL_EXIT_USAGE otherwise), an address a person's
 * (KL_EXIT_USAGE otherwise). Each opens the store, connects, syncs the
 * group's ops and, for a change, builds the op, checks it against the
 * group's rules (a refusal is explained: KL_EXIT_FAIL), submits it and
 * stores it; store and relay failures are KL_EXIT_FAIL. */
/* "all"/"majority"/"facilitators" -> KL_POLICY_*; KL_EINVAL otherwise. */
int kl_cmd_group_policy(const char *s, int *policy);
/* `group create` (KL_EXIT_FAIL if the group exists); we become its
 * facilitator. */
int kl_cmd_group_create(kl_cli_t *cli, const char *name, int policy, long retention_days);
/* `group invite`: address (looked up and pinned like a send; KL_EXIT_FAIL
 * for no such user or a changed key) becomes a candidate. */
int kl_cmd_group_invite(kl_cli_t *cli, const char *name, const char *address);
/* `group request`: ask to join (KL_EXIT_FAIL for no such group, or when we
 * are a member or candidate already). */
int kl_cmd_group_request(kl_cli_t *cli, const char *name);
/* `group approve`: approve a candidate once its relay gives the key the
 * log names and our pin agrees (else KL_EXIT_FAIL, as when it is no
 * candidate or we approved already). */
int kl_cmd_group_approve(kl_cli_t *cli, const char *name, const char *address);
/* `group members`: members, roles, votes and candidates from our validated
 * log (KL_EXIT_FAIL when we cannot read it). */
int kl_cmd_group_members(kl_cli_t *cli, const char *name);
/* `group remove`: remove a member or refuse a candidate (a vote under
 * policy majority); KL_EXIT_USAGE for ourselves (that is leave),
 * KL_EXIT_FAIL when address is neither. */
int kl_cmd_group_remove(kl_cli_t *cli, const char *name, const char *address);
/* `group leave` (successor may be NULL: the member who becomes facilitator
 * if we are the last), then forget the group's keys (a failure to forget
 * is said, not returned). KL_EXIT_FAIL when successor is no member. */
int kl_cmd_group_leave(kl_cli_t *cli, const char *name, const char *successor);
/* `group role`: role is "facilitator" or "member" (KL_EXIT_USAGE
 * otherwise); KL_EXIT_FAIL when address is no member. */
int kl_cmd_group_role(kl_cli_t *cli, const char *name, const char *address, const char *role);
/* `group policy` (policy: kl_group_policy_t) and `group retention` (days,
 * 0 = until read): facilitators only (else KL_EXIT_FAIL). */
int kl_cmd_group_set_policy(kl_cli_t *cli, const char *name, int policy);
int kl_cmd_group_set_retention(kl_cli_t *cli, const char *name, long days);
/* Send text to the group (already checked: non-empty UTF-8, at most
 * KL_TEXT_MAX). KL_EXIT_USAGE when it is too large once encrypted;
 * KL_EXIT_FAIL when we are no member, the group is blocked (an invalid log
 * or a fork), or the relay refuses. */
int kl_cmd_group_send(kl_cli_t *cli, const char *name, const char *text, size_t len);

#endif
