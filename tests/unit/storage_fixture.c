/* A relay database in a scratch directory (storage_fixture.h). */
#include "storage_fixture.h"
#include "tmpdir.h"

int kl_test_storage(char dir[64], char path[128], const char *tmpl, kl_storage_t **st)
{
    if (kl_test_scratch(dir, path, tmpl, "relay.db") != 0)
        return -1;
    return kl_storage_open(st, path, KL_STORAGE_CREATE) == 0 ? 0 : -1;
}
