/* `kollega group ...` (but `group members`, cmd_group_members.c) and
 * `kollega send #GROUP TEXT`.
 *
 * Every command opens the store, connects, brings the local copy of the
 * group's log up to date (validating every op), then acts on that state.
 * Refusals are explained from the validated state before anything is sent
 * (not a member, approval already given, only facilitators, ...), and
 * after invite/approve the user learns whether the candidate is now a
 * member or how many approvals are still missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_group_int.h"
#include "cmdline/json.h"
#include "contacts.h"
#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/safety.h"
#include "rpc.h"
#include "signedlog.h"
#include "store_group.h"
#include "util.h"

/* Say why on stderr, then KL_EXIT_FAIL: `rc = cli_fail(...); goto out;`. */
#define cli_fail(...) (kl_cli_err(__VA_ARGS__), KL_EXIT_FAIL)

const char *kl_cmdg_policy_name(kl_group_policy_t p)
{
    switch (p) {
    case KL_POLICY_ALL: return "all";
    case KL_POLICY_MAJORITY: return "majority";
    case KL_POLICY_FACILITATORS: return "facilitators";
    }
    return "unknown";
}

const char *kl_cmdg_role_name(kl_group_role_t r)
{
    return r == KL_ROLE_FACILITATOR ? "facilitator" : r == KL_ROLE_MEMBER ? "member" : "none";
}

int kl_cmd_group_policy(const char *s, int *policy)
{
    if (strcmp(s, "all") == 0)
        *policy = KL_POLICY_ALL;
    else if (strcmp(s, "majority") == 0)
        *policy = KL_POLICY_MAJORITY;
    else if (strcmp(s, "facilitators") == 0)
        *policy = KL_POLICY_FACILITATORS;
    else
        return KL_EINVAL;
    return 0;
}

