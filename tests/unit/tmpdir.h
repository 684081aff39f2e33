/* Scratch directories for unit tests that use real files (the library
 * kl_test_tmpdir; a relay database in one: storage_fixture.h). */
#ifndef KOLLEGA_TESTS_TMPDIR_H
#define KOLLEGA_TESTS_TMPDIR_H

#include <stddef.h>

/* Remove dir and the files in it (not subdirectories). */
void kl_test_rmdir(const char *dir);
/* The whole file at path, malloc'd (free it), its size in *len; NULL (and
 * *len 0) if it cannot be read. */
unsigned char *kl_test_read_file(const char *path, size_t *len);
/* A cmocka fixture for tests of the client store: *state becomes a
 * kl_test_files_t with a fresh scratch directory (libsodium initialised)
 * and path = dir/kollega.db, not created; teardown removes the directory. */
typedef struct kl_test_files {
    char dir[64];
    char path[128];
} kl_test_files_t;
int kl_test_store_setup(void **state);
int kl_test_store_teardown(void **state);
/* A new scratch directory from tmpl ("/tmp/kl-x-XXXXXX", at most 63
 * characters) in dir[64], and path[128] = dir/file. 0, or -1. */
int kl_test_scratch(char dir[64], char path[128], const char *tmpl, const char *file);

#endif
