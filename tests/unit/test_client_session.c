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
#include "kollega/sealed.h"
#include "kollega/senderkey.h"
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

/* A relay's directory for the vouch check: address -> key, or offline. */
typedef struct directory {
    int offline;
    size_t n;
    char addr[4][KL_ADDR_MAX + 1];
    uint8_t key[4][32];
} directory_t;

static int dir_vouch(void *ud, const char *address, const uint8_t key[32], int *vouched)
{
    directory_t *d = ud;
    *vouched = 0;
    if (d->offline)
        return KL_EAGAIN;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->addr[i], address) == 0)
            *vouched = memcmp(d->key[i], key, 32) == 0;
    return 0;
}

static void dir_set(directory_t *d, const char *address, const uint8_t key[32])
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->addr[i], address) == 0) {
            memcpy(d->key[i], key, 32);
            return;
        }
    snprintf(d->addr[d->n], sizeof d->addr[d->n], "%s", address);
    memcpy(d->key[d->n++], key, 32);
}

static void dir_init(directory_t *d, trio_t *t)
{
    memset(d, 0, sizeof *d);
    dir_set(d, t->alice.me.address, t->alice.me.pk);
    dir_set(d, t->bob.me.address, t->bob.me.pk);
    dir_set(d, t->carol.me.address, t->carol.me.pk);
}

/* Bob's receive engine, its vouching answered by d (everyone's real key). */
static void bob_sync(kl_sync_t *s, got_t *g, directory_t *d, trio_t *t)
{
    dir_init(d, t);
    sync_init(s, &t->bob, g);
    s->vouch = dir_vouch;
    s->vouch_ud = d;
}

/* A sealed envelope to `to` that claims `claim` with key ik and carries a
 * prekey envelope of random bytes: a claim nobody can prove. */
static void forge_junk(party_t *to, const char *claim, const uint8_t ik[32], uint8_t **body,
                       size_t *len)
{
    Kollega__E2e__V1__Envelope env = KOLLEGA__E2E__V1__ENVELOPE__INIT;
    Kollega__E2e__V1__Sealed sealed = KOLLEGA__E2E__V1__SEALED__INIT;
    uint8_t ek[32], junk[300], pt[1024];
    kl_random(ek, sizeof ek);
    kl_random(junk, sizeof junk);
    env.prekey = 1;
    env.ephemeral_key.data = ek;
    env.ephemeral_key.len = 32;
    env.spk_id = to->batch.spk_id;
    env.ratchet.data = junk;
    env.ratchet.len = sizeof junk;
    sealed.sender_address = (char *)claim;
    sealed.sender_identity_key.data = (uint8_t *)ik;
    sealed.sender_identity_key.len = 32;
    sealed.envelope = &env;
    size_t n = kollega__e2e__v1__sealed__get_packed_size(&sealed);
    assert_true(n <= sizeof pt);
    kollega__e2e__v1__sealed__pack(&sealed, pt);
    *body = malloc(n + KL_SEAL_OVERHEAD);
    assert_non_null(*body);
    assert_int_equal(kl_sealed_seal(to->me.pk, pt, n, *body, n + KL_SEAL_OVERHEAD, len), 0);
}

/* from (with its own key) claims to be `claim` and starts a real session
 * with to: a key it can prove, an address it cannot. */
static void forge_proven(party_t *from, party_t *to, const char *claim, int opk,
                         const char *text, uint8_t **body, size_t *len)
{
    kl_identity_t forged = from->me;
    kl_prekey_bundle_t b;
    uint8_t id[16];
    kl_random(id, 16);
    snprintf(forged.address, sizeof forged.address, "%s", claim);
    /* A new session whatever from had with to before. */
    assert_int_equal(kl_store_session_delete(from->st, to->me.address), 0);
    assert_int_equal(kl_prekeys_local_bundle(to->st, &to->me, opk ? to->batch.ids[opk - 1] : 0,
                                             &b), 0);
    assert_int_equal(kl_session_encrypt(from->st, &forged, to->me.address, to->me.pk, &b, id, 1,
                                        text, strlen(text), body, len),
                     0);
    kl_memzero(&forged, sizeof forged);
}

