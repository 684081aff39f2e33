/* The client's encrypted store (client/store*.c): passphrase wrapping,
 * sealing, dedupe, and that the file on disk reveals no plaintext. The
 * tamper tests edit the file with sqlite directly, as an attacker with
 * write access (but no passphrase) could. */
#define _GNU_SOURCE /* memmem */
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
#include <sqlite3.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store.h"
#include "tmpdir.h"

typedef kl_test_files_t fixture_t;

static int setup(void **state)
{
    return kl_test_store_setup(state);
}

static int teardown(void **state)
{
    return kl_test_store_teardown(state);
}

static int give_pass(void *ud, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", (const char *)ud);
    return 0;
}

static void test_passphrase_create_and_reopen(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[64], back[64];
    kl_random(secret, sizeof secret);
    assert_int_equal(kl_store_create(f->path, "riktig hest", &st), 0);
    assert_int_equal(kl_store_begin(st), 0);
    assert_int_equal(kl_store_secret_put(st, "identity", secret, sizeof secret), 0);
    assert_int_equal(kl_store_set_str(st, "address", "kari@oslo.example.org"), 0);
    assert_int_equal(kl_store_commit(st), 0);
    kl_store_close(st);

    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(kl_store_open(f->path, give_pass, "riktig hest", &st), 0);
    assert_int_equal(kl_store_secret_get(st, "identity", back, sizeof back), 0);
    assert_memory_equal(secret, back, sizeof back);
    char addr[64];
    assert_int_equal(kl_store_get_str(st, "address", addr, sizeof addr), 0);
    assert_string_equal(addr, "kari@oslo.example.org");
    kl_store_close(st);
}

static void test_wrong_passphrase_leaves_file_identical(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t secret[32] = {1, 2, 3};
    assert_int_equal(kl_store_create(f->path, "riktig hest", &st), 0);
    assert_int_equal(kl_store_secret_put(st, "relay_key", secret, sizeof secret), 0);
    kl_store_close(st);

    size_t n1, n2;
    uint8_t *before = kl_test_read_file(f->path, &n1);
    assert_int_equal(kl_store_open(f->path, give_pass, "feil hest", &st), KL_EPASS);
    assert_null(st);
    /* No way to ask for a passphrase is also a refusal, not a crash. */
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), KL_EPASS);
    uint8_t *after = kl_test_read_file(f->path, &n2);
    assert_non_null(before);
    assert_non_null(after);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    free(before);
    free(after);

    assert_int_equal(kl_store_open(f->path, give_pass, "riktig hest", &st), 0);
    kl_store_close(st);
}

static void test_no_passphrase_store(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_set_u64(st, "cursor", 42), 0);
    kl_store_close(st);
    /* No passphrase is asked for: a NULL callback is fine. */
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), 0);
    uint64_t v = 0;
    assert_int_equal(kl_store_get_u64(st, "cursor", &v), 0);
    assert_int_equal(v, 42);
    kl_store_close(st);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_create_refuses_existing_file(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    kl_store_close(st);
    assert_int_equal(kl_store_create(f->path, NULL, &st), KL_EEXIST);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.db", f->dir);
    assert_int_equal(kl_store_open(missing, NULL, NULL, &st), KL_ENOTFOUND);
}

static void test_sealed_values_round_trip_and_bind_label(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    const char *msg = "ingen andre skal lese dette";
    uint8_t *box = NULL, *pt = NULL;
    size_t boxlen = 0, len = 0;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_seal(st, "t|row1", (const uint8_t *)msg, strlen(msg), &box, &boxlen),
                     0);
    assert_int_equal(boxlen, strlen(msg) + KL_AEAD_NONCE + KL_AEAD_TAG);
    assert_int_equal(kl_store_unseal(st, "t|row1", box, boxlen, &pt, &len), 0);
    assert_int_equal(len, strlen(msg));
    assert_memory_equal(pt, msg, len);
    kl_free_wipe(pt, len);
    /* Another row's label, or one flipped bit, and it does not open. */
    assert_int_equal(kl_store_unseal(st, "t|row2", box, boxlen, &pt, &len), KL_ECRYPTO);
    box[boxlen - 1] ^= 1;
    assert_int_equal(kl_store_unseal(st, "t|row1", box, boxlen, &pt, &len), KL_ECRYPTO);
    free(box);
    kl_store_close(st);
}

static void add_msg(kl_store_t *st, const uint8_t id[16], const char *peer, int out,
                    const char *text, int expect_added)
{
    kl_message_t m;
    int added = -1;
    memset(&m, 0, sizeof m);
    memcpy(m.id, id, 16);
    snprintf(m.peer, sizeof m.peer, "%s", peer);
    m.outgoing = out;
    m.sent_at = 1700000000000ull;
    m.stored_at = 1700000000001ull;
    m.seq = 7;
    m.text = text;
    m.text_len = strlen(text);
    assert_int_equal(kl_store_message_add(st, &m, &added), 0);
    assert_int_equal(added, expect_added);
}

