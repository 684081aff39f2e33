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

/* The group one `group` command acts on. */
typedef struct kl_cmdg {
    char grp[KL_ADDR_MAX + 1];   /* its address */
    char addr[KL_ADDR_MAX + 1];  /* the person the command names, if any */
    kl_net_t *conn;
    kl_grp_t x;                  /* the validated state */
    kl_group_opdesc_t d;         /* the op the command submits */
    kl_group_event_t ev;         /* and what it did */
} kl_cmdg_t;

/* Open, resolve the group address into g->grp, connect and sync the
 * group's ops. need_log: the group must exist for us (we can read its
 * log); without, a group the relay does not know is fine (for create).
 * Exit code, errors said: KL_EXIT_USAGE for an invalid group address,
 * KL_EXIT_FAIL for the store, the relay, or (need_log) a log we cannot
 * read. Undo with kl_cmdg_finish (closes g->conn, frees g->x), also after
 * a failure. */
int kl_cmdg_prepare(kl_cli_t *cli, const char *name, kl_cmdg_t *g, int need_log);
void kl_cmdg_finish(kl_cmdg_t *g);

/* The words for a policy ("all", "majority", "facilitators", else
 * "unknown") and a role ("facilitator", "member", else "none"): static
 * strings. */
const char *kl_cmdg_policy_name(kl_group_policy_t p);
const char *kl_cmdg_role_name(kl_group_role_t r);
/* "2 more approvals needed (policy all: 3 of 5 members approved)" */
void kl_cmdg_missing_text(const kl_grp_t *x, const kl_group_candidate_t *c, char *out,
                          size_t cap);
/* "messages expire after 14 days" / "... kept until read ..." */
void kl_cmdg_retention_text(uint32_t days, char *out, size_t cap);
/* Start the JSON result {"group": grp[, "action": action]};
 * kl_cli_json_line ends, prints and frees it. */
void kl_cmdg_json_begin(kl_json_t *j, const char *grp, const char *action);

#endif
