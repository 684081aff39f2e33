/* Client sessions and the receive engine without a relay: two (or three)
 * client identities, each with its own temporary store, exchange sealed
 * bodies directly. Covers X3DH start, replies, out-of-order delivery,
 * replays, tampering, simultaneous initiation, and sync.c's cursor, dedupe,
 * failure and held-message handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "contacts.h"
#include "identity.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "session.h"
#include "store.h"
#include "sync.h"

typedef struct party {
    char dir[64];
    char path[128];
    kl_store_t *st;
    kl_identity_t me;
    kl_prekey_batch_t batch; /* signed prekey and 5 one-time prekeys */
} party_t;

static void party_new(party_t *p, const char *address)
{
    kl_relay_info_t relay;
    memset(p, 0, sizeof *p);
    assert_int_equal(kl_crypto_init(), 0);
    /* mkdtemp template: the prefix then six 'X' for it to replace. */
    snprintf(p->dir, sizeof p->dir, "/tmp/kl-party-%06d", 0);
    memset(p->dir + strlen(p->dir) - 6, 'X', 6);
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->path, sizeof p->path, "%s/kollega.db", p->dir);
    memset(&relay, 0, sizeof relay);
    snprintf(relay.name, sizeof relay.name, "oslo.test");
    snprintf(relay.host, sizeof relay.host, "127.0.0.1");
    relay.port = 7447;
    kl_random(relay.key, 32);
    assert_int_equal(kl_store_create(p->path, NULL, &p->st), 0);
    assert_int_equal(kl_identity_generate(&p->me, address), 0);
    assert_int_equal(kl_store_begin(p->st), 0);
    assert_int_equal(kl_identity_save(p->st, &p->me, &relay), 0);
    assert_int_equal(kl_store_commit(p->st), 0);
    assert_int_equal(kl_prekeys_generate(p->st, &p->me, 5, 1, &p->batch), 0);
}

static void party_free(party_t *p)
{
    char f[160];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    kl_store_close(p->st);
    kl_identity_wipe(&p->me);
    for (size_t i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "%s%s", p->path, sfx[i]);
        unlink(f);
    }
    rmdir(p->dir);
}

typedef struct trio {
    party_t alice, bob, carol;
} trio_t;

static int setup(void **state)
{
    trio_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    party_new(&t->alice, "alice@oslo.test");
    party_new(&t->bob, "bob@oslo.test");
    party_new(&t->carol, "carol@oslo.test");
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    trio_t *t = *state;
    party_free(&t->alice);
    party_free(&t->bob);
    party_free(&t->carol);
    free(t);
    return 0;
}

/* from encrypts text to to; with_bundle k > 0 hands over to's bundle with
 * one-time prekey number k - 1, 0 relies on an existing session. */
static void encrypt(party_t *from, party_t *to, int with_bundle, const char *text,
                    uint8_t id[16], uint8_t **body, size_t *len)
{
    kl_prekey_bundle_t b;
    kl_random(id, 16);
    if (with_bundle)
        assert_int_equal(
            kl_prekeys_local_bundle(to->st, &to->me, to->batch.ids[with_bundle - 1], &b), 0);
    assert_int_equal(kl_session_encrypt(from->st, &from->me, to->me.address, to->me.pk,
                                        with_bundle ? &b : NULL, id, 1700000000000ull, text,
                                        strlen(text), body, len),
                     0);
}

/* to opens and decrypts body, stores the new state; returns the text. */
static int decrypt(party_t *to, const uint8_t *body, size_t len, char *text, size_t cap,
                   kl_decrypted_t *keep)
{
    kl_inbound_t in;
    kl_decrypted_t d;
    int r = kl_session_open(&to->me, body, len, &in);
    if (r)
        return r;
    r = kl_session_decrypt(to->st, &to->me, &in, &d);
    if (r == 0) {
        assert_int_equal(kl_store_begin(to->st), 0);
        assert_int_equal(kl_session_apply(to->st, in.sender, &d), 0);
        assert_int_equal(kl_store_commit(to->st), 0);
        snprintf(text, cap, "%s", d.content.text);
        assert_string_equal(d.content.to, to->me.address);
        if (keep)
            *keep = d;
        else
            kl_decrypted_free(&d);
    }
    kl_inbound_free(&in);
    return r;
}

/* Is body a prekey envelope? (opened with the recipient's keys) */
static int is_prekey(party_t *to, const uint8_t *body, size_t len)
{
    kl_inbound_t in;
    assert_int_equal(kl_session_open(&to->me, body, len, &in), 0);
    int p = in.sealed->envelope->prekey;
    kl_inbound_free(&in);
    return p;
}

