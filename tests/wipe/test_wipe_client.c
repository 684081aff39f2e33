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

#include "cli.h"
#include "group.h"
#include "identity.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "session.h"
#include "store.h"
#include "store_group.h"
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
    /* A passphrase change (one derivation under the new passphrase). */
    const char *newpass = "the next wipe test passphrase, never kept";
    wipe_secret_add("the new passphrase", newpass, strlen(newpass));
    assert_int_equal(kl_store_rekey(kari.st, newpass), 0);
    party_free(&kari);
    party_free(&lena);
    assert_int_equal(wipe_scenario_end("client session"), 0);
}

static int keep_text(void *ud, const kl_message_t *m)
{
    char *out = ud;
    snprintf(out, 128, "%.*s", (int)m->text_len, m->text);
    return 0;
}

/* Groups: a sender key made, sealed in the store, distributed (as sync.c
 * stores it), a group message sealed with it and read by the other
 * member. The chain key and the text must not outlive their use. */
static void test_client_group_path(void **state)
{
    (void)state;
    const char *grp = "#erfa@oslo.test";
    const char *text = "Hemmelig gruppetekst: bare for ERFA-gruppa";
    party_t kari, lena;
    kl_cli_t ck, cl;
    kl_grp_t xk, xl;
    kl_group_t *g = NULL;
    kl_senderkey_t *k = NULL;
    kl_sync_t s;
    kl_message_t m;
    uint8_t dist[KL_SENDERKEY_DIST], *ops[2], *body = NULL;
    size_t opl[2], blen = 0;
    char got[128] = "";
    wipe_scenario_begin();
    wipe_secret_add("group text", text, strlen(text));
    party_new(&kari, "kari@oslo.test", NULL);
    party_new(&lena, "lena@oslo.test", NULL);
    memset(&ck, 0, sizeof ck);
    memset(&cl, 0, sizeof cl);
    ck.st = kari.st;
    ck.me = kari.me;
    cl.st = lena.st;
    cl.me = lena.me;
    snprintf(ck.relay.name, sizeof ck.relay.name, "oslo.test");
    snprintf(cl.relay.name, sizeof cl.relay.name, "oslo.test");
    /* kari creates the group and admits lena (policy facilitators). */
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_CREATE;
    d.policy = KL_POLICY_FACILITATORS;
    assert_int_equal(kl_group_new(&g, grp), 0);
    assert_int_equal(kl_group_op_build(g, kari.me.sk, kari.me.pk, kari.me.address, 1, &d, &ops[0],
                                       &opl[0]),
                     0);
    assert_int_equal(kl_group_apply(g, ops[0], opl[0], NULL, NULL), 0);
    d.kind = KL_GOP_INVITE;
    memcpy(d.target, lena.me.pk, 32);
    snprintf(d.target_address, sizeof d.target_address, "lena@oslo.test");
    assert_int_equal(kl_group_op_build(g, kari.me.sk, kari.me.pk, kari.me.address, 1, &d, &ops[1],
                                       &opl[1]),
                     0);
    for (int i = 0; i < 2; i++) {
        party_t *p = i ? &lena : &kari;
        assert_int_equal(kl_store_begin(p->st), 0);
        for (int j = 0; j < 2; j++)
            assert_int_equal(kl_store_slog_op_put(p->st, grp, (uint64_t)j, ops[j], opl[j]), 0);
        kl_store_group_t row; /* as kl_grp_sync_ops makes it: keys are kept for known groups */
        memset(&row, 0, sizeof row);
        snprintf(row.address, sizeof row.address, "%s", grp);
        assert_int_equal(kl_store_group_put(p->st, &row), 0);
        assert_int_equal(kl_store_commit(p->st), 0);
    }
    assert_int_equal(kl_grp_load(&ck, grp, &xk), 0);
    assert_int_equal(kl_grp_load(&cl, grp, &xl), 0);
    assert_int_equal(kl_grp_own_key(&ck, &xk, 1, &k), 0);
    assert_int_equal(kl_senderkey_export(k, dist), 0);
    wipe_secret_add("sender chain key", dist + 8, 32);
    assert_int_equal(kl_store_begin(lena.st), 0);
    assert_int_equal(kl_grp_store_dist(lena.st, grp, kari.me.pk, 0, dist, sizeof dist), 0);
    assert_int_equal(kl_store_commit(lena.st), 0);
    assert_int_equal(kl_grp_seal(&ck, &xk, k, text, strlen(text), &m, &body, &blen), 0);
    memset(&s, 0, sizeof s);
    s.on_message = keep_text;
    s.ud = got;
    kl_grp_rx_t rx;
    memset(&rx, 0, sizeof rx);
    rx.cli = &cl;
    rx.s = &s;
    rx.x = &xl;
    assert_int_equal(kl_grp_entry(&rx, 1, 1, body, blen), 0);
    assert_string_equal(got, text);
    kl_memzero(got, sizeof got);
    kl_memzero(dist, sizeof dist);
    kl_senderkey_free(k);
    kl_grp_free(&xk);
    kl_grp_free(&xl);
    kl_group_free(g);
    free(ops[0]);
    free(ops[1]);
    free(body);
    party_free(&kari);
    party_free(&lena);
    assert_int_equal(wipe_scenario_end("client group"), 0);
}

/* A message or members-only post typed on stdin ("send ADDRESS -",
 * "channel post CHANNEL -"): the buffer kl_cli_text read it into is wiped
 * before it is freed. */
static void test_client_stdin_text(void **state)
{
    (void)state;
    const char *t = "Hemmelig innlegg fra stdin: bare for medlemmene";
    char dir[64], path[128];
    wipe_scenario_begin();
    wipe_secret_add("text typed on stdin", t, strlen(t));
    wipe_tmpdir(dir, sizeof dir, "stdin");
    snprintf(path, sizeof path, "%s/in.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(t, f);
    fclose(f);
    assert_non_null(freopen(path, "r", stdin));
    char *input = NULL;
    const char *text = NULL;
    size_t len = 0;
    assert_int_equal(kl_cli_text("-", "post", &input, &text, &len), 0);
    assert_int_equal(len, strlen(t));
    assert_memory_equal(text, t, len);
    kl_cli_text_free(input);
    unlink(path);
    rmdir(dir);
    assert_int_equal(wipe_scenario_end("text from stdin"), 0);
}

int main(void)
{
    if (kl_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detector_fires_on_plain_free),
        cmocka_unit_test(test_client_session_path),
        cmocka_unit_test(test_client_group_path),
        cmocka_unit_test(test_client_stdin_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
