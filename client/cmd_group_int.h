/* What the `kollega group` commands share (cmd_group.c): opening and
 * syncing a group, and the words they show its state in. Internal to
 * cmd_group*.c. */
#ifndef KOLLEGA_CLIENT_CMD_GROUP_INT_H
#define KOLLEGA_CLIENT_CMD_GROUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cmdline/json.h"
#include "group.h"

/* Open, resolve the group address, connect and sync the group's ops.
 * need_log: the group must exist for us (we can read its log). Undo with
 * kl_cmdg_finish, also after a failure. */
int kl_cmdg_prepare(kl_cli_t *cli, const char *name, char *grp, kl_net_t **conn, kl_grp_t *x,
                    int need_log);
void kl_cmdg_finish(kl_net_t *conn, kl_grp_t *x);

const char *kl_cmdg_policy_name(kl_group_policy_t p);
const char *kl_cmdg_role_name(kl_group_role_t r);
/* "2 more approvals needed (policy all: 3 of 5 members approved)" */
void kl_cmdg_missing_text(const kl_grp_t *x, const kl_group_candidate_t *c, char *out,
                          size_t cap);
/* "messages expire after 14 days" / "... kept until read ..." */
void kl_cmdg_retention_text(uint32_t days, char *out, size_t cap);
/* Start the JSON result {"group": grp[, "action": action]};
 * kl_slog_json_line ends, prints and frees it. */
void kl_cmdg_json_begin(kl_json_t *j, const char *grp, const char *action);

#endif