int kl_cmdg_prepare(kl_cli_t *cli, const char *name, kl_cmdg_t *g, int need_log)
{
    int rc = kl_cli_open(cli);
    memset(g, 0, sizeof *g);
    if (rc)
        return rc;
    if (kl_grp_address(cli, name, g->grp, sizeof g->grp) != 0) {
        kl_cli_err("'%s' is not a group address; groups look like #erfa or #erfa@%s", name,
                   cli->relay.name);
        return KL_EXIT_USAGE;
    }
    if ((rc = kl_cli_connect(cli, &g->conn)))
        return rc;
    int r = kl_grp_load(cli, g->grp, &g->x);
    if (r) {
        kl_cli_err("cannot read %s from your store (%s)", g->grp, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    r = kl_grp_sync_ops(cli, g->conn, &g->x);
    if (r == KL_EREFUSED && kl_net_relay_error(g->conn) == KL_WIRE_ERR_NOT_FOUND) {
        if (!need_log)
            return KL_EXIT_OK;
        kl_cli_err("the relay knows no group %s; check the name, or create it with `kollega "
                   "group create %s`", g->grp, g->grp);
        return KL_EXIT_FAIL;
    }
    if (r) {
        kl_cli_relay_fail(g->conn, r, "read the group's log");
        return KL_EXIT_FAIL;
    }
    if (need_log && kl_group_next_index(g->x.g) == 0) {
        if (g->x.invalid)
            kl_cli_err("%s cannot be used: its log from the relay is invalid", g->grp);
        else
            kl_cli_err("you are not a member of %s; ask to join with `kollega group request "
                       "%s`", g->grp, g->grp);
        return KL_EXIT_FAIL;
    }
    return KL_EXIT_OK;
}

/* prepare (need_log) for a command that names a person: address, completed
 * to a user address, goes into g->addr. */
static int prepare_for(kl_cli_t *cli, const char *name, const char *address, kl_cmdg_t *g)
{
    char addr[KL_ADDR_MAX + 1] = "";
    int rc = kl_cli_user_address(address, addr, sizeof addr);
    if (rc == 0)
        rc = kl_cmdg_prepare(cli, name, g, 1);
    else
        memset(g, 0, sizeof *g);
    memcpy(g->addr, addr, sizeof addr);
    return rc;
}

void kl_cmdg_finish(kl_cmdg_t *g)
{
    kl_grp_free(&g->x);
    kl_net_close(g->conn);
    g->conn = NULL;
}

static int find_member(const kl_grp_t *x, const char *addr, kl_group_member_t *m)
{
    for (size_t i = 0; i < kl_group_member_count(x->g); i++)
        if (kl_group_member_at(x->g, i, m) == 0 && strcmp(m->address, addr) == 0)
            return 0;
    return KL_ENOTFOUND;
}

static int find_candidate(const kl_grp_t *x, const char *addr, const uint8_t *key,
                          kl_group_candidate_t *c)
{
    for (size_t i = 0; i < kl_group_candidate_count(x->g); i++)
        if (kl_group_candidate_at(x->g, i, c) == 0 &&
            ((addr && strcmp(c->address, addr) == 0) ||
             (key && kl_memcmp(c->key, key, 32) == 0)))
            return 0;
    return KL_ENOTFOUND;
}

/* "2 more approvals needed (policy all: 3 of 5 members approved)" */
void kl_cmdg_missing_text(const kl_grp_t *x, const kl_group_candidate_t *c, char *out,
                          size_t cap)
{
    kl_group_policy_t p = kl_group_policy(x->g);
    size_t members = kl_group_member_count(x->g);
    if (p == KL_POLICY_FACILITATORS)
        snprintf(out, cap, "a facilitator's approval is needed (policy facilitators)");
    else
        snprintf(out, cap, "%zu more approval%s needed (policy %s: %zu of %zu members approved%s)",
                 c->missing, c->missing == 1 ? "" : "s", kl_cmdg_policy_name(p), c->approvals, members,
                 p == KL_POLICY_MAJORITY ? ", more than half needed" : "");
}

/* Explain a local refusal. */
static int refused(const kl_grp_t *x, kl_group_verr_t why, const char *target)
{
    kl_group_member_t m;
    char facs[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < kl_group_member_count(x->g); i++)
        if (kl_group_member_at(x->g, i, &m) == 0 && m.role == KL_ROLE_FACILITATOR && off < 400) {
            int n = snprintf(facs + off, sizeof facs - off, "%s%s", off ? ", " : "", m.address);
            off += n > 0 ? (size_t)n : 0;
        }
    switch (why) {
    case KL_GV_NOT_MEMBER:
        kl_cli_err("you are not a member of %s%s%s", x->address, target ? " (or " : "",
                   target ? "the person you named is not)" : "");
        break;
    case KL_GV_NOT_FACILITATOR:
        kl_cli_err("only a facilitator of %s can do this; ask %s", x->address, facs);
        break;
    case KL_GV_ALREADY_MEMBER:
        kl_cli_err("%s is already a member of %s", target ? target : "you", x->address);
        break;
    case KL_GV_ALREADY_CANDIDATE:
        kl_cli_err("%s has already been invited to or asked to join %s; members approve with "
                   "`kollega group approve %s ADDRESS`", target ? target : "you", x->address,
                   x->address);
        break;
    case KL_GV_NOT_CANDIDATE:
        kl_cli_err("%s has not been invited to or asked to join %s; see `kollega group members "
                   "%s`", target ? target : "that person", x->address, x->address);
        break;
    case KL_GV_LAST_FACILITATOR:
        kl_cli_err("%s would leave %s without a facilitator; name another facilitator first "
                   "(`kollega group role %s ADDRESS facilitator`)%s",
                   target ? target : "this", x->address, x->address,
                   target ? "" : " or leave with --successor ADDRESS");
        break;
    case KL_GV_SUCCESSOR:
        kl_cli_err("you are the last facilitator of %s: leave with --successor ADDRESS naming "
                   "a current member", x->address);
        break;
    case KL_GV_CLOSED:
        kl_cli_err("%s is closed: it has no members left", x->address);
        break;
    case KL_GV_LIMIT:
        kl_cli_err("%s has reached its limit of members or candidates", x->address);
        break;
    case KL_GV_ADDRESS_TAKEN:
        kl_cli_err("%s is already a member or candidate of %s under another identity key; see "
                   "`kollega group members %s`", target ? target : "your address", x->address,
                   x->address);
        break;
    default:
        kl_cli_err("%s refuses this (%s)", x->address, kl_group_verr_str(why));
        break;
    }
    return KL_EXIT_FAIL;
}

/* The exit code for the result r of submitting an op to x: a local
 * refusal (KL_ESTATE) explained from why and target, another failure from
 * the relay's answer; KL_EXIT_OK for r == 0. */
static int submit_result(kl_net_t *conn, const kl_grp_t *x, int r, kl_group_verr_t why,
                         const char *target)
{
    if (r == KL_ESTATE)
        return refused(x, why, target);
    if (r == KL_ECRYPTO)
        kl_cli_err("%s cannot be changed: the relay's copy of its log is invalid", x->address);
    else if (r)
        kl_cli_relay_fail(conn, r, "record the group change");
    return r ? KL_EXIT_FAIL : KL_EXIT_OK;
}

/* Submit d; print refusals. Exit code. Members the op admitted get our
 * group key right away (best effort: else on the next send or receive). */
static int submit(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const kl_group_opdesc_t *d,
                  const char *target, kl_group_event_t *ev)
{
    kl_group_verr_t why = KL_GV_OK;
    int r = kl_grp_submit(cli, conn, x, d, ev, &why);
    if (r)
        return submit_result(conn, x, r, why, target);
    if (ev->admitted && (r = kl_grp_distribute(cli, conn, x)))
        kl_grp_warn(cli, x->address, "key_not_sent",
                    "could not give your group key to the new member%s yet (%s); it is retried "
                    "on the next send or receive", ev->admitted == 1 ? "" : "s", kl_strerror(r));
    return KL_EXIT_OK;
}

/* 1 if the op admitted key (one op may admit several). */
static int admitted_by(const kl_group_event_t *ev, const uint8_t key[32])
{
    for (int i = 0; i < ev->admitted && i < KL_GROUP_MAX_CANDIDATES; i++)
        if (kl_memcmp(ev->admitted_keys[i], key, 32) == 0)
            return 1;
    return 0;
}

/* "messages expire after 14 days" / "... kept until read ..." */
void kl_cmdg_retention_text(uint32_t days, char *out, size_t cap)
{
    if (days)
        snprintf(out, cap, "messages expire after %u day%s", days, days == 1 ? "" : "s");
    else
        snprintf(out, cap, "messages are kept until read, at most the relay's TTL (default 30 "
                           "days)");
}

/* Start the JSON result {"group": grp[, "action": action]};
 * kl_cli_json_line ends, prints and frees it. */
void kl_cmdg_json_begin(kl_json_t *j, const char *grp, const char *action)
{
    kl_cli_json_begin(j, "group", grp);
    if (action)
        kl_json_str(j, "action", action);
}

int kl_cmd_group_create(kl_cli_t *cli, const char *name, int policy, long retention)
{
    kl_cmdg_t g;
    int rc = kl_cmdg_prepare(cli, name, &g, 0);
    if (rc)
        goto out;
    if (kl_group_next_index(g.x.g) > 0 || g.x.relay_next > 0) {
        rc = cli_fail("the group %s exists already; choose another name", g.grp);
        goto out;
    }
    g.d.kind = KL_GOP_CREATE;
    g.d.policy = (kl_group_policy_t)policy;
    g.d.days = (uint32_t)retention;
    kl_group_verr_t why = KL_GV_OK;
    int r = kl_grp_submit(cli, g.conn, &g.x, &g.d, &g.ev, &why);
    if (r == KL_EREFUSED && kl_net_relay_error(g.conn) == KL_WIRE_ERR_CONFLICT) {
        rc = cli_fail("the group %s exists already; choose another name", g.grp);
        goto out;
    }
    if ((rc = submit_result(g.conn, &g.x, r, why, NULL)))
        goto out;
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, g.grp, NULL);
        kl_json_str(&j, "policy", kl_cmdg_policy_name(g.d.policy));
        kl_json_uint(&j, "retention_days", g.d.days);
        kl_json_str(&j, "role", "facilitator");
        kl_cli_json_line(&j);
    } else {
        char ret[128];
        kl_cmdg_retention_text(g.d.days, ret, sizeof ret);
        printf("Created %s (admission policy %s; %s). ", g.grp, kl_cmdg_policy_name(g.d.policy),
               ret);
        printf("You are its facilitator; invite members with `kollega group invite %s "
               "ADDRESS`.\n", g.grp);
    }
    rc = KL_EXIT_OK;
out:
    kl_cmdg_finish(&g);
    return rc;
}

