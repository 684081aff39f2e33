/* The kollega commands. Each returns the process exit code (cli.h) and
 * prints its own output (human, or JSON with cli->json) and errors. */
#ifndef KOLLEGA_CLIENT_CMD_H
#define KOLLEGA_CLIENT_CMD_H

#include "cli.h"

int kl_cmd_init(kl_cli_t *cli, const char *invite, const char *name, int no_passphrase);
int kl_cmd_whoami(kl_cli_t *cli);
/* Change the store's passphrase (to none with no_passphrase). */
int kl_cmd_passphrase(kl_cli_t *cli, int no_passphrase);
int kl_cmd_contact_add(kl_cli_t *cli, const char *address);
int kl_cmd_contact_list(kl_cli_t *cli);
/* number: the safety number the user typed after --confirm, or NULL. */
int kl_cmd_contact_verify(kl_cli_t *cli, const char *address, int confirm, const char *number);
int kl_cmd_contact_reject(kl_cli_t *cli, const char *address);
/* text "-" reads the message from stdin. */
int kl_cmd_send(kl_cli_t *cli, const char *address, const char *text);
/* timeout_s < 0: none. */
int kl_cmd_receive(kl_cli_t *cli, int follow, long timeout_s);
/* address and search may be NULL; limit > 0. */
int kl_cmd_history(kl_cli_t *cli, const char *address, const char *search, long limit);

/* Groups (cmd_group.c). name is "#name" or "#name@relay". */
/* "all"/"majority"/"facilitators" -> KL_POLICY_*; KL_EINVAL otherwise. */
int kl_cmd_group_policy(const char *s, int *policy);
int kl_cmd_group_create(kl_cli_t *cli, const char *name, int policy, long retention_days);
int kl_cmd_group_invite(kl_cli_t *cli, const char *name, const char *address);
int kl_cmd_group_request(kl_cli_t *cli, const char *name);
int kl_cmd_group_approve(kl_cli_t *cli, const char *name, const char *address);
int kl_cmd_group_members(kl_cli_t *cli, const char *name);
int kl_cmd_group_remove(kl_cli_t *cli, const char *name, const char *address);
/* successor may be NULL. */
int kl_cmd_group_leave(kl_cli_t *cli, const char *name, const char *successor);
int kl_cmd_group_role(kl_cli_t *cli, const char *name, const char *address, const char *role);
/* set_policy (policy: kl_group_policy_t) and set_retention (days, 0 = until read). */
int kl_cmd_group_set_policy(kl_cli_t *cli, const char *name, int policy);
int kl_cmd_group_set_retention(kl_cli_t *cli, const char *name, long days);
/* text already checked (non-empty UTF-8, at most KL_TEXT_MAX). */
int kl_cmd_group_send(kl_cli_t *cli, const char *name, const char *text, size_t len);

#endif
