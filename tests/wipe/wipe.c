/* Secrets are wiped before their memory goes back to the allocator: the
 * checking half, shared by test_wipe_relay.c and test_wipe_client.c (two
 * binaries, since the relay and client libraries cannot be linked into
 * one).
 *
 * How: this binary is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=free (tests/CMakeLists.txt), so every allocation
 * made by Kollega's own code (libkollega, the relay and client libraries
 * and this file) goes through the wrappers below, which remember each
 * block's size. A scenario registers the secrets it knows (private keys,
 * invite codes, message text, a passphrase) and then runs real code paths.
 * The wrappers flag:
 *   - a free() of a block that still holds a registered secret;
 *   - a realloc() of a block holding one (the old copy would be released
 *     unwiped if the block moved);
 *   - a block allocated during the scenario that Kollega's code never
 *     freed: it was either leaked or freed by a library's own free() (e.g.
 *     protobuf-c freeing a message it did not allocate), where nobody can
 *     check that it was wiped first.
 * A self-test proves the detector fires on a plain free() and stays quiet
 * on kl_free_wipe().
 *
 * What it does not prove: that secrets the test cannot name (ratchet chain
 * keys, X3DH outputs, one-time prekey private halves) are wiped; that
 * stack copies are wiped (the code uses kl_memzero for those, but this test
 * does not look at stacks); anything about memory that libraries (sqlite,
 * libsodium, protobuf-c unpack with their default allocator) allocate and
 * free internally; sodium_malloc'd memory, which sodium_free wipes itself;
 * and code paths the scenarios do not run. It checks the paths below, and
 * fails when one of them starts to free a known secret unwiped. */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "wipe.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

/* ---- allocation tracking ---------------------------------------------- */

#define SLOTS (1u << 18) /* open addressing, power of two */
#define MAX_SECRETS 64
#define MAX_REPORTS 32

typedef struct slot {
    void *p;          /* NULL: empty; TOMB: deleted */
    size_t size;
    uint64_t gen;     /* scenario generation at allocation */
} slot_t;

static slot_t table[SLOTS];
static char tomb;
#define TOMB ((void *)&tomb)
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t gen = 1;
static uint64_t scenario_gen = UINT64_MAX; /* first generation of the running scenario */
static size_t live;

typedef struct secret {
    const char *name;
    uint8_t bytes[128];
    size_t len;
} secret_t;

static secret_t secrets[MAX_SECRETS];
static size_t n_secrets;
static size_t violations, checked_frees;
static char reports[MAX_REPORTS][160];
static size_t n_reports;

static size_t slot_of(const void *p)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (SLOTS - 1);
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    violations++;
    if (n_reports == MAX_REPORTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reports[n_reports++], sizeof reports[0], fmt, ap);
    va_end(ap);
}

static void track(void *p, size_t size)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&mu);
    if (live * 2 >= SLOTS) {
        fprintf(stderr, "test_wipe: too many live blocks\n");
        abort();
    }
    /* The address may still be listed when a library freed the block
     * behind our back and malloc handed it out again. */
    size_t i = slot_of(p), free_slot = SLOTS;
    for (; table[i].p != NULL; i = (i + 1) & (SLOTS - 1)) {
        if (table[i].p == p)
            break;
        if (table[i].p == TOMB && free_slot == SLOTS)
            free_slot = i;
    }
    if (table[i].p == p) {
        if (table[i].gen >= scenario_gen)
            report("a %zu-byte block was freed by a library, unchecked", table[i].size);
        live--;
    } else if (free_slot != SLOTS) {
        i = free_slot;
    }
    table[i].p = p;
    table[i].size = size;
    table[i].gen = gen;
    live++;
    pthread_mutex_unlock(&mu);
}

/* Remove p; its size via *size. 0 if p was not tracked. Under mu. */
static int untrack(void *p, size_t *size)
{
    size_t i = slot_of(p);
    while (table[i].p != NULL) {
        if (table[i].p == p) {
            *size = table[i].size;
            table[i].p = TOMB;
            live--;
            return 1;
        }
        i = (i + 1) & (SLOTS - 1);
    }
    return 0;
}

