/* `kollega group members #GROUP`: the validated state of a group's log,
 * its rules, members (with removal votes) and candidates (with who
 * approved them and what is still missing). */
#include <stdio.h>

#include "cmd.h"
#include "cmd_group_int.h"
#include "kollega/crypto.h"
#include "signedlog.h"

static void print_members_json(const kl_grp_t *x)
{
    kl_json_t j;
    kl_group_member_t m;
    kl_group_candidate_t c;
    kl_cmdg_json_begin(&j, x->address, NULL);
    kl_json_str(&j, "policy", kl_cmdg_policy_name(kl_group_policy(x->g)));
    kl_json_uint(&j, "retention_days", kl_group_retention_days(x->g));
    kl_json_uint(&j, "epoch", kl_group_epoch(x->g));
    kl_json_bool(&j, "log_valid", !x->invalid);
    kl_json_arr_begin(&j, "members");
    for (size_t i = 0; i < kl_group_member_count(x->g); i++) {
        if (kl_group_member_at(x->g, i, &m))
            continue;
        kl_cli_json_person(&j, m.address, m.key);
        kl_json_str(&j, "role", kl_cmdg_role_name(m.role));
        size_t missing = 0, votes = kl_group_removal_votes(x->g, m.key, &missing);
        if (votes) {
            kl_json_uint(&j, "removal_votes", votes);
            kl_json_uint(&j, "removal_missing", missing);
        }
        kl_json_obj_end(&j);
    }
    kl_json_arr_end(&j);
    kl_json_arr_begin(&j, "candidates");
    for (size_t i = 0; i < kl_group_candidate_count(x->g); i++) {
        if (kl_group_candidate_at(x->g, i, &c))
            continue;
        kl_cli_json_person(&j, c.address, c.key);
        kl_json_uint(&j, "approvals", c.approvals);
        kl_json_uint(&j, "missing", c.missing);
        kl_json_arr_begin(&j, "approved_by");
        for (size_t k = 0; k < kl_group_member_count(x->g); k++)
            if (kl_group_member_at(x->g, k, &m) == 0 && kl_group_has_approved(x->g, c.key, m.key))
                kl_json_str(&j, NULL, m.address);
        kl_json_arr_end(&j);
        kl_json_obj_end(&j);
    }
    kl_json_arr_end(&j);
    kl_cli_json_line(&j);
}

int kl_cmd_group_members(kl_cli_t *cli, const char *name)
{
    char miss[256];
    kl_cmdg_t g;
    const kl_grp_t *x = &g.x;
    kl_group_member_t m;
    kl_group_candidate_t c;
    int rc = kl_cmdg_prepare(cli, name, &g, 1);
    if (rc)
        goto out;
    if (cli->json) {
        print_members_json(x);
        goto out;
    }
    char ret[128];
    kl_cmdg_retention_text(kl_group_retention_days(x->g), ret, sizeof ret);
    printf("%s: admission policy %s; %s\n", g.grp, kl_cmdg_policy_name(kl_group_policy(x->g)), ret);
    printf("Members (%zu):\n", kl_group_member_count(x->g));
    for (size_t i = 0; i < kl_group_member_count(x->g); i++) {
        if (kl_group_member_at(x->g, i, &m) != 0)
            continue;
        size_t missing = 0, votes = kl_group_removal_votes(x->g, m.key, &missing);
        printf("  %s  %s%s", m.address, kl_cmdg_role_name(m.role),
               kl_memcmp(m.key, cli->me.pk, 32) == 0 ? " (you)" : "");
        if (votes)
            printf("  (%zu vote%s to remove; %zu more needed)", votes, votes == 1 ? "" : "s",
                   missing);
        printf("\n");
    }
    size_t nc = kl_group_candidate_count(x->g);
    if (nc)
        printf("Candidates (%zu):\n", nc);
    for (size_t i = 0; i < nc; i++) {
        if (kl_group_candidate_at(x->g, i, &c))
            continue;
        kl_cmdg_missing_text(x, &c, miss, sizeof miss);
        printf("  %s  %s; approved by:", c.address, miss);
        int any = 0;
        for (size_t k = 0; k < kl_group_member_count(x->g); k++)
            if (kl_group_member_at(x->g, k, &m) == 0 && kl_group_has_approved(x->g, c.key, m.key)) {
                printf("%s %s", any ? "," : "", m.address);
                any = 1;
            }
        printf("%s\n", any ? "" : " nobody yet");
    }
out:
    kl_cmdg_finish(&g);
    return rc;
}
