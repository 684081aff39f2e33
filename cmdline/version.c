/* --version of kollega, kollega-relay and kollega-bench (cmdline/version.h);
 * the version itself is KL_VERSION (kollega/version.h). */
#include <stdio.h>
#include <string.h>

#include "cmdline/json.h"
#include "cmdline/version.h"
#include "kollega/version.h"

int kl_version_cli(const char *prog, int argc, char **argv)
{
    int version = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0)
            version = 1;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else
            return -1;
    }
    if (!version)
        return -1;
    if (!json) {
        printf("%s %s\n", prog, KL_VERSION);
        return 0;
    }
    kl_json_t j;
    kl_json_init(&j);
    kl_json_obj_begin(&j, NULL);
    kl_json_str(&j, "program", prog);
    kl_json_str(&j, "version", KL_VERSION);
    kl_json_obj_end(&j);
    int r = kl_json_cstr(&j) ? 0 : 1;
    if (r == 0)
        printf("%s\n", kl_json_cstr(&j));
    else
        fprintf(stderr, "%s: out of memory\n", prog);
    kl_json_free(&j);
    return r;
}
