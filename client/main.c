/* kollega: the command-line client. Parses the command line and hands over
 * to the commands in client/cmd_*.c. Global options (--home DIR, --json,
 * --help) are accepted before or after the command. Exit codes: 0 success,
 * 1 operational failure, 2 usage error. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "channels.h"
#include "cmd.h"
#include "cmdline/version.h"
#include "kollega/crypto.h"

#define MAX_POS 16 /* contact verify A --confirm and a NUMBER in 12 groups: 15 */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static const char USAGE[] =
    "Usage: kollega [--home DIR] [--json] COMMAND [ARGS]\n"
    "\n"
    "Private 1:1 and group messages between peer workers, end-to-end encrypted.\n"
    "\n"
    "Commands:\n"
    "  init --invite TOKEN --name NAME [--no-passphrase]\n"
    "                               create your identity and register at a relay\n"
    "  whoami                       show your address, identity key and relay\n"
    "  passphrase [--no-passphrase] change, add or remove your store's passphrase\n"
    "  contact add ADDRESS          look up a colleague and pin their key\n"
    "  contact list                 list your contacts\n"
    "  contact verify ADDRESS [--confirm [NUMBER]]\n"
    "                               show the safety number; --confirm marks it checked\n"
    "  contact reject ADDRESS       refuse a changed key and drop what it sent\n"
    "  send ADDRESS TEXT            send a message (TEXT - reads it from stdin)\n"
    "  receive [--follow] [--timeout SECONDS]\n"
    "                               fetch, decrypt and show new messages\n"
    "  history [ADDRESS|#GROUP|!CHANNEL] [--search TEXT] [--limit N]\n"
    "                               show stored messages\n"
    "  send #GROUP TEXT             write to a group you are a member of\n"
    "  channel create|publisher|member|post|subscribe|unsubscribe|list ...\n"
    "                               signed broadcast channels (!NAME@RELAY), public\n"
    "                               or members-only;\n"
    "                               see `kollega channel --help`\n"
    "  group create|invite|request|approve|members|remove|leave|role ...\n"
    "                               closed groups whose members decide who joins;\n"
    "                               see `kollega group --help`\n"
    "\n"
    "Options:\n"
    "  --home DIR   where your keys and messages live (default: $KOLLEGA_HOME, else\n"
    "               $XDG_DATA_HOME/kollega, else ~/.local/share/kollega)\n"
    "  --json       machine-readable output: one JSON object per line\n"
    "  --help       help for kollega or for a command\n"
    "  --version    print kollega's version\n"
    "\n"
    "The passphrase of your store is read from KOLLEGA_PASSPHRASE, else asked on the\n"
    "terminal (a new one for `passphrase`: KOLLEGA_NEW_PASSPHRASE, else asked twice).\n"
    "Exit status: 0 success, 1 failure (relay unreachable or refusing, wrong\n"
    "passphrase, changed key), 2 usage error.\n";

struct help {
    const char *cmd;
    const char *text;
};

