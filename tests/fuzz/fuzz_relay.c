/* The relay dispatch fixture of the fuzz targets; see fuzz_relay.h. */
#include <stdio.h>
#include <string.h>

#include "fuzz_relay.h"
#include "kollega/crypto.h"
#include "kollega/x3dh.h"

/* ---- relay fixture ---------------------------------------------------- */

static void user_keys(fuzz_user_t *u, const char *handle)
{
    snprintf(u->handle, sizeof u->handle, "%s", handle);
    FUZZ_CHECK(kl_sign_keypair(u->pk, u->sk) == 0);
}

fuzz_relay_t *fuzz_relay_get(void)
{
    static fuzz_relay_t R;
    static int built;
    char dir[256], path[300];
    if (built)
        return &R;
    fuzz_init();
    fuzz_rng_reset(0x52454c4159ull);
    fuzz_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/relay.db", dir);
    FUZZ_CHECK(kl_storage_open(&R.st, path, KL_STORAGE_CREATE | KL_STORAGE_SYNC_NORMAL) == 0);
    R.cfg.relay_name = FUZZ_RELAY_NAME;
    R.cfg.max_body = 60 * 1024;
    R.cfg.ttl_default_s = 30 * 24 * 3600;
    R.cfg.ttl_max_s = 30 * 24 * 3600;
    /* Small quotas, so that QUOTA_EXCEEDED is within a fuzz input's reach. */
    R.cfg.quota.max_entries = 8;
    R.cfg.quota.max_bytes = 8192;
    R.cfg.rate = 50;
    R.cfg.burst = 40;
    for (size_t i = 0; i < sizeof R.hh; i++)
        R.hh[i] = (uint8_t)(0xa5 ^ (i * 7));
    user_keys(&R.alice, "alice");
    user_keys(&R.bob, "bob");
    user_keys(&R.carol, "carol");

    kl_storage_t *st = R.st;
    uint64_t now = FUZZ_NOW_MS, later = FUZZ_NOW_MS + 3650ull * 24 * 3600 * 1000;
    FUZZ_CHECK(kl_storage_invite_create(st, FUZZ_INVITE, 1000000, later, now) == 0);
    FUZZ_CHECK(kl_storage_register(st, "alice", R.alice.pk, FUZZ_INVITE, now, &R.alice.u) == 0);
    FUZZ_CHECK(kl_storage_register(st, "bob", R.bob.pk, FUZZ_INVITE, now, &R.bob.u) == 0);

    uint8_t spk_pub[32], spk_priv[32], sig[64];
    kl_storage_opk_t opks[5];
    kl_x_keypair(spk_pub, spk_priv);
    FUZZ_CHECK(kl_x3dh_spk_sign(R.bob.sk, 1, spk_pub, sig) == 0);
    FUZZ_CHECK(kl_storage_prekey_set_signed(st, R.bob.u.id, 1, spk_pub, sig) == 0);
    for (uint32_t i = 0; i < 5; i++) {
        opks[i].id = 100 + i;
        kl_x_keypair(opks[i].public_key, spk_priv);
    }
    FUZZ_CHECK(kl_storage_prekey_add_onetime(st, R.bob.u.id, opks, 5) == 0);

    kl_storage_quota_t q = {1000, 1 << 20};
    for (int i = 0; i < 3; i++) {
        uint8_t body[100];
        uint64_t seq = 0;
        memset(body, 'a' + i, sizeof body);
        FUZZ_CHECK(kl_storage_log_append(st, R.alice.u.inbox, now, later, body,
                                         sizeof body - (size_t)i * 10, &q, &seq) == 0);
    }
    built = 1;
    return &R;
}