typedef struct seen {
    int n;
    char texts[8][64];
} seen_t;

static int collect(void *ud, const kl_message_t *m)
{
    seen_t *s = ud;
    if (s->n < 8)
        snprintf(s->texts[s->n], sizeof s->texts[0], "%.*s", (int)m->text_len, m->text);
    s->n++;
    return 0;
}

static void test_messages_deduplicated_by_id(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t id1[16], id2[16];
    kl_random(id1, 16);
    kl_random(id2, 16);
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    add_msg(st, id1, "kari@oslo.example.org", 0, "hei", 1);
    add_msg(st, id1, "kari@oslo.example.org", 0, "hei igjen", 0); /* same id: dropped */
    add_msg(st, id2, "kari@oslo.example.org", 0, "neste", 1);
    /* Another peer cannot suppress kari's messages by reusing an id. */
    add_msg(st, id1, "ola@oslo.example.org", 0, "fra ola", 1);

    seen_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(kl_store_message_each(st, "kari@oslo.example.org", collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.texts[0], "neste"); /* newest first */
    assert_string_equal(s.texts[1], "hei");
    memset(&s, 0, sizeof s);
    assert_int_equal(kl_store_message_each(st, NULL, collect, &s), 0);
    assert_int_equal(s.n, 3);
    kl_store_close(st);
}

static void test_rollback_discards_writes(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint64_t v = 0;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_set_u64(st, "cursor", 5), 0);
    assert_int_equal(kl_store_begin(st), 0);
    assert_int_equal(kl_store_begin(st), KL_ESTATE);
    assert_int_equal(kl_store_set_u64(st, "cursor", 9), 0);
    kl_store_rollback(st);
    assert_int_equal(kl_store_get_u64(st, "cursor", &v), 0);
    assert_int_equal(v, 5);
    kl_store_close(st);
}

static void test_file_holds_no_plaintext_or_secret_keys(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    const char *body = "MELDINGSTEKST-som-aldri-skal-ligge-i-klartekst";
    uint8_t idkey[96], spk_pub[32], spk_priv[32], sess[200], id[16];
    kl_random(idkey, sizeof idkey);
    kl_random(sess, sizeof sess);
    kl_random(id, sizeof id);
    kl_x_keypair(spk_pub, spk_priv);
    assert_int_equal(kl_store_create(f->path, "passord", &st), 0);
    assert_int_equal(kl_store_begin(st), 0);
    assert_int_equal(kl_store_secret_put(st, "identity", idkey, sizeof idkey), 0);
    assert_int_equal(kl_store_prekey_put(st, 1, KL_PREKEY_SPK, spk_pub, spk_priv, 1), 0);
    assert_int_equal(kl_store_session_put(st, "kari@oslo.example.org", sess, sizeof sess), 0);
    add_msg(st, id, "kari@oslo.example.org", 1, body, 1);
    assert_int_equal(kl_store_commit(st), 0);
    /* Checked while open (data in the WAL) and after close (checkpointed). */
    for (int pass = 0; pass < 2; pass++) {
        const char *sfx[] = {"", "-wal"};
        for (size_t i = 0; i < 2; i++) {
            char p[160];
            size_t n = 0;
            snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
            uint8_t *raw = kl_test_read_file(p, &n);
            if (raw == NULL)
                continue;
            assert_null(memmem(raw, n, body, strlen(body)));
            assert_null(memmem(raw, n, "aldri", 5));
            assert_null(memmem(raw, n, idkey + 32, 32));
            assert_null(memmem(raw, n, spk_priv, 32));
            assert_null(memmem(raw, n, sess, 32));
            free(raw);
        }
        if (pass == 0)
            kl_store_close(st);
    }
}

