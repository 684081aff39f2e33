/* relay/admin.c and relay/keyfile.c: data directory state, invite tokens,
 * the relay key file and its permissions. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/tcpaddr.h"
#include "cli/admin.h"
#include "cli/keyfile.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage.h"

#define NOW 1700000000000ull

static int setup(void **state)
{
    char *dir = malloc(64);
    if (dir == NULL || kl_crypto_init() != 0)
        return -1;
    snprintf(dir, 64, "/tmp/kl-admin-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[400];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    rm_tree(*state);
    free(*state);
    return 0;
}

static void test_duration_and_listen_parse(void **state)
{
    (void)state;
    uint64_t s;
    assert_int_equal(kl_admin_duration("30m", &s), 0);
    assert_int_equal(s, 1800);
    assert_int_equal(kl_admin_duration("12h", &s), 0);
    assert_int_equal(s, 43200);
    assert_int_equal(kl_admin_duration("7d", &s), 0);
    assert_int_equal(s, 604800);
    assert_int_equal(kl_admin_duration("90", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(kl_admin_duration("0d", &s), KL_EINVAL);
    assert_int_equal(kl_admin_duration("3x", &s), KL_EINVAL);
    assert_int_equal(kl_admin_duration("-1h", &s), KL_EINVAL);
    assert_int_equal(kl_admin_duration("", &s), KL_EINVAL);
    char host[300];
    uint16_t port = 1;
    assert_int_equal(kl_listen_parse("127.0.0.1:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(kl_listen_parse("[::1]:7447", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7447);
    assert_int_equal(kl_listen_parse("127.0.0.1", host, sizeof host, &port), KL_EINVAL);
    assert_int_equal(kl_listen_parse("127.0.0.1:70000", host, sizeof host, &port),
                     KL_EINVAL);
}

static void test_state_init_and_refusals(void **state)
{
    char sub[128], key[200];
    snprintf(sub, sizeof sub, "%s/a/b", (char *)*state);
    kl_admin_state_t s;
    assert_int_equal(kl_admin_state(sub, &s), 0);
    assert_int_equal(s, KL_STATE_NONE);
    assert_int_equal(kl_admin_init(sub, "Bad_Name", KL_DEFAULT_LISTEN, 0), KL_EINVAL);
    assert_int_equal(kl_admin_init(sub, "oslo.test", KL_DEFAULT_LISTEN, 0), 0);
    assert_int_equal(kl_admin_state(sub, &s), 0);
    assert_int_equal(s, KL_STATE_READY);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* data dir private */
    snprintf(key, sizeof key, "%s/relay.key", sub);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    /* a database without its key is not silently re-keyed */
    assert_int_equal(rename(key, "/tmp/kl-admin-moved.key"), 0);
    assert_int_equal(kl_admin_state(sub, &s), 0);
    assert_int_equal(s, KL_STATE_NO_KEY);
    assert_int_equal(rename("/tmp/kl-admin-moved.key", key), 0);
}

static void test_keyfile_permissions_and_size(void **state)
{
    char key[200];
    uint8_t pk[32], pk2[32], *sk = NULL;
    snprintf(key, sizeof key, "%s/relay.key", (char *)*state);
    assert_int_equal(kl_keyfile_create(key, pk), 0);
    assert_int_equal(kl_keyfile_create(key, pk2), KL_EEXIST); /* never replaced */
    assert_int_equal(kl_keyfile_load(key, &sk, pk2), 0);
    assert_memory_equal(pk, pk2, 32);
    uint8_t derived[32];
    assert_int_equal(kl_x_public(sk, derived), 0);
    assert_memory_equal(derived, pk, 32);
    kl_secure_free(sk);
    sk = NULL;
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(kl_keyfile_load(key, &sk, pk2), KL_EREFUSED);
    assert_null(sk);
    assert_int_equal(chmod(key, 0620), 0);
    assert_int_equal(kl_keyfile_load(key, &sk, pk2), KL_EREFUSED);
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(truncate(key, 31), 0);
    assert_int_equal(kl_keyfile_load(key, &sk, pk2), KL_EPROTO);
    unlink(key);
    assert_int_equal(kl_keyfile_load(key, &sk, pk2), KL_ENOTFOUND);
}