static const struct help HELP[] = {
    {"init",
     "Usage: kollega init --invite TOKEN --name NAME [--no-passphrase]\n\n"
     "Create your identity key, register NAME at the relay named in the invite\n"
     "(your address becomes NAME@RELAY) and publish your prekeys.\n"
     "NAME: 1-32 of a-z 0-9 . _ - (starting with a letter or digit).\n"
     "The store is protected by a passphrase (KOLLEGA_PASSPHRASE, or asked twice on the\n"
     "terminal) unless you give --no-passphrase.\n"
     "--json prints {\"address\",\"identity_key\",\"relay\",\"relay_address\",\"home\",\n"
     "\"passphrase\",\"prekeys_uploaded\"}.\n"},
    {"whoami",
     "Usage: kollega whoami\n\n"
     "Show your address, identity key and relay.\n"
     "--json prints {\"address\",\"identity_key\",\"relay\",\"relay_address\",\"relay_key\",\n"
     "\"home\",\"inbox_cursor\",\"held_messages\",\"failed_messages\"}.\n"},
    {"passphrase",
     "Usage: kollega passphrase [--no-passphrase]\n\n"
     "Change the passphrase that protects your store, give a store without one a\n"
     "passphrase, or (--no-passphrase) remove it: the store then relies on the file's\n"
     "permissions (0600) alone.\n"
     "The current passphrase is read like for every command (KOLLEGA_PASSPHRASE, else asked\n"
     "on the terminal); the new one from KOLLEGA_NEW_PASSPHRASE, else asked twice.\n"
     "Afterwards only the new passphrase opens the store; messages, contacts and keys stay\n"
     "as they are. The key inside the store does not change: a copy of the file made\n"
     "before still opens with the old passphrase.\n"
     "Exit status: 0 changed, 1 wrong current passphrase (nothing changed) or other\n"
     "failure, 2 usage error.\n"
     "--json prints {\"ok\",\"passphrase\" (the store has one now),\"changed\",\"home\"}.\n"},
    {"contact",
     "Usage: kollega contact add ADDRESS\n"
     "       kollega contact list\n"
     "       kollega contact verify ADDRESS [--confirm [NUMBER]]\n"
     "       kollega contact reject ADDRESS\n\n"
     "add     looks ADDRESS up at the relay and pins its identity key (trust on first use).\n"
     "list    shows your contacts; --json prints one object per line:\n"
     "        {\"address\",\"identity_key\",\"verified\",\"key_changed\",[\"pending_identity_key\"],\n"
     "        \"added_at\"}.\n"
     "verify  shows the 60-digit safety number to compare in person or by phone;\n"
     "        --confirm marks the contact verified and, if its key had changed, accepts\n"
     "        the new key and releases the messages held from it. It accepts only the\n"
     "        key whose number `verify` showed you (a key that arrived since is refused);\n"
     "        with NUMBER (the 60 digits, spaces allowed) it accepts the current key only\n"
     "        if NUMBER is its safety number. --json prints\n"
     "        {\"address\",\"identity_key\",\"safety_number\",\"verified\",\"key_changed\",\n"
     "        \"held_messages\",[\"released_messages\"]}.\n"
     "reject  refuses a changed key: it is dropped with every message held from it,\n"
     "        and the contact keeps the key pinned before. --json prints\n"
     "        {\"address\",\"rejected\",\"dropped_messages\",\"contact_kept\"}.\n"},
    {"send",
     "Usage: kollega send ADDRESS|#GROUP TEXT\n\n"
     "Encrypt TEXT for ADDRESS and hand it to the relay; exits 0 once the relay has\n"
     "stored it. TEXT - reads the message from stdin (one final newline is dropped).\n"
     "Refused (exit 1) if ADDRESS's identity key changed: verify it first.\n"
     "#GROUP (#NAME or #NAME@RELAY) writes to a group you are a member of.\n"
     "--json prints {\"id\",\"to\",\"seq\",\"sent_at\"} (and \"group\" for a group).\n"},
    {"receive",
     "Usage: kollega receive [--follow] [--timeout SECONDS]\n\n"
     "Fetch, decrypt, store and show new messages, then exit.\n"
     "--timeout S  keep waiting for new messages until S seconds have passed, then exit 0.\n"
     "--follow     keep waiting until interrupted (Ctrl-C); reconnects when needed.\n"
     "--json prints one object per message and line: {\"id\",\"from\",\"to\",\"text\",\n"
     "\"sent_at\",\"direction\",\"seq\",\"stored_at\"} (times in ms since the epoch), plus\n"
     "\"group\" for group messages; group notices are {\"event\",\"group\",\"message\"} and\n"
     "warnings {\"warning\",\"group\",\"message\"}.\n"},
    {"history",
     "Usage: kollega history [ADDRESS|#GROUP|!CHANNEL] [--search TEXT] [--limit N]\n\n"
     "Show the N most recent stored messages (default 50), oldest first; only those\n"
     "with ADDRESS (or in #GROUP, or posts of !CHANNEL), and only those containing\n"
     "TEXT (case-insensitive).\n"
     "Group messages older than the group's retention are deleted first.\n"
     "--json prints one object per line like receive, with \"direction\" \"in\"/\"out\".\n"},
    {"channel", KL_CHANNEL_HELP},
    {"group",
     "Usage: kollega group create #NAME [--policy all|majority|facilitators] [--retention DAYS]\n"
     "       kollega group invite #NAME ADDRESS\n"
     "       kollega group request #NAME@RELAY\n"
     "       kollega group approve #NAME ADDRESS\n"
     "       kollega group members #NAME\n"
     "       kollega group remove #NAME ADDRESS\n"
     "       kollega group leave #NAME [--successor ADDRESS]\n"
     "       kollega group role #NAME ADDRESS facilitator|member\n"
     "       kollega group policy #NAME all|majority|facilitators\n"
     "       kollega group retention #NAME DAYS\n\n"
     "A group is #NAME@RELAY; #NAME alone means a group on your own relay. Its members and\n"
     "rules are a signed log that every member's kollega checks; an operation the relay\n"
     "cannot prove is ignored with a warning.\n"
     "create   makes you its first member and facilitator. --policy says who admits a\n"
     "         candidate: all members (default), a majority, or any facilitator.\n"
     "         --retention DAYS: messages expire after DAYS days (default: kept until read,\n"
     "         at most the relay's TTL, 30 days unless its operator changed it).\n"
     "invite   proposes ADDRESS (your approval counts); approve adds your consent to a\n"
     "         candidate. Both say whether the candidate is now a member, or how many\n"
     "         approvals are still missing.\n"
     "request  asks to join a group; the members then approve you.\n"
     "members  lists members with their roles, and candidates with their approvals.\n"
     "remove   (facilitators) removes a member or refuses a candidate; every member's\n"
     "         group key is renewed, so the removed member reads nothing sent afterwards.\n"
     "         Under policy majority any member may vote to remove a member: it prints\n"
     "         \"vote recorded: N more votes needed\" until more than half of the other\n"
     "         members voted; `members` shows the pending votes.\n"
     "leave    the last facilitator must name a --successor.\n"
     "role     (facilitators) makes a member a facilitator or back.\n"
     "policy   (facilitators) changes the admission policy (may admit waiting candidates).\n"
     "retention (facilitators) DAYS until messages expire; 0 = kept until read.\n"
     "Write with `kollega send #NAME TEXT`; `kollega receive` shows group messages as\n"
     "\"[#NAME@RELAY] from: text\" and invitations; `kollega history #NAME` shows them again.\n"
     "--json prints one object per command (group, action, candidate, admitted, approvals,\n"
     "missing, ...); `members --json` prints {group, policy, retention_days, epoch,\n"
     "members: [{address, identity_key, role, [removal_votes, removal_missing]}],\n"
     "candidates: [{address, identity_key, approvals, missing, approved_by}]}.\n"},
};

