/* kollega-relay's configuration file: one [relay] section of key = value
 * lines, a key per serve flag (cli.h kl_cli_key). serve reads it at start
 * and again on SIGHUP; flags on the command line win over it both times.
 * etc/relay.conf in the source tree is the commented reference. */
#ifndef KOLLEGA_RELAY_CONFIG_H
#define KOLLEGA_RELAY_CONFIG_H

#include <stdint.h>

#include "cli.h"

#define KL_CONFIG_DEFAULT "/etc/kollega/relay.conf"
#define KL_CONFIG_ENV "KOLLEGA_RELAY_CONFIG"

/* The file serve reads when --config is not given: $KOLLEGA_RELAY_CONFIG
 * when set (an empty value: none), else KL_CONFIG_DEFAULT when it exists;
 * NULL for none. */
const char *kl_config_default_path(void);

/* Apply the keys of the file at path to o (values are checked as their
 * flags are). 0, or KL_EIO (cannot read it) / KL_EINVAL (a bad line) with
 * err saying "PATH:LINE: what is wrong and what is expected". *set gets
 * bit i for each key kl_cli_key(i) the file sets (may be NULL). */
int kl_config_load(kl_cli_opts_t *o, const char *path, uint64_t *set, char *err, size_t cap);

/* The options serve runs with: o's defaults, then the file at path (NULL:
 * none), then the command line o->argc/argv over both. o must hold
 * defaults, cmd and the command line. Errors as kl_config_load. */
int kl_config_serve_opts(kl_cli_opts_t *o, const char *path, char *err, size_t cap);

#endif