static void test_prekey_message_reply_and_out_of_order(void **state)
{
    trio_t *t = *state;
    uint8_t id1[16], id2[16], id3[16], id4[16], pub[32], priv[32];
    uint8_t *b1, *b2, *b3, *b4;
    size_t l1, l2, l3, l4;
    char text[128];
    kl_decrypted_t d;

    encrypt(&t->alice, &t->bob, 1, "hei bob", id1, &b1, &l1);
    encrypt(&t->alice, &t->bob, 0, "er du der?", id2, &b2, &l2);
    assert_true(is_prekey(&t->bob, b1, l1));
    assert_true(is_prekey(&t->bob, b2, l2)); /* no reply yet: still X3DH parameters */

    /* The second message arrives first and starts bob's session. */
    assert_int_equal(decrypt(&t->bob, b2, l2, text, sizeof text, &d), 0);
    assert_string_equal(text, "er du der?");
    assert_memory_equal(d.content.id, id2, 16);
    assert_true(d.new_session);
    assert_true(d.used_opk);
    assert_int_equal(d.opk_id, t->bob.batch.ids[0]);
    kl_decrypted_free(&d);
    /* The one-time prekey is gone once the message is stored. */
    assert_int_equal(kl_store_prekey_get(t->bob.st, t->bob.batch.ids[0], KL_PREKEY_OPK, pub, priv),
                     KL_ENOTFOUND);
    assert_int_equal(decrypt(&t->bob, b1, l1, text, sizeof text, &d), 0);
    assert_string_equal(text, "hei bob");
    assert_false(d.new_session); /* the existing session had the skipped key */
    kl_decrypted_free(&d);

    encrypt(&t->bob, &t->alice, 0, "ja, her", id3, &b3, &l3);
    assert_false(is_prekey(&t->alice, b3, l3));
    assert_int_equal(decrypt(&t->alice, b3, l3, text, sizeof text, NULL), 0);
    assert_string_equal(text, "ja, her");
    /* Alice heard back: her envelopes stop carrying X3DH parameters. */
    encrypt(&t->alice, &t->bob, 0, "fint", id4, &b4, &l4);
    assert_false(is_prekey(&t->bob, b4, l4));
    assert_int_equal(decrypt(&t->bob, b4, l4, text, sizeof text, NULL), 0);
    assert_string_equal(text, "fint");
    free(b1);
    free(b2);
    free(b3);
    free(b4);
}

static void test_replay_and_tampering_rejected(void **state)
{
    trio_t *t = *state;
    uint8_t id[16], *b1, *b2;
    size_t l1, l2;
    char text[128];
    encrypt(&t->alice, &t->bob, 1, "en gang", id, &b1, &l1);
    assert_int_equal(decrypt(&t->bob, b1, l1, text, sizeof text, NULL), 0);
    /* The message key is used up: the same body again does not decrypt,
     * and the failure changes nothing for the next message. */
    assert_int_not_equal(decrypt(&t->bob, b1, l1, text, sizeof text, NULL), 0);
    encrypt(&t->alice, &t->bob, 0, "to ganger", id, &b2, &l2);
    b2[l2 / 2] ^= 0x40;
    assert_int_equal(decrypt(&t->bob, b2, l2, text, sizeof text, NULL), KL_ECRYPTO);
    b2[l2 / 2] ^= 0x40;
    /* Sealed to bob: carol cannot open it. */
    assert_int_equal(decrypt(&t->carol, b2, l2, text, sizeof text, NULL), KL_ECRYPTO);
    assert_int_equal(decrypt(&t->bob, b2, l2, text, sizeof text, NULL), 0);
    assert_string_equal(text, "to ganger");
    free(b1);
    free(b2);
}

