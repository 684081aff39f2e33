/* Helpers shared by the client's two signed-log features: ERFA groups
 * (group.c, cmd_group.c) and broadcast channels (channels.c,
 * cmd_channel.c). */
#ifndef KOLLEGA_CLIENT_SIGNEDLOG_H
#define KOLLEGA_CLIENT_SIGNEDLOG_H

#include <stddef.h>

#include "cli.h"
#include "cmdline/json.h"

/* Complete an address typed by the user for a log whose addresses start
 * with sigil ('#' for groups, '!' for channels): "#name" becomes
 * "#name@<home relay>", "#name@relay" is copied as it is. Returns 0, or
 * KL_EINVAL if in does not start with sigil or the result does not fit
 * full[cap]. Only the form is completed: the caller validates the result. */
int kl_slog_complete(const kl_cli_t *cli, const char *in, char sigil, char *full, size_t cap);

/* End the JSON object j, print it as one line, flush stdout and free j. */
void kl_slog_json_line(kl_json_t *j);

#endif
