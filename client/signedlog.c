/* Helpers shared by groups and channels in the client. See signedlog.h. */
#include <stdio.h>
#include <string.h>

#include "kollega/err.h"
#include "signedlog.h"

int kl_slog_complete(const kl_cli_t *cli, const char *in, char sigil, char *full, size_t cap)
{
    if (in[0] != sigil)
        return KL_EINVAL;
    if (strchr(in, '@') == NULL) {
        int n = snprintf(full, cap, "%s@%s", in, cli->relay.name);
        if (n < 0 || (size_t)n >= cap)
            return KL_EINVAL;
    } else if (strlen(in) >= cap) {
        return KL_EINVAL;
    } else {
        memcpy(full, in, strlen(in) + 1);
    }
    return 0;
}

void kl_slog_json_line(kl_json_t *j)
{
    kl_json_obj_end(j);
    if (kl_json_cstr(j))
        printf("%s\n", kl_json_cstr(j));
    fflush(stdout);
    kl_json_free(j);
}