typedef struct args {
    const char *home;
    int json, help, no_pass, confirm, follow, members_only;
    const char *invite, *name, *timeout, *search, *limit, *policy, *retention, *successor;
    const char *backlog;
    int seen_invite, seen_name, seen_timeout, seen_search, seen_limit, seen_policy,
        seen_retention, seen_successor;
    const char *pos[MAX_POS];
    int npos;
} args_t;

static int usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("kollega: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "; see `kollega %s --help`\n", cmd);
    else
        fputs("; see `kollega --help`\n", stderr);
    return KL_EXIT_USAGE;
}

/* One pass over argv: options anywhere, "--" ends options. */
static int parse(int argc, char **argv, args_t *a)
{
    int dashdash = 0;
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (dashdash || s[0] != '-' || strcmp(s, "-") == 0 ||
            (s[1] != '-' && strcmp(s, "-h") != 0)) {
            if (a->npos == MAX_POS)
                return usage_err(NULL, "too many arguments (%s)", s);
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            a->help = 1;
            continue;
        }
        char name[32];
        const char *eq = strchr(s, '=');
        size_t n = eq ? (size_t)(eq - s) : strlen(s);
        if (n >= sizeof name)
            return usage_err(NULL, "unknown option %s", s);
        memcpy(name, s, n);
        name[n] = '\0';
        struct {
            const char *name;
            const char **value;
            int *flag;
        } opts[] = {
            {"--home", &a->home, NULL},       {"--invite", &a->invite, &a->seen_invite},
            {"--name", &a->name, &a->seen_name}, {"--timeout", &a->timeout, &a->seen_timeout},
            {"--search", &a->search, &a->seen_search}, {"--limit", &a->limit, &a->seen_limit},
            {"--policy", &a->policy, &a->seen_policy},
            {"--retention", &a->retention, &a->seen_retention},
            {"--successor", &a->successor, &a->seen_successor},
            {"--backlog", &a->backlog, NULL},
            {"--json", NULL, &a->json},       {"--no-passphrase", NULL, &a->no_pass},
            {"--confirm", NULL, &a->confirm}, {"--follow", NULL, &a->follow},
            {"--members-only", NULL, &a->members_only},
        };
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strcmp(opts[k].name, name) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0])
            return usage_err(NULL, "unknown option %s", s);
        if (opts[k].value == NULL) {
            if (eq)
                return usage_err(NULL, "option %s takes no value", name);
            *opts[k].flag = 1;
            continue;
        }
        if (eq) {
            *opts[k].value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return usage_err(NULL, "option %s needs a value", name);
            *opts[k].value = argv[++i];
        }
        if (opts[k].flag)
            *opts[k].flag = 1;
    }
    return 0;
}

