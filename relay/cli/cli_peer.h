/* kollega-relay peer ... and the peers section of status (cli_peer.c). */
#ifndef KOLLEGA_RELAY_CLI_PEER_H
#define KOLLEGA_RELAY_CLI_PEER_H

#include "cmdline/json.h"
#include "storage/storage.h"

/* The whole `peer` command (argv[1] == "peer"); returns the exit code. */
int kl_cli_peer_main(int argc, char **argv);
/* Add the peers to status: a "peers" array to j, or lines on stdout when
 * j is NULL. */
int kl_cli_peer_status(kl_storage_t *st, kl_json_t *j);

#endif
