/* Scratch directories for unit tests that use real sqlite files. */
#ifndef KOLLEGA_TESTS_TMPDIR_H
#define KOLLEGA_TESTS_TMPDIR_H

/* Remove dir and the files in it (not subdirectories). */
void kl_test_rmdir(const char *dir);

#endif