static uint64_t failures_of(party_t *p)
{
    uint64_t n = 0;
    assert_int_equal(kl_store_failure_count(p->st, &n), 0);
    return n;
}

static void test_sync_unproven_claims_change_nothing(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    directory_t dir;
    uint8_t id[16], fake_ik[32], *b, *junk, *fake;
    size_t l, lj, lf;
    bob_sync(&s, &g, &dir, t);
    pin(&t->bob, &t->alice);
    /* Junk claiming alice with a random key: does not decrypt. */
    kl_random(fake_ik, 32);
    forge_junk(&t->bob, "alice@oslo.test", fake_ik, &junk, &lj);
    assert_int_equal(kl_sync_entry(&s, 1, 0, junk, lj), 0);
    assert_int_equal(s.unproven, 1);
    assert_int_equal(s.held, 0);
    /* Carol proves her own key but claims alice's address: alice's relay
     * does not vouch for carol's key, so it is a forgery. */
    forge_proven(&t->carol, &t->bob, "alice@oslo.test", 1, "jeg er alice", &fake, &lf);
    assert_int_equal(kl_sync_entry(&s, 2, 0, fake, lf), 0);
    assert_int_equal(s.forged, 1);
    assert_int_equal(g.n, 0);
    assert_int_equal(failures_of(&t->bob), 2);
    assert_int_equal(cursor_of(&t->bob), 2);
    /* Alice's contact is exactly as pinned: not flagged, nothing pending. */
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_false(c.key_changed);
    assert_false(c.has_pending);
    assert_memory_equal(c.key, t->alice.me.pk, 32);
    /* An unknown address claimed with a random key creates no contact. */
    forge_junk(&t->bob, "dora@oslo.test", fake_ik, &b, &l);
    assert_int_equal(kl_sync_entry(&s, 3, 0, b, l), 0);
    assert_int_equal(kl_store_contact_get(t->bob.st, "dora@oslo.test", &c), KL_ENOTFOUND);
    free(b);
    /* The real alice still gets through. */
    encrypt(&t->alice, &t->bob, 2, "ekte alice", id, &b, &l);
    assert_int_equal(kl_sync_entry(&s, 4, 0, b, l), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.last, "ekte alice");
    free(b);
    /* A forgery that had to wait for the relay is dropped once it answers. */
    uint64_t n = 0;
    dir.offline = 1;
    forge_proven(&t->carol, &t->bob, "alice@oslo.test", 3, "jeg venter", &b, &l);
    assert_int_equal(kl_sync_entry(&s, 5, 0, b, l), 0);
    assert_int_equal(s.waiting, 1);
    dir.offline = 0;
    assert_int_equal(kl_sync_retry_held(&s), 0);
    assert_int_equal(s.forged, 2);
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_false(c.key_changed);
    assert_int_equal(g.n, 1);
    free(b);
    free(junk);
    free(fake);
}

