/* Allocation wrappers that check freed blocks for known secrets; see
 * wipe.c for how and for the limits of what this proves. */
#ifndef KL_TEST_WIPE_H
#define KL_TEST_WIPE_H

#include <stddef.h>

/* Start a scenario: forget earlier secrets and reports. */
void wipe_scenario_begin(void);
/* A secret (8..128 bytes) no freed block may still hold. */
void wipe_secret_add(const char *name, const void *b, size_t len);
/* End the scenario: report blocks of it never freed by Kollega code, print
 * every report, and return the number of violations. */
size_t wipe_scenario_end(const char *what);
/* The detector on itself: a plain free of a secret, a kl_free_wipe of one
 * and a block freed behind the wrappers' back; returns the violations
 * (2 when the detector works). */
size_t wipe_self_test(void);
/* A fresh temporary directory /tmp/kl-wipe-WHAT-XXXXXX; remove a sqlite
 * database and its side files from a directory. */
void wipe_tmpdir(char *dir, size_t cap, const char *what);
void wipe_rm_db(const char *dir, const char *name);

#endif
