#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/tcpaddr.h"
#include "admin.h"
#include "keyfile.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_admin.h"

int kl_admin_path(const char *dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? KL_ETOOBIG : 0;
}

int kl_admin_data_dir(const char *flag, char *out, size_t cap)
{
    const char *v;
    int n;
    if (flag && flag[0])
        n = snprintf(out, cap, "%s", flag);
    else if ((v = getenv("KOLLEGA_RELAY_DATA")) && v[0])
        n = snprintf(out, cap, "%s", v);
    else if ((v = getenv("XDG_DATA_HOME")) && v[0])
        n = snprintf(out, cap, "%s/kollega-relay", v);
    else if ((v = getenv("HOME")) && v[0])
        n = snprintf(out, cap, "%s/.local/share/kollega-relay", v);
    else
        return KL_ENOTFOUND;
    return n < 0 || (size_t)n >= cap ? KL_ETOOBIG : 0;
}

int kl_admin_mkdir(const char *dir)
{
    char tmp[KL_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return KL_EINVAL;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return KL_EIO;
        tmp[i] = saved;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : KL_EIO;
}

int kl_admin_state(const char *dir, kl_admin_state_t *out)
{
    char key[KL_PATH_MAX], db[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1];
    if (kl_admin_path(dir, KL_KEYFILE_NAME, key, sizeof key) ||
        kl_admin_path(dir, KL_DB_NAME, db, sizeof db))
        return KL_ETOOBIG;
    int have_key = access(key, F_OK) == 0;
    int named = 0;
    if (access(db, F_OK) == 0) {
        kl_storage_t *st = NULL;
        int r = kl_storage_open(&st, db, KL_STORAGE_READONLY);
        if (r == 0)
            r = kl_storage_meta_get(st, "name", name, sizeof name);
        kl_storage_close(st);
        if (r != 0 && r != KL_ENOTFOUND)
            return r;
        named = r == 0;
    }
    if (named)
        *out = have_key ? KL_STATE_READY : KL_STATE_NO_KEY;
    else
        *out = have_key ? KL_STATE_PARTIAL : KL_STATE_NONE;
    return 0;
}

int kl_admin_init(const char *dir, const char *name, const char *listen, int sync_normal)
{
    char key[KL_PATH_MAX], db[KL_PATH_MAX], b64[64], host[KL_HOST_MAX + 1];
    uint8_t pk[32];
    uint8_t *sk = NULL;
    uint16_t port;
    kl_storage_t *st = NULL;
    if (!kl_relayname_valid(name) || kl_listen_parse(listen, host, sizeof host, &port))
        return KL_EINVAL;
    int r = kl_admin_mkdir(dir);
    if (r)
        return r;
    if (kl_admin_path(dir, KL_KEYFILE_NAME, key, sizeof key) ||
        kl_admin_path(dir, KL_DB_NAME, db, sizeof db))
        return KL_ETOOBIG;
    /* The key first: an interrupted init leaves a key without a named
     * database, which the next init or serve completes. */
    r = kl_keyfile_create(key, pk);
    if (r == KL_EEXIST)
        r = kl_keyfile_load(key, &sk, pk);
    if (sk)
        kl_secure_free(sk);
    if (r)
        return r;
    r = kl_storage_open(&st, db, KL_STORAGE_CREATE | (sync_normal ? KL_STORAGE_SYNC_NORMAL : 0));
    if (r)
        return r;
    r = kl_b64_encode(pk, 32, b64, sizeof b64);
    if (r == 0)
        r = kl_storage_batch_begin(st);
    if (r == 0) {
        r = kl_storage_meta_set(st, "listen", listen);
        if (r == 0)
            r = kl_storage_meta_set(st, "public_key", b64);
        /* name last: it is what marks the state complete */
        if (r == 0)
            r = kl_storage_meta_set(st, "name", name);
        if (r == 0)
            r = kl_storage_batch_commit(st);
        else
            kl_storage_batch_rollback(st);
    }
    kl_storage_close(st);
    return r;
}

int kl_admin_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0';
}

int kl_admin_token_addr(kl_storage_t *st, char *host, size_t cap, uint16_t *port)
{
    static const char *keys[] = {"advertise", "address", "listen"};
    char v[KL_STORAGE_META_MAX + 1];
    for (size_t i = 0; i < 3; i++) {
        int r = kl_storage_meta_get(st, keys[i], v, sizeof v);
        if (r == KL_ENOTFOUND)
            continue;
        if (r)
            return r;
        r = kl_listen_parse(v, host, cap, port);
        if (r || *port == 0)
            continue; /* an unusable stored value: try the next source */
        /* Listening on every interface says nothing about where clients
         * reach the relay; the relay name need not resolve to it either.
         * Refuse rather than guess: the operator sets advertise. */
        return kl_admin_wildcard(host) ? KL_ESTATE : 0;
    }
    return KL_ENOTFOUND;
}

static int make_invite(kl_storage_t *st, uint32_t uses, uint64_t ttl_s, uint64_t now_ms,
                       const char *handle, char *token, size_t cap, uint64_t *expires_ms)
{
    kl_invite_t inv;
    uint8_t raw[32];
    char b64[64];
    size_t kl = 0;
    int r;
    memset(&inv, 0, sizeof inv);
    if (uses == 0 || ttl_s == 0)
        return KL_EINVAL;
    r = kl_storage_meta_get(st, "name", inv.relay, sizeof inv.relay);
    if (r == 0)
        r = kl_storage_meta_get(st, "public_key", b64, sizeof b64);
    if (r == 0)
        r = kl_b64_decode(b64, inv.key, sizeof inv.key, &kl);
    if (r == 0 && kl != 32)
        r = KL_EPROTO;
    if (r == 0)
        r = kl_admin_token_addr(st, inv.host, sizeof inv.host, &inv.port);
    if (r)
        goto out;
    /* 32 random bytes: 43 base64url characters, unguessable. */
    kl_random(raw, sizeof raw);
    r = kl_b64_encode(raw, sizeof raw, inv.code, sizeof inv.code);
    if (r)
        goto out;
    *expires_ms = now_ms + ttl_s * 1000;
    r = kl_invite_format(&inv, token, cap);
    if (r == 0)
        r = handle ? kl_storage_invite_create_for(st, inv.code, uses, *expires_ms, now_ms, handle)
                   : kl_storage_invite_create(st, inv.code, uses, *expires_ms, now_ms);
    if (r)
        kl_memzero(token, cap);
out:
    kl_memzero(raw, sizeof raw);
    kl_memzero(&inv, sizeof inv);
    return r;
}

int kl_admin_invite(kl_storage_t *st, uint32_t uses, uint64_t ttl_s, uint64_t now_ms, char *token,
                    size_t cap, uint64_t *expires_ms)
{
    return make_invite(st, uses, ttl_s, now_ms, NULL, token, cap, expires_ms);
}

int kl_admin_invite_reset(kl_storage_t *st, const char *handle, uint64_t ttl_s, uint64_t now_ms,
                          char *token, size_t cap, uint64_t *expires_ms)
{
    return make_invite(st, 1, ttl_s, now_ms, handle, token, cap, expires_ms);
}

void kl_admin_time(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int kl_admin_duration(const char *s, uint64_t *seconds)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return KL_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return KL_EINVAL;
    uint64_t mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    else if (*end == 'd')
        mul = 86400, end++;
    if (*end != '\0' || v == 0 || v > UINT32_MAX)
        return KL_EINVAL;
    *seconds = v * mul;
    return 0;
}
