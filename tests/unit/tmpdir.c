/* Scratch directories for unit tests that use real sqlite files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage.h"
#include "tmpdir.h"

void kl_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[400];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int kl_test_storage(char dir[64], char path[128], const char *tmpl, kl_storage_t **st)
{
    snprintf(dir, 64, "%s", tmpl);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, 128, "%s/relay.db", dir);
    return kl_storage_open(st, path, KL_STORAGE_CREATE) == 0 ? 0 : -1;
}