static void test_bundle_must_match_pinned_key(void **state)
{
    trio_t *t = *state;
    kl_prekey_bundle_t carol;
    uint8_t id[16], *body = NULL;
    size_t len = 0;
    int has = 1;
    kl_random(id, 16);
    assert_int_equal(kl_prekeys_local_bundle(t->carol.st, &t->carol.me, 0, &carol), 0);
    /* A relay handing out carol's prekeys for bob is caught. */
    assert_int_equal(kl_session_encrypt(t->alice.st, &t->alice.me, "bob@oslo.test", t->bob.me.pk,
                                        &carol, id, 1, "x", 1, &body, &len),
                     KL_EKEYCHANGED);
    assert_null(body);
    assert_int_equal(kl_session_has(t->alice.st, "bob@oslo.test", t->bob.me.pk, &has), 0);
    assert_false(has);
    /* No session and no bundle: the caller must fetch one. */
    assert_int_equal(kl_session_encrypt(t->alice.st, &t->alice.me, "bob@oslo.test", t->bob.me.pk,
                                        NULL, id, 1, "x", 1, &body, &len),
                     KL_ENOTFOUND);
    /* A bundle whose signed prekey is not signed by the identity key. */
    kl_prekey_bundle_t bad;
    assert_int_equal(kl_prekeys_local_bundle(t->bob.st, &t->bob.me, 0, &bad), 0);
    bad.spk_sig[0] ^= 1;
    assert_int_equal(kl_session_encrypt(t->alice.st, &t->alice.me, "bob@oslo.test", t->bob.me.pk,
                                        &bad, id, 1, "x", 1, &body, &len),
                     KL_ECRYPTO);
}

static void test_simultaneous_initiation_converges(void **state)
{
    trio_t *t = *state;
    uint8_t id[16], *a1, *b1, *a2, *b2, *a3;
    size_t la1, lb1, la2, lb2, la3;
    char text[128];
    /* Both start a session before seeing the other's first message. */
    encrypt(&t->alice, &t->bob, 1, "A1", id, &a1, &la1);
    encrypt(&t->bob, &t->alice, 1, "B1", id, &b1, &lb1);
    assert_int_equal(decrypt(&t->alice, b1, lb1, text, sizeof text, NULL), 0);
    assert_string_equal(text, "B1");
    assert_int_equal(decrypt(&t->bob, a1, la1, text, sizeof text, NULL), 0);
    assert_string_equal(text, "A1");
    /* Each side now uses the other's session; the kept one bridges it. */
    encrypt(&t->alice, &t->bob, 0, "A2", id, &a2, &la2);
    assert_int_equal(decrypt(&t->bob, a2, la2, text, sizeof text, NULL), 0);
    assert_string_equal(text, "A2");
    encrypt(&t->bob, &t->alice, 0, "B2", id, &b2, &lb2);
    assert_int_equal(decrypt(&t->alice, b2, lb2, text, sizeof text, NULL), 0);
    assert_string_equal(text, "B2");
    encrypt(&t->alice, &t->bob, 0, "A3", id, &a3, &la3);
    assert_int_equal(decrypt(&t->bob, a3, la3, text, sizeof text, NULL), 0);
    assert_string_equal(text, "A3");
    free(a1);
    free(b1);
    free(a2);
    free(b2);
    free(a3);
}

/* ---- sync.c without a relay ---- */

typedef struct got {
    int n;
    char last[128];
} got_t;

static int on_msg(void *ud, const kl_message_t *m)
{
    got_t *g = ud;
    g->n++;
    snprintf(g->last, sizeof g->last, "%.*s", (int)m->text_len, m->text);
    return 0;
}

static void sync_init(kl_sync_t *s, party_t *p, got_t *g)
{
    memset(s, 0, sizeof *s);
    memset(g, 0, sizeof *g);
    s->st = p->st;
    s->me = &p->me;
    s->on_message = on_msg;
    s->ud = g;
    s->quiet = 1;
}

static void pin(party_t *p, party_t *other)
{
    kl_contact_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.address, sizeof c.address, "%s", other->me.address);
    c.has_key = 1;
    memcpy(c.key, other->me.pk, 32);
    assert_int_equal(kl_store_contact_put(p->st, &c), 0);
}

static uint64_t cursor_of(party_t *p)
{
    uint64_t v = 0;
    assert_int_equal(kl_store_get_u64(p->st, "cursor", &v), 0);
    return v;
}

