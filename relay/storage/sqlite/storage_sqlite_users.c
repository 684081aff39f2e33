/* relay/storage.h on sqlite: the route of a send (handle -> user id and
 * inbox), cached on the storage connection.
 *
 * Every 1:1 message needs its recipient's inbox, and reading it from the
 * users table was one of the handful of statements each send cost the
 * storage thread. A user's id and inbox never change (a reset invite
 * changes only the key), and a user is deleted only by
 * kl_storage_user_remove, which empties this cache on its connection (the
 * relay's own, through its control socket; with the relay stopped no
 * cache exists). So a route once read stays true, with one exception: a user
 * inserted by the current transaction (a register earlier in the same
 * group-commit batch, a shadow user of federation) disappears again if that
 * transaction rolls back, and its id may then be given to someone else.
 * So a route is cached only when its user id is at most users_max, the
 * largest id that was committed when the transaction began
 * (kl_sq_users_mark, run by kl_storage_batch_begin), or when the lookup runs
 * outside any transaction. The identity key is not cached: federation may
 * update a shadow user's key.
 *
 * The cache is an open-addressing table of KL_UCACHE_SLOTS with a keyed
 * hash (the key is random per connection, so handles cannot be chosen to
 * collide); when it is three quarters full it is emptied and refilled from
 * the misses that follow. It belongs to the connection and its thread. */
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage_sqlite.h"

#define KL_UCACHE_SLOTS 8192 /* a power of two */
#define KL_UCACHE_FILL (KL_UCACHE_SLOTS / 4 * 3)

typedef struct uslot {
    char *handle;            /* malloc'd; NULL when the slot is free */
    uint64_t hash;
    uint64_t id, inbox;
} uslot_t;

struct kl_sq_ucache {
    uint64_t seed;
    size_t used;
    uslot_t slot[KL_UCACHE_SLOTS];
};

/* FNV-1a over the seed and the handle. */
static uint64_t hash_of(uint64_t seed, const char *h, size_t len)
{
    uint64_t x = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        x ^= (uint8_t)h[i];
        x *= 0x100000001b3ull;
    }
    return x ^ (x >> 29);
}

static void clear(struct kl_sq_ucache *c)
{
    for (size_t i = 0; i < KL_UCACHE_SLOTS; i++) {
        free(c->slot[i].handle);
        c->slot[i].handle = NULL;
    }
    c->used = 0;
}

void kl_sq_ucache_free(kl_storage_t *st)
{
    if (st->ucache == NULL)
        return;
    clear(st->ucache);
    free(st->ucache);
    st->ucache = NULL;
}

int kl_sq_users_mark(kl_storage_t *st)
{
    uint64_t max = 0;
    int r = kl_sq_count_query(kl_sq_stmt(st, S_USER_MAX), &max);
    if (r == 0 && max > st->users_max)
        st->users_max = max;
    return r;
}

/* The slot holding handle, or the free slot where it would go. */
static uslot_t *find(struct kl_sq_ucache *c, const char *handle, size_t len, uint64_t hash)
{
    size_t i = (size_t)hash & (KL_UCACHE_SLOTS - 1);
    for (;;) {
        uslot_t *s = &c->slot[i];
        if (s->handle == NULL ||
            (s->hash == hash && strncmp(s->handle, handle, len + 1) == 0))
            return s;
        i = (i + 1) & (KL_UCACHE_SLOTS - 1); /* never full: see KL_UCACHE_FILL */
    }
}

/* Remember a route; a failed allocation only means a later miss. */
static void keep(kl_storage_t *st, const char *handle, size_t len, uint64_t hash, uint64_t id,
                 uint64_t inbox)
{
    struct kl_sq_ucache *c = st->ucache;
    if (c->used >= KL_UCACHE_FILL) {
        clear(c);
        c->seed = ((uint64_t)kl_random_u32() << 32) | kl_random_u32();
        hash = hash_of(c->seed, handle, len);
    }
    uslot_t *s = find(c, handle, len, hash);
    if (s->handle != NULL)
        return;
    s->handle = malloc(len + 1);
    if (s->handle == NULL)
        return;
    memcpy(s->handle, handle, len + 1);
    s->hash = hash;
    s->id = id;
    s->inbox = inbox;
    c->used++;
}

int kl_storage_user_route(kl_storage_t *st, const char *handle, uint64_t *id, uint64_t *inbox)
{
    size_t len = strlen(handle);
    if (len > KL_STORAGE_GROUP_ADDR_MAX)
        return KL_ENOTFOUND; /* longer than any handle or shadow address */
    if (st->ucache == NULL) {
        st->ucache = calloc(1, sizeof *st->ucache);
        if (st->ucache)
            st->ucache->seed = ((uint64_t)kl_random_u32() << 32) | kl_random_u32();
    }
    uint64_t hash = 0;
    if (st->ucache) {
        hash = hash_of(st->ucache->seed, handle, len);
        uslot_t *s = find(st->ucache, handle, len, hash);
        if (s->handle != NULL) {
            *id = s->id;
            *inbox = s->inbox;
            return 0;
        }
    }
    sqlite3_stmt *s = kl_sq_stmt(st, S_USER_ROUTE);
    sqlite3_bind_text(s, 1, handle, (int)len, SQLITE_STATIC);
    int r = kl_sq_row(s);
    if (r)
        return r;
    *id = kl_sq_u64(sqlite3_column_int64(s, 0));
    *inbox = kl_sq_u64(sqlite3_column_int64(s, 1));
    sqlite3_reset(s);
    if (st->ucache && (*id <= st->users_max || sqlite3_get_autocommit(st->db)))
        keep(st, handle, len, hash, *id, *inbox);
    return 0;
}

int kl_storage_token_set(kl_storage_t *st, uint64_t user, const uint8_t *hash)
{
    sqlite3_stmt *s = NULL;
    int r = kl_sq_prep(st, hash ? "INSERT OR REPLACE INTO delivery_tokens(user, hash)"
                                  " VALUES(?1, ?2)"
                                : "DELETE FROM delivery_tokens WHERE user = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)user);
    if (hash)
        sqlite3_bind_blob(s, 2, hash, 32, SQLITE_STATIC);
    return kl_sq_exec_fin(s);
}

int kl_storage_token_check(kl_storage_t *st, const char *handle, const uint8_t token[32],
                           int *ok)
{
    sqlite3_stmt *s = NULL;
    uint8_t want[32];
    *ok = 0;
    int r = kl_sq_prep(st, "SELECT t.hash FROM delivery_tokens t JOIN users u ON u.id = t.user"
                           " WHERE u.handle = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
    r = kl_sq_row(s);
    if (r == 0 && sqlite3_column_bytes(s, 0) == 32) {
        kl_sha256(token, 32, want);
        *ok = kl_memcmp(want, sqlite3_column_blob(s, 0), 32) == 0;
    }
    if (r == KL_ENOTFOUND)
        r = 0; /* no such user, or no token: not ok */
    sqlite3_finalize(s);
    kl_memzero(want, sizeof want);
    return r;
}
