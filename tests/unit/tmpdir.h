/* Scratch directories for unit tests that use real sqlite files. */
#ifndef KOLLEGA_TESTS_TMPDIR_H
#define KOLLEGA_TESTS_TMPDIR_H

struct kl_storage;

/* Remove dir and the files in it (not subdirectories). */
void kl_test_rmdir(const char *dir);
/* A new scratch directory from tmpl ("/tmp/kl-x-XXXXXX", at most 63
 * characters) in dir[64], and a new relay database path[128] in it, opened
 * (created) in *st. 0, or -1 (the directory may exist then). */
int kl_test_storage(char dir[64], char path[128], const char *tmpl, struct kl_storage **st);

#endif