static void test_sync_first_contact_and_key_change(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    directory_t dir;
    uint8_t id[16], *b1, *b2, *fake;
    size_t l1, l2, lf, released = 0;
    uint64_t n = 0;
    bob_sync(&s, &g, &dir, t);
    /* Carol's relay cannot be asked: the entry waits (held), no contact
     * is made, and the inbox goes on past it. */
    dir.offline = 1;
    encrypt(&t->carol, &t->bob, 2, "hei fra carol", id, &b1, &l1);
    assert_int_equal(kl_sync_entry(&s, 1, 0, b1, l1), 0);
    assert_int_equal(s.waiting, 1);
    assert_int_equal(s.held, 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_store_contact_get(t->bob.st, "carol@oslo.test", &c), KL_ENOTFOUND);
    assert_int_equal(cursor_of(&t->bob), 1);
    assert_int_equal(kl_sync_retry_held(&s), 0); /* still unreachable: still waiting */
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 1);
    /* Proven and vouched at the next receive: carol is pinned and read. */
    dir.offline = 0;
    assert_int_equal(kl_sync_retry_held(&s), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(g.last, "hei fra carol");
    assert_int_equal(kl_store_contact_get(t->bob.st, "carol@oslo.test", &c), 0);
    assert_memory_equal(c.key, t->carol.me.pk, 32);
    assert_false(c.key_changed);

    /* Alice gets a new key (alice's relay vouches for it: here, alice now
     * uses carol's key pair): a proven start from it flags alice. */
    pin(&t->bob, &t->alice);
    dir_set(&dir, "alice@oslo.test", t->carol.me.pk);
    forge_proven(&t->carol, &t->bob, "alice@oslo.test", 3, "ny nøkkel", &fake, &lf);
    assert_int_equal(kl_sync_entry(&s, 2, 0, fake, lf), 0);
    assert_int_equal(s.held, 1);
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_true(c.key_changed);
    assert_memory_equal(c.pending, t->carol.me.pk, 32);
    /* Only the key now current can be confirmed. */
    assert_int_equal(kl_contacts_confirm(t->bob.st, "alice@oslo.test", t->alice.me.pk, &c),
                     KL_ESTATE);
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_true(c.key_changed);
    assert_int_equal(kl_contacts_confirm(t->bob.st, "alice@oslo.test", t->carol.me.pk, &c), 0);
    assert_false(c.key_changed);
    assert_true(c.verified);
    assert_int_equal(kl_sync_release_held(&s, "alice@oslo.test", &released), 0);
    assert_int_equal(released, 1);
    assert_string_equal(g.last, "ny nøkkel");
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
    /* A message from the old key now is a claim the relay does not back. */
    encrypt(&t->alice, &t->bob, 4, "gammel nøkkel", id, &b2, &l2);
    assert_int_equal(kl_sync_entry(&s, 3, 0, b2, l2), 0);
    assert_int_equal(s.forged, 1);
    assert_int_equal(g.n, 2);
    free(b1);
    free(b2);
    free(fake);
}

static void test_contact_reject_drops_pending(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    directory_t dir;
    uint8_t *fake;
    size_t lf;
    uint64_t dropped = 0, n = 1;
    bob_sync(&s, &g, &dir, t);
    pin(&t->bob, &t->alice);
    dir_set(&dir, "alice@oslo.test", t->carol.me.pk);
    forge_proven(&t->carol, &t->bob, "alice@oslo.test", 1, "ta imot meg", &fake, &lf);
    assert_int_equal(kl_sync_entry(&s, 1, 0, fake, lf), 0);
    assert_int_equal(s.held, 1);
    assert_int_equal(kl_contacts_reject(t->bob.st, "alice@oslo.test", &c, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kl_store_contact_get(t->bob.st, "alice@oslo.test", &c), 0);
    assert_false(c.key_changed);
    assert_false(c.has_pending);
    assert_memory_equal(c.key, t->alice.me.pk, 32);
    /* Nothing pending any more: a second reject is refused. */
    assert_int_equal(kl_contacts_reject(t->bob.st, "alice@oslo.test", &c, &dropped), KL_ESTATE);
    free(fake);
}

static void test_sync_releases_many_held_in_order(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    kl_contact_t c;
    directory_t dir;
    uint8_t id[16], *b;
    size_t l, released = 0;
    char text[32];
    bob_sync(&s, &g, &dir, t);
    /* Bob pinned carol to another key: carol's proven, vouched messages
     * are held, more than one release batch (HELD_BATCH is 32). */
    memset(&c, 0, sizeof c);
    snprintf(c.address, sizeof c.address, "carol@oslo.test");
    c.has_key = 1;
    memcpy(c.key, t->alice.me.pk, 32);
    assert_int_equal(kl_store_contact_put(t->bob.st, &c), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text, "melding %d", i);
        encrypt(&t->carol, &t->bob, i == 0 ? 1 : 0, text, id, &b, &l);
        assert_int_equal(kl_sync_entry(&s, 100 + (uint64_t)i, 0, b, l), 0);
        free(b);
    }
    assert_int_equal(s.held, 40);
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_contacts_confirm(t->bob.st, "carol@oslo.test", t->carol.me.pk, &c), 0);
    assert_int_equal(kl_sync_release_held(&s, "carol@oslo.test", &released), 0);
    assert_int_equal(released, 40);
    assert_int_equal(g.n, 40);
    assert_string_equal(g.last, "melding 39");
    uint64_t n = 1;
    assert_int_equal(kl_store_held_count(t->bob.st, NULL, &n), 0);
    assert_int_equal(n, 0);
}