static int print_help(const char *cmd)
{
    if (cmd)
        for (size_t i = 0; i < sizeof HELP / sizeof HELP[0]; i++)
            if (strcmp(HELP[i].cmd, cmd) == 0) {
                fputs(HELP[i].text, stdout);
                return KL_EXIT_OK;
            }
    fputs(USAGE, stdout);
    return KL_EXIT_OK;
}

/* Options that belong to other commands are usage errors. */
static int only(const args_t *a, const char *cmd, int init, int confirm, int receive,
                int history)
{
    if (!init && (a->seen_invite || a->seen_name))
        return usage_err(cmd, "--invite and --name belong to `init`%s", "");
    if (!init && a->no_pass)
        return usage_err(cmd, "--no-passphrase belongs to `init` and `passphrase`%s", "");
    if (!confirm && a->confirm)
        return usage_err(cmd, "--confirm belongs to `contact verify`%s", "");
    if (!receive && (a->follow || a->seen_timeout))
        return usage_err(cmd, "--follow and --timeout belong to `receive`%s", "");
    if (!history && (a->seen_search || a->seen_limit))
        return usage_err(cmd, "--search and --limit belong to `history`%s", "");
    if (strcmp(cmd, "group") != 0 &&
        (a->seen_policy || a->seen_retention || a->seen_successor))
        return usage_err(cmd, "--policy, --retention and --successor belong to `group`%s", "");
    return 0;
}

static int parse_num(const char *cmd, const char *opt, const char *s, long lo, long hi, long *v)
{
    char *end = NULL;
    long x = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || x < lo || x > hi) {
        fputs("kollega: ", stderr);
        fprintf(stderr, "%s needs a whole number from %ld to %ld, not '%s'; see `kollega %s "
                        "--help`\n", opt, lo, hi, s, cmd);
        return KL_EXIT_USAGE;
    }
    *v = x;
    return 0;
}

