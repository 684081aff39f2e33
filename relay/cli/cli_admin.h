/* The administration side of kollega-relay's command line
 * (cli_lock.c): the data directory's lock and asking a running relay. */
#ifndef KOLLEGA_RELAY_CLI_ADMIN_H
#define KOLLEGA_RELAY_CLI_ADMIN_H

#include "cli.h"
#include "lock.h"

/* Take dir's lock (lock.h) for the rest of this process; with create, make
 * dir first when it is missing (serve, init, restore). 0, or the exit code
 * after printing why not ("a relay is already running on DIR (pid N)"). */
int kl_cli_lock(const char *dir, int create);
/* Whether a relay runs on dir right now: 1 (and *holder), 0, or the exit
 * code (> 1 never; KL_EXIT_OPER) after printing why it cannot be told. */
int kl_cli_running(const char *dir, kl_lock_holder_t *holder, int *running);
/* The line for a relay found running that cannot be asked (its control
 * socket is missing or silent): what to do instead. */
int kl_cli_ctl_error(const char *dir, int r);

#endif
