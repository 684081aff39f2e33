/* kollega-relay: the admin CLI and the server entry point. Each command is
 * its own cli_*.c (see cli.h); this file only picks one. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_peer.h"
#include "cmdline/version.h"
#include "kollega/crypto.h"

static const kl_cli_cmd_t *const CMDS[] = {&kl_cli_init, &kl_cli_serve, &kl_cli_invite,
                                           &kl_cli_status, &kl_cli_config, &kl_cli_user,
                                           &kl_cli_backup, &kl_cli_restore};
#define NCMDS (sizeof CMDS / sizeof CMDS[0])

static void usage_main(FILE *f)
{
    fputs("usage: kollega-relay COMMAND [options]\ncommands:\n", f);
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  %-7s %s\n", CMDS[i]->name, CMDS[i]->summary);
    fputs("  peer    add, list or remove federation peers (other relays)\n"
          "run kollega-relay COMMAND --help for the options of a command;\n"
          "kollega-relay --version [--json] prints the version\n",
          f);
}

int main(int argc, char **argv)
{
    int vr = kl_version_cli("kollega-relay", argc, argv);
    if (vr >= 0)
        return vr;
    kl_cli_opts_t o;
    memset(&o, 0, sizeof o);
    kl_server_cfg_defaults(&o.cfg);
    umask(077); /* database, WAL and key files are private */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? KL_EXIT_USAGE : 0;
    }
    o.cmd = argv[1];
    if (strcmp(o.cmd, "peer") == 0)
        return kl_cli_peer_main(argc, argv);
    const kl_cli_cmd_t *c = NULL;
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(o.cmd, CMDS[i]->name) == 0)
            c = CMDS[i];
    if (c == NULL)
        return kl_cli_fail_usage(NULL, "unknown command '%s' (init, serve, invite, status, config,"
                                 " user, backup, restore, peer)", o.cmd);
    int r = kl_cli_parse(argc, argv, &o);
    if (r)
        return r;
    if (o.help) {
        c->usage();
        return 0;
    }
    if (kl_crypto_init() != 0)
        return kl_cli_fail_oper("cannot initialise libsodium");
    return c->run(&o);
}
