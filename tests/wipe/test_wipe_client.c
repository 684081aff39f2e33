/* Secrets are wiped before free, on the client's paths: encrypted stores,
 * identities, X3DH, the Double Ratchet and sealed sender. See wipe.c for
 * how it checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "identity.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "session.h"
#include "store.h"
#include "wipe.h"

static void test_detector_fires_on_plain_free(void **state)
{
    (void)state;
    assert_int_equal(wipe_self_test(), 2);
}

typedef struct party {
    char dir[64], path[128];
    kl_store_t *st;
    kl_identity_t me;
    kl_prekey_batch_t batch;
} party_t;

static void party_new(party_t *p, const char *address, const char *pass)
{
    kl_relay_info_t relay;
    memset(p, 0, sizeof *p);
    memset(&relay, 0, sizeof relay);
    wipe_tmpdir(p->dir, sizeof p->dir, "client");
    snprintf(p->path, sizeof p->path, "%s/kollega.db", p->dir);
    snprintf(relay.name, sizeof relay.name, "oslo.test");
    snprintf(relay.host, sizeof relay.host, "127.0.0.1");
    relay.port = 7447;
    kl_random(relay.key, 32);
    assert_int_equal(kl_store_create(p->path, pass, &p->st), 0);
    assert_int_equal(kl_identity_generate(&p->me, address), 0);
    assert_int_equal(kl_store_begin(p->st), 0);
    assert_int_equal(kl_identity_save(p->st, &p->me, &relay), 0);
    assert_int_equal(kl_store_commit(p->st), 0);
    assert_int_equal(kl_prekeys_generate(p->st, &p->me, 3, 1, &p->batch), 0);
}

static void party_free(party_t *p)
{
    kl_store_close(p->st);
    kl_identity_wipe(&p->me);
    wipe_rm_db(p->dir, "kollega.db");
    rmdir(p->dir);
}

static void send_text(party_t *from, party_t *to, int with_bundle, const char *text)
{
    kl_prekey_bundle_t b;
    uint8_t id[16], *body = NULL;
    size_t len = 0;
    kl_random(id, sizeof id);
    if (with_bundle)
        assert_int_equal(kl_prekeys_local_bundle(to->st, &to->me, to->batch.ids[0], &b), 0);
    assert_int_equal(kl_session_encrypt(from->st, &from->me, to->me.address, to->me.pk,
                                        with_bundle ? &b : NULL, id, 1700000000000ull, text,
                                        strlen(text), &body, &len),
                     0);
    kl_inbound_t in;
    kl_decrypted_t d;
    assert_int_equal(kl_session_open(&to->me, body, len, &in), 0);
    assert_int_equal(kl_session_decrypt(to->st, &to->me, &in, &d), 0);
    assert_int_equal(kl_store_begin(to->st), 0);
    assert_int_equal(kl_session_apply(to->st, in.sender, &d), 0);
    assert_int_equal(kl_store_commit(to->st), 0);
    assert_string_equal(d.content.text, text);
    kl_decrypted_free(&d);
    kl_inbound_free(&in);
    free(body);
}

/* The client: encrypted stores (one with a passphrase), identities, X3DH,
 * the ratchet in both directions, sealed sender. */
static void test_client_session_path(void **state)
{
    (void)state;
    const char *pass = "wipe test passphrase, never to be kept";
    const char *t1 = "Hemmelig tekst nummer en: bare for Lena";
    const char *t2 = "Hemmelig svar nummer to: bare for Kari";
    party_t kari, lena;
    wipe_scenario_begin();
    wipe_secret_add("the passphrase", pass, strlen(pass));
    wipe_secret_add("message text 1", t1, strlen(t1));
    wipe_secret_add("message text 2", t2, strlen(t2));
    party_new(&kari, "kari@oslo.test", pass);
    party_new(&lena, "lena@oslo.test", NULL);
    wipe_secret_add("kari's signing key", kari.me.sk, 32);
    wipe_secret_add("lena's signing key", lena.me.sk, 32);
    send_text(&kari, &lena, 1, t1);
    send_text(&lena, &kari, 0, t2);
    send_text(&kari, &lena, 0, t1);
    /* Load the identities back from the stores (unsealing the keys). */
    kl_identity_t again;
    assert_int_equal(kl_identity_load(kari.st, &again, NULL), 0);
    assert_memory_equal(again.sk, kari.me.sk, 32);
    kl_identity_wipe(&again);
    party_free(&kari);
    party_free(&lena);
    assert_int_equal(wipe_scenario_end("client session"), 0);
}

int main(void)
{
    if (kl_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detector_fires_on_plain_free),
        cmocka_unit_test(test_client_session_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