/* `group SUB #NAME ...`: argument counts and the options of each. */
static int run_group(kl_cli_t *cli, args_t *a)
{
    static const struct {
        const char *sub;
        int npos;                /* including "group" and SUB */
        const char *args;
    } subs[] = {
        {"create", 3, "#NAME"},           {"invite", 4, "#NAME ADDRESS"},
        {"request", 3, "#NAME@RELAY"},    {"approve", 4, "#NAME ADDRESS"},
        {"members", 3, "#NAME"},          {"remove", 4, "#NAME ADDRESS"},
        {"leave", 3, "#NAME"},            {"role", 5, "#NAME ADDRESS facilitator|member"},
        {"policy", 4, "#NAME all|majority|facilitators"}, {"retention", 4, "#NAME DAYS"},
    };
    const char *sub = a->npos > 1 ? a->pos[1] : "";
    size_t k;
    for (k = 0; k < sizeof subs / sizeof subs[0]; k++)
        if (strcmp(subs[k].sub, sub) == 0)
            break;
    if (k == sizeof subs / sizeof subs[0])
        return usage_err("group", "group needs create, invite, request, approve, members, remove, "
                                  "leave, role, policy or retention (got '%s')", sub);
    if (a->npos != subs[k].npos)
        return usage_err("group", "group %s needs %s", sub, subs[k].args);
    if (a->pos[2][0] != '#')
        return usage_err("group", "group %s needs a group address like #erfa (got '%s')", sub,
                         a->pos[2]);
    int create = strcmp(sub, "create") == 0, leave = strcmp(sub, "leave") == 0;
    if (!create && (a->seen_policy || a->seen_retention))
        return usage_err("group", "--policy and --retention belong to `group create`%s", "");
    if (!leave && a->seen_successor)
        return usage_err("group", "--successor belongs to `group leave`%s", "");
    if (create) {
        int policy = 1; /* KL_POLICY_ALL */
        long days = 0;
        int rc;
        if (a->seen_policy && kl_cmd_group_policy(a->policy, &policy) != 0)
            return usage_err("group", "--policy must be all, majority or facilitators (got "
                                      "'%s')", a->policy);
        if (a->seen_retention &&
            (rc = parse_num("group", "--retention", a->retention, 1, 3650, &days)))
            return rc;
        return kl_cmd_group_create(cli, a->pos[2], policy, days);
    }
    if (strcmp(sub, "invite") == 0)
        return kl_cmd_group_invite(cli, a->pos[2], a->pos[3]);
    if (strcmp(sub, "request") == 0)
        return kl_cmd_group_request(cli, a->pos[2]);
    if (strcmp(sub, "approve") == 0)
        return kl_cmd_group_approve(cli, a->pos[2], a->pos[3]);
    if (strcmp(sub, "members") == 0)
        return kl_cmd_group_members(cli, a->pos[2]);
    if (strcmp(sub, "remove") == 0)
        return kl_cmd_group_remove(cli, a->pos[2], a->pos[3]);
    if (leave)
        return kl_cmd_group_leave(cli, a->pos[2], a->seen_successor ? a->successor : NULL);
    if (strcmp(sub, "policy") == 0) {
        int policy = 0;
        if (kl_cmd_group_policy(a->pos[3], &policy) != 0)
            return usage_err("group", "the policy must be all, majority or facilitators (got "
                                      "'%s')", a->pos[3]);
        return kl_cmd_group_set_policy(cli, a->pos[2], policy);
    }
    if (strcmp(sub, "retention") == 0) {
        long days = 0;
        int rc = parse_num("group", "DAYS", a->pos[3], 0, 3650, &days);
        return rc ? rc : kl_cmd_group_set_retention(cli, a->pos[2], days);
    }
    return kl_cmd_group_role(cli, a->pos[2], a->pos[3], a->pos[4]);
}