/* A sender-key handout that starts a session, as a group key handout
 * does (made without a one-time prekey when bundle has none). */
static void key_start(party_t *from, party_t *to, const kl_prekey_bundle_t *bundle,
                      uint8_t **body, size_t *len)
{
    kl_content_t ct;
    kl_senderkey_t *k = NULL;
    memset(&ct, 0, sizeof ct);
    kl_random(ct.id, 16);
    ct.sent_at = 1;
    ct.text = (char *)"";
    snprintf(ct.to, sizeof ct.to, "%s", to->me.address);
    ct.has_dist = 1;
    snprintf(ct.dist_group, sizeof ct.dist_group, "#erfa@oslo.test");
    assert_int_equal(kl_senderkey_new(&k, 7), 0);
    assert_int_equal(kl_senderkey_export(k, ct.dist), 0);
    kl_senderkey_free(k);
    assert_int_equal(kl_session_encrypt_content(from->st, &from->me, to->me.address, to->me.pk,
                                                bundle, &ct, body, len),
                     0);
}

/* A relay re-delivers an old session start (made without a one-time
 * prekey, carrying a key rather than text) after the conversation moved
 * on: it must not start a session again, or bob would write with a stale
 * state alice can no longer read. */
static void test_sync_replayed_session_start_ignored(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    directory_t dir;
    kl_prekey_bundle_t b;
    uint8_t id[16], *start, *reply, *later, *after;
    size_t ls, lr, ll, la;
    char text[128];
    bob_sync(&s, &g, &dir, t);
    pin(&t->bob, &t->alice);
    assert_int_equal(kl_prekeys_local_bundle(t->bob.st, &t->bob.me, 0, &b), 0);
    key_start(&t->alice, &t->bob, &b, &start, &ls);
    assert_int_equal(kl_sync_entry(&s, 1, 0, start, ls), 0);
    assert_int_equal(s.keys, 1);
    encrypt(&t->bob, &t->alice, 0, "svar", id, &reply, &lr);
    assert_int_equal(decrypt(&t->alice, reply, lr, text, sizeof text, NULL), 0);
    encrypt(&t->alice, &t->bob, 0, "videre", id, &later, &ll);
    assert_int_equal(kl_sync_entry(&s, 2, 0, later, ll), 0);
    assert_int_equal(g.n, 1);
    /* The old start again, as a new inbox entry. */
    assert_int_equal(kl_sync_entry(&s, 3, 0, start, ls), 0);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.replays, 1);
    /* Bob's session is the live one: alice reads what he writes next. */
    encrypt(&t->bob, &t->alice, 0, "etter replay", id, &after, &la);
    assert_int_equal(decrypt(&t->alice, after, la, text, sizeof text, NULL), 0);
    assert_string_equal(text, "etter replay");
    free(start);
    free(reply);
    free(later);
    free(after);
}

/* A key-carrying message (here a group sender key) is applied once: the
 * same content id again changes nothing. */
static void test_sync_key_message_applied_once(void **state)
{
    trio_t *t = *state;
    kl_sync_t s;
    got_t g;
    directory_t dir;
    kl_prekey_bundle_t b;
    uint8_t *b1;
    size_t l1;
    bob_sync(&s, &g, &dir, t);
    pin(&t->bob, &t->alice);
    assert_int_equal(kl_prekeys_local_bundle(t->bob.st, &t->bob.me, t->bob.batch.ids[0], &b), 0);
    key_start(&t->alice, &t->bob, &b, &b1, &l1);
    assert_int_equal(kl_sync_entry(&s, 1, 0, b1, l1), 0);
    assert_int_equal(s.keys, 1);
    /* Delivered again under a new seq: the ratchet refuses the used
     * message key, so it is a failure, never a second application. */
    assert_int_equal(kl_sync_entry(&s, 2, 0, b1, l1), 0);
    assert_int_equal(s.keys, 1);
    assert_int_equal(cursor_of(&t->bob), 2);
    free(b1);
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
        cmocka_unit_test_setup_teardown(test_sync_unproven_claims_change_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sync_first_contact_and_key_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_reject_drops_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_releases_many_held_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_replayed_session_start_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sync_key_message_applied_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