static kl_storage_t *open_db(const char *dir)
{
    char db[200];
    kl_storage_t *st = NULL;
    snprintf(db, sizeof db, "%s/relay.db", dir);
    assert_int_equal(kl_storage_open(&st, db, 0), 0);
    return st;
}

static void test_token_address_rules(void **state)
{
    const char *dir = *state;
    char host[300];
    uint16_t port;
    assert_int_equal(kl_admin_init(dir, "oslo.test", "0.0.0.0:7447", 0), 0);
    kl_storage_t *st = open_db(dir);
    /* listening on a wildcard: no address to give clients, and no guess
     * (the relay name need not resolve to this machine) */
    assert_int_equal(kl_admin_token_addr(st, host, sizeof host, &port), KL_ESTATE);
    char token[KL_INVITE_MAX + 1];
    uint64_t expires;
    assert_int_equal(kl_admin_invite(st, 1, 60, 1000, token, sizeof token, &expires), KL_ESTATE);
    /* the bound address wins over the configured one */
    assert_int_equal(kl_storage_meta_set(st, "address", "127.0.0.1:40001"), 0);
    assert_int_equal(kl_admin_token_addr(st, host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 40001);
    assert_int_equal(kl_storage_meta_set(st, "address", "[::]:40002"), 0);
    assert_int_equal(kl_admin_token_addr(st, host, sizeof host, &port), KL_ESTATE);
    /* an advertised address wins over both */
    assert_int_equal(kl_storage_meta_set(st, "advertise", "relay.example.org:443"), 0);
    assert_int_equal(kl_admin_token_addr(st, host, sizeof host, &port), 0);
    assert_string_equal(host, "relay.example.org");
    assert_int_equal(port, 443);
    kl_storage_close(st);
}

static void test_invite_token_admits_registration(void **state)
{
    const char *dir = *state;
    char token[KL_INVITE_MAX + 1], b64[64];
    uint64_t expires;
    assert_int_equal(kl_admin_init(dir, "oslo.test", "127.0.0.1:7447", 0), 0);
    kl_storage_t *st = open_db(dir);
    assert_int_equal(kl_admin_invite(st, 2, 3600, NOW, token, sizeof token, &expires), 0);
    assert_int_equal(expires, NOW + 3600000);
    kl_invite_t inv;
    assert_int_equal(kl_invite_parse(token, &inv), 0);
    assert_string_equal(inv.relay, "oslo.test");
    assert_string_equal(inv.host, "127.0.0.1");
    assert_int_equal(inv.port, 7447);
    assert_int_equal(kl_storage_meta_get(st, "public_key", b64, sizeof b64), 0);
    uint8_t key[32];
    size_t kl;
    assert_int_equal(kl_b64_decode(b64, key, sizeof key, &kl), 0);
    assert_memory_equal(inv.key, key, 32);
    assert_int_equal(strlen(inv.code), 43);
    uint8_t ik[32] = {5};
    kl_storage_user_t u;
    assert_int_equal(kl_storage_register(st, "a1", ik, inv.code, NOW, &u), 0);
    assert_int_equal(kl_storage_register(st, "a2", ik, inv.code, NOW, &u), 0);
    assert_int_equal(kl_storage_register(st, "a3", ik, inv.code, NOW, &u), KL_EREFUSED);
    /* two invites never share a code */
    char token2[KL_INVITE_MAX + 1];
    assert_int_equal(kl_admin_invite(st, 1, 60, NOW, token2, sizeof token2, &expires), 0);
    assert_string_not_equal(token, token2);
    kl_storage_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_and_listen_parse),
        cmocka_unit_test_setup_teardown(test_state_init_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_permissions_and_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_address_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_token_admits_registration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