/* Output after invite/approve/request: admitted, or what is missing. */
static void candidate_result(const kl_cli_t *cli, const kl_grp_t *x, const char *verb,
                             const char *who, const uint8_t key[32], const kl_group_event_t *ev,
                             const char *safety)
{
    kl_group_candidate_t c;
    char miss[256] = "";
    int admitted = admitted_by(ev, key);
    int still = !admitted && find_candidate(x, NULL, key, &c) == 0;
    if (still)
        kl_cmdg_missing_text(x, &c, miss, sizeof miss);
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, x->address, verb);
        kl_json_str(&j, "candidate", who);
        kl_json_bool(&j, "admitted", admitted);
        if (safety)
            kl_json_str(&j, "safety_number", safety);
        if (still) {
            kl_json_uint(&j, "approvals", c.approvals);
            kl_json_uint(&j, "missing", c.missing);
            kl_json_uint(&j, "members", kl_group_member_count(x->g));
            kl_json_str(&j, "policy", kl_cmdg_policy_name(kl_group_policy(x->g)));
        }
        kl_cli_json_line(&j);
        return;
    }
    if (admitted)
        printf("%s is now a member of %s (admitted).\n", who, x->address);
    else if (still)
        printf("%s %s for %s: %s.\n", verb, who, x->address, miss);
    else
        printf("%s %s for %s.\n", verb, who, x->address);
    if (safety) {
        char disp[KL_SAFETY_DISPLAY];
        if (kl_safety_display(safety, disp) == 0)
            printf("Your safety number with %s (compare it with them in person or by phone):\n"
                   "  %s\n", who, disp);
    }
}