static void test_prekeys_and_sessions(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    uint8_t pub[32], priv[32], pub2[32], priv2[32];
    uint32_t id = 0;
    uint64_t created = 0, n = 0;
    kl_x_keypair(pub, priv);
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_prekey_put(st, 3, KL_PREKEY_OPK, pub, priv, 10), 0);
    assert_int_equal(kl_store_prekey_put(st, 3, KL_PREKEY_OPK, pub, priv, 10), KL_EEXIST);
    assert_int_equal(kl_store_prekey_get(st, 3, KL_PREKEY_SPK, pub2, priv2), KL_ENOTFOUND);
    assert_int_equal(kl_store_prekey_get(st, 3, KL_PREKEY_OPK, pub2, priv2), 0);
    assert_memory_equal(priv, priv2, 32);
    assert_int_equal(kl_store_prekey_count(st, KL_PREKEY_OPK, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kl_store_prekey_delete(st, 3, KL_PREKEY_OPK), 0);
    assert_int_equal(kl_store_prekey_get(st, 3, KL_PREKEY_OPK, pub2, priv2), KL_ENOTFOUND);

    /* Signed prekeys: the newest is current; old ones go once replaced long enough. */
    kl_x_keypair(pub, priv);
    assert_int_equal(kl_store_prekey_put(st, 4, KL_PREKEY_SPK, pub, priv, 1000), 0);
    kl_x_keypair(pub2, priv2);
    assert_int_equal(kl_store_prekey_put(st, 5, KL_PREKEY_SPK, pub2, priv2, 2000), 0);
    assert_int_equal(kl_store_prekey_current_spk(st, &id, pub, &created), 0);
    assert_int_equal(id, 5);
    assert_int_equal(created, 2000);
    assert_int_equal(kl_store_prekey_prune_spk(st, 1500), 0); /* 5 not yet old: keep 4 */
    assert_int_equal(kl_store_prekey_get(st, 4, KL_PREKEY_SPK, pub, priv), 0);
    assert_int_equal(kl_store_prekey_prune_spk(st, 2500), 0);
    assert_int_equal(kl_store_prekey_get(st, 4, KL_PREKEY_SPK, pub, priv), KL_ENOTFOUND);
    assert_int_equal(kl_store_prekey_get(st, 5, KL_PREKEY_SPK, pub, priv), 0);

    uint8_t rec[10] = {9, 8, 7}, *back = NULL;
    size_t len = 0;
    assert_int_equal(kl_store_session_get(st, "a@b.c", &back, &len), KL_ENOTFOUND);
    assert_int_equal(kl_store_session_put(st, "a@b.c", rec, sizeof rec), 0);
    assert_int_equal(kl_store_session_get(st, "a@b.c", &back, &len), 0);
    assert_int_equal(len, sizeof rec);
    assert_memory_equal(back, rec, len);
    kl_free_wipe(back, len);
    assert_int_equal(kl_store_session_delete(st, "a@b.c"), 0);
    assert_int_equal(kl_store_session_get(st, "a@b.c", &back, &len), KL_ENOTFOUND);
    kl_store_close(st);
}

static void test_swapped_contact_pin_is_detected(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    kl_contact_t a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.address, sizeof a.address, "kari@oslo.example.org");
    snprintf(b.address, sizeof b.address, "mallory@oslo.example.org");
    a.has_key = b.has_key = 1;
    kl_random(a.key, 32);
    kl_random(b.key, 32);
    a.verified = 1;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_contact_put(st, &a), 0);
    assert_int_equal(kl_store_contact_put(st, &b), 0);
    assert_int_equal(kl_store_contact_get(st, a.address, &c), 0);
    assert_memory_equal(c.key, a.key, 32);
    assert_true(c.verified);
    kl_store_close(st);

    /* Copy mallory's sealed pin onto kari's row, as a file-level attacker. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE contacts SET box = (SELECT box FROM contacts WHERE"
                                      " address = 'mallory@oslo.example.org') WHERE address ="
                                      " 'kari@oslo.example.org'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(kl_store_open(f->path, NULL, NULL, &st), 0);
    assert_int_equal(kl_store_contact_get(st, a.address, &c), KL_ECRYPTO);
    kl_store_close(st);
}

static void test_held_and_failures(void **state)
{
    fixture_t *f = *state;
    kl_store_t *st = NULL;
    kl_held_t h;
    uint64_t n = 0;
    uint8_t body[80];
    kl_random(body, sizeof body);
    memset(&h, 0, sizeof h);
    h.seq = 12;
    snprintf(h.sender, sizeof h.sender, "kari@oslo.example.org");
    h.body = body;
    h.body_len = sizeof body;
    assert_int_equal(kl_store_create(f->path, NULL, &st), 0);
    assert_int_equal(kl_store_held_add(st, &h), 0);
    assert_int_equal(kl_store_held_count(st, "kari@oslo.example.org", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kl_store_held_count(st, "ola@oslo.example.org", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kl_store_held_delete(st, 12), 0);
    assert_int_equal(kl_store_held_count(st, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kl_store_failure_add(st, 13, 1, "authentication failed"), 0);
    assert_int_equal(kl_store_failure_count(st, &n), 0);
    assert_int_equal(n, 1);
    kl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passphrase_create_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_leaves_file_identical, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_passphrase_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_values_round_trip_and_bind_label, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_messages_deduplicated_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_discards_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_holds_no_plaintext_or_secret_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_contact_pin_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_and_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