/* The name of the first registered secret found in the block, or NULL. */
static const char *holds_secret(const uint8_t *b, size_t n)
{
    for (size_t s = 0; s < n_secrets; s++) {
        const secret_t *k = &secrets[s];
        if (k->len <= n && memmem(b, n, k->bytes, k->len) != NULL)
            return k->name;
    }
    return NULL;
}

void *__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);
    track(p, n);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    track(p, n * size);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (p != NULL) {
        size_t old = 0;
        pthread_mutex_lock(&mu);
        int known = untrack(p, &old);
        const char *s = known ? holds_secret(p, old) : NULL;
        if (s)
            report("realloc of a %zu-byte block holding %s", old, s);
        pthread_mutex_unlock(&mu);
    }
    void *q = __real_realloc(p, n);
    if (q == NULL && p != NULL && n != 0)
        track(p, n); /* the old block is still there (size unknown: use n) */
    track(q, n);
    return q;
}

void __wrap_free(void *p)
{
    if (p == NULL)
        return;
    size_t size = 0;
    pthread_mutex_lock(&mu);
    if (untrack(p, &size)) {
        checked_frees++;
        const char *s = holds_secret(p, size);
        if (s)
            report("free of a %zu-byte block still holding %s", size, s);
    }
    pthread_mutex_unlock(&mu);
    __real_free(p);
}

/* ---- scenario bookkeeping --------------------------------------------- */

void wipe_secret_add(const char *name, const void *b, size_t len)
{
    assert_true(n_secrets < MAX_SECRETS && len >= 8 && len <= sizeof secrets[0].bytes);
    secrets[n_secrets].name = name;
    memcpy(secrets[n_secrets].bytes, b, len);
    secrets[n_secrets].len = len;
    n_secrets++;
}

void wipe_scenario_begin(void)
{
    pthread_mutex_lock(&mu);
    n_secrets = 0;
    violations = checked_frees = n_reports = 0;
    scenario_gen = ++gen;
    pthread_mutex_unlock(&mu);
}

/* Blocks of this scenario still tracked were never freed by Kollega code. */
size_t wipe_scenario_end(const char *what)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i].p != NULL && table[i].p != TOMB && table[i].gen >= scenario_gen)
            report("a %zu-byte block was not freed by Kollega code (leaked, or freed by a "
                   "library without a chance to wipe it)", table[i].size);
    size_t v = violations;
    for (size_t i = 0; i < n_reports; i++)
        fprintf(stderr, "%s: %s\n", what, reports[i]);
    fprintf(stderr, "%s: %zu frees checked, %zu violations\n", what, checked_frees, v);
    n_secrets = 0;
    scenario_gen = UINT64_MAX;
    pthread_mutex_unlock(&mu);
    return v;
}

/* The detector itself: it must fire, or every other test proves nothing. */
size_t wipe_self_test(void)
{
    uint8_t key[32];
    kl_random(key, sizeof key);
    wipe_scenario_begin();
    wipe_secret_add("a test key", key, sizeof key);
    uint8_t *b = malloc(100);
    assert_non_null(b);
    memcpy(b + 10, key, sizeof key);
    /* Keep the compiler from eliding the malloc/memcpy/free as dead. */
    __asm__ volatile("" : : "r"(b) : "memory");
    free(b);
    uint8_t *c = malloc(100);
    assert_non_null(c);
    memcpy(c + 50, key, sizeof key);
    kl_free_wipe(c, 100);
    uint8_t *d = malloc(40);
    assert_non_null(d);
    __real_free(d); /* freed behind the wrapper's back */
    kl_memzero(key, sizeof key);
    return wipe_scenario_end("self-test");
}

void wipe_tmpdir(char *dir, size_t cap, const char *what)
{
    snprintf(dir, cap, "/tmp/kl-wipe-%s-XXXXXX", what);
    assert_non_null(mkdtemp(dir));
}

void wipe_rm_db(const char *dir, const char *name)
{
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[256];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s%s", dir, name, sfx[i]);
        unlink(p);
    }
}