/* The 60-digit safety number between us and (key, addr), displayed in
 * groups of five into disp; *num (61 bytes) gets the digits. */
static int safety_of(const kl_cli_t *cli, const uint8_t key[32], const char *addr,
                     char num[KL_SAFETY_DIGITS + 1], char disp[KL_SAFETY_DISPLAY])
{
    int r = kl_safety_number(cli->me.pk, cli->me.address, key, addr, num);
    return r ? r : kl_safety_display(num, disp);
}

/* Before an approval: the candidate's key in the log must be the key the
 * address's relay gives for it (kl_rpc_lookup; remote users through
 * our relay) and must agree with our own pin of that address, if any.
 * Otherwise a member could have attached someone else's address to its own
 * key. KL_EXIT_OK with num set to our safety number with the candidate, or
 * the exit code of a refusal (explained on stderr). */
static int vouch_candidate(kl_cli_t *cli, kl_net_t *conn, const char *grp,
                           const kl_group_candidate_t *c, char num[KL_SAFETY_DIGITS + 1])
{
    char disp[KL_SAFETY_DISPLAY], other_num[KL_SAFETY_DIGITS + 1], other[KL_SAFETY_DISPLAY];
    uint8_t relay_key[32];
    int exists = 0, conflict = 0;
    int r = kl_rpc_lookup(conn, c->address, NULL, &exists, relay_key);
    if (r)
        return kl_cli_relay_fail(conn, r, "look up the candidate");
    if ((r = safety_of(cli, c->key, c->address, num, disp))) {
        kl_cli_err("cannot compute the safety number (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    if (!exists)
        return cli_fail("%s's relay knows no user %s, yet %s names that address as a candidate; "
                        "nothing was approved. Ask whoever invited them which address they "
                        "meant", c->address, c->address, grp);
    if (kl_memcmp(relay_key, c->key, 32) != 0) {
        if (safety_of(cli, relay_key, c->address, other_num, other) != 0)
            snprintf(other, sizeof other, "(not computable)");
        return cli_fail("nothing was approved: the candidate %s in %s has an identity key that "
                        "is not the one %s's relay gives for that address. Safety number with "
                        "the key in the group: %s; with the key of %s: %s. Someone may have put "
                        "%s's address on another key: compare the safety number with %s in "
                        "person or by phone (`kollega contact verify %s`) before approving",
                        c->address, grp, c->address, disp, c->address, other, c->address,
                        c->address, c->address);
    }
    if ((r = kl_contacts_check_log_key(cli->st, c->address, c->key, &conflict))) {
        kl_cli_err("cannot read your contacts (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    if (conflict)
        return cli_fail("nothing was approved: you pinned another identity key for %s than the "
                        "one %s names (or their key changed and is not verified yet). Safety "
                        "number with the key in the group: %s. Verify first with `kollega "
                        "contact verify %s`", c->address, grp, disp, c->address);
    return KL_EXIT_OK;
}

int kl_cmd_group_invite(kl_cli_t *cli, const char *name, const char *address)
{
    kl_cmdg_t g;
    kl_contact_t c;
    int rc = prepare_for(cli, name, address, &g);
    if (rc)
        goto out;
    int r = kl_contacts_check_send(cli->st, g.conn, g.addr, &c);
    if (r == KL_ENOTFOUND) {
        rc = cli_fail("the relay knows no user %s; check the address", g.addr);
        goto out;
    }
    if (r == KL_EKEYCHANGED) {
        rc = cli_fail("nothing was sent: the identity key the relay gives for %s differs from "
                      "the one you pinned (or is not verified yet); verify first with `kollega "
                      "contact verify %s`, then invite them", g.addr, g.addr);
        goto out;
    }
    if (r) {
        rc = kl_cli_relay_fail(g.conn, r, "look up the person to invite");
        goto out;
    }
    g.d.kind = KL_GOP_INVITE;
    memcpy(g.d.target, c.key, 32);
    if (strlen(g.addr) >= sizeof g.d.target_address) {
        rc = cli_fail("the address %s is too long for a group log", g.addr);
        goto out;
    }
    memcpy(g.d.target_address, g.addr, strlen(g.addr) + 1);
    if ((rc = submit(cli, g.conn, &g.x, &g.d, g.addr, &g.ev)))
        goto out;
    char num[KL_SAFETY_DIGITS + 1];
    int have_num = kl_safety_number(cli->me.pk, cli->me.address, c.key, g.addr, num) == 0;
    candidate_result(cli, &g.x, "invited", g.addr, c.key, &g.ev, have_num ? num : NULL);
out:
    kl_cmdg_finish(&g);
    return rc;
}

int kl_cmd_group_request(kl_cli_t *cli, const char *name)
{
    kl_cmdg_t g;
    int rc = kl_cmdg_prepare(cli, name, &g, 0);
    if (rc)
        goto out;
    int r = kl_grp_request(cli, g.conn, &g.x, &g.ev);
    if (r == KL_EEXIST) {
        int member = kl_group_role_of(g.x.g, cli->me.pk) != KL_ROLE_NONE;
        rc = cli_fail("you are already %s of %s", member ? "a member" : "a candidate", g.grp);
        goto out;
    }
    if (r == KL_ENOTFOUND ||
        (r == KL_EREFUSED && kl_net_relay_error(g.conn) == KL_WIRE_ERR_NOT_FOUND)) {
        rc = cli_fail("the relay knows no group %s; check the name", g.grp);
        goto out;
    }
    if ((rc = submit_result(g.conn, &g.x, r, KL_GV_CLOSED, NULL)))
        goto out;
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, g.grp, "requested");
        kl_json_str(&j, "policy", kl_cmdg_policy_name(kl_group_policy(g.x.g)));
        kl_cli_json_line(&j);
    } else {
        printf("Asked to join %s; you become a member once the members agree (policy %s).\n",
               g.grp, kl_cmdg_policy_name(kl_group_policy(g.x.g)));
    }
out:
    kl_cmdg_finish(&g);
    return rc;
}

int kl_cmd_group_approve(kl_cli_t *cli, const char *name, const char *address)
{
    char miss[256];
    kl_cmdg_t g;
    kl_group_candidate_t c;
    kl_group_member_t m;
    int rc = prepare_for(cli, name, address, &g);
    if (rc)
        goto out;
    if (find_candidate(&g.x, g.addr, NULL, &c) != 0) {
        if (find_member(&g.x, g.addr, &m) == 0)
            rc = cli_fail("%s is already a member of %s", g.addr, g.grp);
        else
            rc = cli_fail("%s has not been invited to or asked to join %s; see `kollega group "
                          "members %s`", g.addr, g.grp, g.grp);
        goto out;
    }
    if (kl_group_role_of(g.x.g, cli->me.pk) != KL_ROLE_NONE &&
        kl_group_has_approved(g.x.g, c.key, cli->me.pk)) {
        kl_cmdg_missing_text(&g.x, &c, miss, sizeof miss);
        rc = cli_fail("you have already approved %s for %s (approval already given); %s", g.addr,
                      g.grp, miss);
        goto out;
    }
    char num[KL_SAFETY_DIGITS + 1];
    if ((rc = vouch_candidate(cli, g.conn, g.grp, &c, num)))
        goto out;
    g.d.kind = KL_GOP_APPROVE;
    memcpy(g.d.target, c.key, 32);
    if ((rc = submit(cli, g.conn, &g.x, &g.d, g.addr, &g.ev)))
        goto out;
    candidate_result(cli, &g.x, "approved", g.addr, c.key, &g.ev, num);
out:
    kl_cmdg_finish(&g);
    return rc;
}

/* remove and role: the target must be a member. */
static int member_op(kl_cli_t *cli, const char *name, const char *address, kl_group_opkind_t kind,
                     kl_group_role_t role)
{
    kl_cmdg_t g;
    kl_group_member_t m;
    kl_group_candidate_t c;
    int rc = prepare_for(cli, name, address, &g);
    if (rc)
        goto out;
    g.d.kind = kind;
    g.d.role = role;
    if (find_member(&g.x, g.addr, &m) == 0) {
        memcpy(g.d.target, m.key, 32);
    } else if (kind == KL_GOP_REMOVE && find_candidate(&g.x, g.addr, NULL, &c) == 0) {
        memcpy(g.d.target, c.key, 32); /* refusing a candidate */
    } else {
        rc = cli_fail("%s is not a member of %s; see `kollega group members %s`", g.addr, g.grp,
                      g.grp);
        goto out;
    }
    if (kind == KL_GOP_REMOVE && strcmp(g.addr, cli->me.address) == 0) {
        kl_cli_err("to leave %s yourself use `kollega group leave %s`", g.grp, g.grp);
        rc = KL_EXIT_USAGE;
        goto out;
    }
    if ((rc = submit(cli, g.conn, &g.x, &g.d, g.addr, &g.ev)))
        goto out;
    /* Under policy majority a member's remove is a vote: the target stays
     * until enough current members voted. */
    size_t missing = 0, votes = 0;
    int vote = kind == KL_GOP_REMOVE && kl_group_role_of(g.x.g, g.d.target) != KL_ROLE_NONE;
    if (vote)
        votes = kl_group_removal_votes(g.x.g, g.d.target, &missing);
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, g.grp, vote ? "vote" : kind == KL_GOP_REMOVE ? "removed" : "role");
        kl_json_str(&j, "member", g.addr);
        if (kind == KL_GOP_SET_ROLE)
            kl_json_str(&j, "role", kl_cmdg_role_name(role));
        if (vote) {
            kl_json_uint(&j, "votes", votes);
            kl_json_uint(&j, "missing", missing);
        }
        kl_json_bool(&j, "removed", kind == KL_GOP_REMOVE && !vote);
        kl_cli_json_line(&j);
    } else if (vote) {
        printf("vote recorded: %zu more vote%s needed to remove %s from %s (%zu so far).\n",
               missing, missing == 1 ? "" : "s", g.addr, g.grp, votes);
    } else if (kind == KL_GOP_REMOVE) {
        printf("%s was removed from %s. Everyone's group keys are renewed before the next "
               "message, so %s cannot read anything sent from now on.\n", g.addr, g.grp, g.addr);
    } else {
        printf("%s is now a %s of %s.\n", g.addr, kl_cmdg_role_name(role), g.grp);
    }
out:
    kl_cmdg_finish(&g);
    return rc;
}

