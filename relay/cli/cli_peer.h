/* kollega-relay peer ... and the peers section of status (cli_peer.c). */
#ifndef KOLLEGA_RELAY_CLI_PEER_H
#define KOLLEGA_RELAY_CLI_PEER_H

#include "cmdline/json.h"
#include "storage/storage.h"

/* The whole `peer` command (argv[1] == "peer"; argv is borrowed); returns
 * the exit code: 0, KL_EXIT_USAGE or KL_EXIT_OPER, its message printed. */
int kl_cli_peer_main(int argc, char **argv);
/* Add the peers to status: a "peers" array to j, or lines on stdout when
 * j is NULL. 0, or the error of kl_storage_fed_peer_list or
 * kl_storage_cmirror_stats (output may then be partial). */
int kl_cli_peer_status(kl_storage_t *st, kl_json_t *j);

#endif
