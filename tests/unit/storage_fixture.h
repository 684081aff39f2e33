/* A relay database in a scratch directory, for the unit tests of the
 * relay's storage and of what runs on it (the library
 * kl_test_storage_fixture; the directory: tmpdir.h). */
#ifndef KOLLEGA_TESTS_STORAGE_FIXTURE_H
#define KOLLEGA_TESTS_STORAGE_FIXTURE_H

#include "storage/storage.h"

/* A new scratch directory from tmpl ("/tmp/kl-x-XXXXXX", at most 63
 * characters) in dir[64], and a new relay database path[128] in it, opened
 * (created) in *st. 0, or -1 (the directory may exist then; remove it with
 * kl_test_rmdir). */
int kl_test_storage(char dir[64], char path[128], const char *tmpl, kl_storage_t **st);

#endif