int kl_cmd_group_remove(kl_cli_t *cli, const char *name, const char *address)
{
    return member_op(cli, name, address, KL_GOP_REMOVE, KL_ROLE_NONE);
}

int kl_cmd_group_role(kl_cli_t *cli, const char *name, const char *address, const char *role)
{
    kl_group_role_t r;
    if (strcmp(role, "facilitator") == 0)
        r = KL_ROLE_FACILITATOR;
    else if (strcmp(role, "member") == 0)
        r = KL_ROLE_MEMBER;
    else {
        kl_cli_err("the role must be facilitator or member, not '%s'; see `kollega group "
                   "--help`", role);
        return KL_EXIT_USAGE;
    }
    return member_op(cli, name, address, KL_GOP_SET_ROLE, r);
}

int kl_cmd_group_leave(kl_cli_t *cli, const char *name, const char *successor)
{
    char addr[KL_ADDR_MAX + 1];
    kl_cmdg_t g;
    kl_group_member_t m;
    int rc;
    if (successor && (rc = kl_cli_user_address(successor, addr, sizeof addr)))
        return rc;
    if ((rc = kl_cmdg_prepare(cli, name, &g, 1)))
        goto out;
    g.d.kind = KL_GOP_LEAVE;
    if (successor) {
        if (find_member(&g.x, addr, &m) != 0) {
            rc = cli_fail("--successor %s is not a member of %s", addr, g.grp);
            goto out;
        }
        memcpy(g.d.target, m.key, 32);
        g.d.has_target = 1;
    }
    if ((rc = submit(cli, g.conn, &g.x, &g.d, NULL, &g.ev)))
        goto out;
    int fr = kl_grp_forget(cli, g.grp);
    if (fr)
        kl_cli_err("you left %s, but its keys could not be deleted from your store (%s)", g.grp,
                   kl_strerror(fr));
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, g.grp, "left");
        if (successor)
            kl_json_str(&j, "successor", addr);
        kl_cli_json_line(&j);
    } else {
        printf("You left %s.\n", g.grp);
    }