static void test_sync_cursor_dedupe_and_failures(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    uint8_t id[16], *b1, *b2;
    size_t l1, l2;
    pin(&t->bob, &t->alice);
    sync_init(&s, &t->bob, &g);
    encrypt(&t->alice, &t->bob, 1, "første", id, &b1, &l1);
    /* The same Content id again in a new ratchet message: a duplicate. */
    assert_int_equal(kl_session_encrypt(t->alice.st, &t->alice.me, t->bob.me.address, t->bob.me.pk,
                                        NULL, id, 5, "første", strlen("første"), &b2, &l2),
                     0);
    assert_int_equal(kl_sync_entry(&s, 10, 0, b1, l1), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.last, "første");
    assert_int_equal(cursor_of(&t->bob), 10);
    /* Redelivery of an entry at or below the cursor is skipped. */
    assert_int_equal(kl_sync_entry(&s, 10, 0, b1, l1), 0);
    assert_int_equal(kl_sync_entry(&s, 11, 0, b2, l2), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(cursor_of(&t->bob), 11);
    /* Garbage is recorded and passed over, not a stuck inbox. */
    uint8_t junk[200];
    kl_random(junk, sizeof junk);
    assert_int_equal(kl_sync_entry(&s, 12, 0, junk, sizeof junk), 0);
    assert_int_equal(s.failed, 1);
    assert_int_equal(cursor_of(&t->bob), 12);
    uint64_t nf = 0;
    assert_int_equal(kl_store_failure_count(t->bob.st, &nf), 0);
    assert_int_equal(nf, 1);
    free(b1);
    free(b2);
}

static void test_sync_holds_unknown_or_changed_sender(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    uint8_t id[16], *b1, *b2;
    size_t l1, l2, released = 0;
    uint64_t n = 0;
    sync_init(&s, &t->bob, &g);
    /* Offline, an unknown sender cannot be checked with the relay: held. */
    encrypt(&t->carol, &t->bob, 2, "hei fra carol", id, &b1, &l1);
    assert_int_equal(kl_sync_entry(&s, 1, 0, b1, l1), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(s.held, 1);
    assert_int_equal(kl_store_held_count(t->bob.st, "carol@oslo.test", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kl_store_contact_get(t->bob.st, "carol@oslo.test", &c), 0);
    assert_true(c.key_changed);
    assert_true(c.has_pending);
    assert_memory_equal(c.pending, t->carol.me.pk, 32);
    /* The user compares safety numbers and confirms: the message is read. */
    assert_int_equal(kl_contacts_confirm(t->bob.st, "carol@oslo.test", &c), 0);
    assert_true(c.verified);
    assert_false(c.key_changed);
    assert_int_equal(kl_sync_release_held(&s, "carol@oslo.test", &released), 0);
    assert_int_equal(released, 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.last, "hei fra carol");
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);

    /* A message claiming to be alice but signed with carol's key: alice
     * is pinned with her real key, so it is held and alice flagged. */
    pin(&t->bob, &t->alice);
    uint8_t *fake;
    size_t lf;
    kl_identity_t forged = t->carol.me;
    snprintf(forged.address, sizeof forged.address, "alice@oslo.test");
    kl_prekey_bundle_t bb;
    assert_int_equal(kl_prekeys_local_bundle(t->bob.st, &t->bob.me, t->bob.batch.ids[2], &bb), 0);
    kl_random(id, 16);
    assert_int_equal(kl_session_encrypt(t->carol.st, &forged, "bob@oslo.test", t->bob.me.pk, &bb,
                                        id, 1, "jeg er alice", 12, &fake, &lf),
                     0);
    assert_int_equal(kl_sync_entry(&s, 2, 0, fake, lf), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(s.held, 2);
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_true(c.key_changed);
    /* Messages with the pinned key are still accepted meanwhile. */
    encrypt(&t->alice, &t->bob, 4, "ekte alice", id, &b2, &l2);
    assert_int_equal(kl_sync_entry(&s, 3, 0, b2, l2), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.last, "ekte alice");
    free(b1);
    free(b2);
    free(fake);
}

static void test_sync_releases_many_held_in_order(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    uint8_t id[16], *b;
    size_t l, released = 0;
    char text[32];
    sync_init(&s, &t->bob, &g);
    /* More than one release batch (HELD_BATCH is 32). */
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text, "melding %d", i);
        encrypt(&t->carol, &t->bob, i == 0 ? 1 : 0, text, id, &b, &l);
        assert_int_equal(kl_sync_entry(&s, 100 + (uint64_t)i, 0, b, l), 0);
        free(b);
    }
    assert_int_equal(s.held, 40);
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_contacts_confirm(t->bob.st, "carol@oslo.test", &c), 0);
    assert_int_equal(kl_sync_release_held(&s, "carol@oslo.test", &released), 0);
    assert_int_equal(released, 40);
    assert_int_equal(g.n, 40);
    assert_string_equal(g.last, "melding 39");
    uint64_t n = 1;
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prekey_message_reply_and_out_of_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_tampering_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_must_match_pinned_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simultaneous_initiation_converges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_cursor_dedupe_and_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_holds_unknown_or_changed_sender, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sync_releases_many_held_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