static int run(kl_cli_t *cli, args_t *a)
{
    const char *cmd = a->pos[0];
    int rc;
    if (a->backlog && strcmp(cmd, "channel") != 0)
        return usage_err(cmd, "--backlog belongs to `channel subscribe`%s", "");
    if (a->members_only && strcmp(cmd, "channel") != 0)
        return usage_err(cmd, "--members-only belongs to `channel create`%s", "");
    if (strcmp(cmd, "init") == 0) {
        if ((rc = only(a, cmd, 1, 0, 0, 0)))
            return rc;
        if (a->npos != 1)
            return usage_err(cmd, "init takes no arguments besides its options (got '%s')",
                             a->pos[1]);
        if (!a->invite || !a->name)
            return usage_err(cmd, "init needs --invite TOKEN and --name NAME%s", "");
        return kl_cmd_init(cli, a->invite, a->name, a->no_pass);
    }
    if (strcmp(cmd, "whoami") == 0) {
        if ((rc = only(a, cmd, 0, 0, 0, 0)))
            return rc;
        if (a->npos != 1)
            return usage_err(cmd, "whoami takes no arguments (got '%s')", a->pos[1]);
        return kl_cmd_whoami(cli);
    }
    if (strcmp(cmd, "passphrase") == 0) {
        int no_pass = a->no_pass;
        a->no_pass = 0;
        if ((rc = only(a, cmd, 0, 0, 0, 0)))
            return rc;
        if (a->npos != 1)
            return usage_err(cmd, "passphrase takes no arguments (got '%s'); the passphrases "
                                  "are asked, or read from KOLLEGA_PASSPHRASE and "
                                  "KOLLEGA_NEW_PASSPHRASE", a->pos[1]);
        return kl_cmd_passphrase(cli, no_pass);
    }
    if (strcmp(cmd, "contact") == 0) {
        const char *sub = a->npos > 1 ? a->pos[1] : "";
        int verify = strcmp(sub, "verify") == 0;
        if ((rc = only(a, cmd, 0, verify, 0, 0)))
            return rc;
        if (strcmp(sub, "list") == 0) {
            if (a->npos != 2)
                return usage_err(cmd, "contact list takes no arguments (got '%s')", a->pos[2]);
            return kl_cmd_contact_list(cli);
        }
        if (verify && a->confirm && a->npos > 3) {
            /* --confirm NUMBER: the 60 digits in one argument or in groups. */
            char number[256];
            size_t n = 0;
            number[0] = '\0';
            for (int i = 3; i < a->npos; i++) {
                size_t l = strlen(a->pos[i]);
                if (n + l + 2 > sizeof number)
                    return usage_err(cmd, "NUMBER is too long%s", "");
                memcpy(number + n, a->pos[i], l);
                n += l;
                number[n++] = ' ';
                number[n] = '\0';
            }
            return kl_cmd_contact_verify(cli, a->pos[2], 1, number);
        }
        if (strcmp(sub, "add") == 0 || verify || strcmp(sub, "reject") == 0) {
            if (a->npos != 3)
                return usage_err(cmd, "contact %s needs exactly one ADDRESS", sub);
            if (strcmp(sub, "reject") == 0)
                return kl_cmd_contact_reject(cli, a->pos[2]);
            return verify ? kl_cmd_contact_verify(cli, a->pos[2], a->confirm, NULL)
                          : kl_cmd_contact_add(cli, a->pos[2]);
        }
        return usage_err(cmd, "contact needs add, list, verify or reject (got '%s')", sub);
    }
    if (strcmp(cmd, "send") == 0) {
        if ((rc = only(a, cmd, 0, 0, 0, 0)))
            return rc;
        if (a->npos != 3)
            return usage_err(cmd, "send needs ADDRESS and TEXT (quote a TEXT with spaces; "
                                  "use - to read it from stdin)%s", "");
        return kl_cmd_send(cli, a->pos[1], a->pos[2]);
    }
    if (strcmp(cmd, "receive") == 0) {
        long timeout = -1;
        if ((rc = only(a, cmd, 0, 0, 1, 0)))
            return rc;
        if (a->npos != 1)
            return usage_err(cmd, "receive takes no arguments (got '%s')", a->pos[1]);
        if (a->seen_timeout &&
            (rc = parse_num(cmd, "--timeout", a->timeout, 0, 31L * 24 * 3600, &timeout)))
            return rc;
        if (a->follow || timeout >= 0) {
            /* Ctrl-C ends waiting cleanly (exit 0) instead of killing us
             * mid-transaction; no SA_RESTART so blocking waits wake up. */
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            cli->stop = &g_stop;
        }
        return kl_cmd_receive(cli, a->follow, timeout);
    }
    if (strcmp(cmd, "history") == 0) {
        long limit = 50;
        if ((rc = only(a, cmd, 0, 0, 0, 1)))
            return rc;
        if (a->npos > 2)
            return usage_err(cmd, "history takes at most one ADDRESS (got '%s')", a->pos[2]);
        if (a->seen_limit && (rc = parse_num(cmd, "--limit", a->limit, 1, 1000000, &limit)))
            return rc;
        return kl_cmd_history(cli, a->npos > 1 ? a->pos[1] : NULL, a->search, limit);
    }
    if (strcmp(cmd, "group") == 0) {
        if ((rc = only(a, cmd, 0, 0, 0, 0)))
            return rc;
        return run_group(cli, a);
    }
    if (strcmp(cmd, "channel") == 0) {
        if ((rc = only(a, cmd, 0, 0, 0, 0)))
            return rc;
        return kl_cmd_channel(cli, a->npos, a->pos, a->backlog, a->members_only);
    }
    if (strcmp(cmd, "help") == 0)
        return print_help(a->npos > 1 ? a->pos[1] : NULL);
    return usage_err(NULL, "unknown command '%s'", cmd);
}

int main(int argc, char **argv)
{
    int vr = kl_version_cli("kollega", argc, argv);
    if (vr >= 0)
        return vr;
    args_t a;
    kl_cli_t cli;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help)
        return print_help(a.npos ? a.pos[0] : NULL);
    if (a.npos == 0) {
        fputs(USAGE, stderr);
        return KL_EXIT_USAGE;
    }
    /* Everything we create (store, journal, temp files) is private. */
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    if (kl_crypto_init() != 0) {
        fputs("kollega: cannot initialise the crypto library\n", stderr);
        return KL_EXIT_FAIL;
    }
    memset(&cli, 0, sizeof cli);
    cli.home_opt = a.home;
    cli.json = a.json;
    if (strcmp(a.pos[0], "help") != 0 && (rc = kl_cli_resolve_home(&cli)))
        return rc;
    rc = run(&cli, &a);
    kl_cli_close(&cli);
    return rc;
}