out:
    kl_cmdg_finish(&g);
    return rc;
}

int kl_cmd_group_send(kl_cli_t *cli, const char *name, const char *text, size_t len)
{
    kl_cmdg_t g;
    kl_message_t m;
    int rc = kl_cmdg_prepare(cli, name, &g, 1);
    if (rc)
        goto out;
    int r = kl_grp_blocked(&g.x) ? KL_ECRYPTO : kl_grp_send(cli, g.conn, &g.x, text, len, &m);
    if (r == KL_ECRYPTO) {
        if (g.x.invalid)
            rc = cli_fail("nothing was sent: the relay delivered an invalid operation of %s, so "
                          "who is a member cannot be trusted (see the warning above)", g.grp);
        else
            rc = cli_fail("nothing was sent: the relay showed you two different operations at "
                          "index %llu of %s (a fork), so who is a member cannot be trusted; "
                          "start a new group with the members you trust",
                          (unsigned long long)(g.x.fork_index - 1), g.grp);
        goto out;
    }
    if (r == KL_ESTATE) {
        rc = cli_fail("you are not a member of %s; nothing was sent", g.grp);
        goto out;
    }
    if (r == KL_ETOOBIG) {
        kl_cli_err("the message is too large once encrypted; shorten it");
        rc = KL_EXIT_USAGE;
        goto out;
    }
    if (r == KL_EREFUSED && kl_net_relay_error(g.conn) == KL_WIRE_ERR_FORBIDDEN) {
        rc = cli_fail("the relay refused the message: it does not count you as a member of "
                      "%s (%s)", g.grp, kl_net_relay_message(g.conn));
        goto out;
    }
    if (r) {
        rc = kl_cli_relay_fail(g.conn, r, "deliver the group message");
        goto out;
    }
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_message(&j, &m);
        kl_json_str(&j, "to", g.grp);
        kl_json_str(&j, "group", g.grp);
        kl_json_uint(&j, "seq", m.seq);
        kl_json_uint(&j, "sent_at", m.sent_at);
        kl_cli_json_line(&j);
    } else {
        printf("Sent to %s.\n", g.grp);
    }
out:
    kl_cmdg_finish(&g);
    return rc;
}

/* set_policy / set_retention (facilitators). */
static int setting_op(kl_cli_t *cli, const char *name, const kl_group_opdesc_t *d)
{
    char ret[128];
    kl_cmdg_t g;
    kl_group_member_t m;
    int rc = kl_cmdg_prepare(cli, name, &g, 1);
    if (rc || (rc = submit(cli, g.conn, &g.x, d, NULL, &g.ev)))
        goto out;
    kl_cmdg_retention_text(kl_group_retention_days(g.x.g), ret, sizeof ret);
    if (cli->json) {
        kl_json_t j;
        kl_cmdg_json_begin(&j, g.grp, d->kind == KL_GOP_SET_POLICY ? "policy" : "retention");
        kl_json_str(&j, "policy", kl_cmdg_policy_name(kl_group_policy(g.x.g)));
        kl_json_uint(&j, "retention_days", kl_group_retention_days(g.x.g));
        kl_json_arr_begin(&j, "admitted");
        for (size_t i = 0; i < kl_group_member_count(g.x.g); i++)
            if (kl_group_member_at(g.x.g, i, &m) == 0 && admitted_by(&g.ev, m.key))
                kl_json_str(&j, NULL, m.address);
        kl_json_arr_end(&j);
        kl_cli_json_line(&j);
        goto out;
    }
    if (d->kind == KL_GOP_SET_POLICY)
        printf("%s: admission policy is now %s.\n", g.grp,
               kl_cmdg_policy_name(kl_group_policy(g.x.g)));
    else
        printf("%s: %s.\n", g.grp, ret);
    for (size_t i = 0; i < kl_group_member_count(g.x.g); i++)
        if (kl_group_member_at(g.x.g, i, &m) == 0 && admitted_by(&g.ev, m.key))
            printf("%s is now a member of %s (admitted).\n", m.address, g.grp);
out:
    kl_cmdg_finish(&g);
    return rc;
}

int kl_cmd_group_set_policy(kl_cli_t *cli, const char *name, int policy)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_SET_POLICY;
    d.policy = (kl_group_policy_t)policy;
    return setting_op(cli, name, &d);
}

int kl_cmd_group_set_retention(kl_cli_t *cli, const char *name, long days)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_SET_RETENTION;
    d.days = (uint32_t)days;
    return setting_op(cli, name, &d);
}
