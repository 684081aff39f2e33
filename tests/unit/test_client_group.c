/* The client's group pieces without a relay: several client identities,
 * each with its own temporary store, share group ops and bodies directly.
 * Covers the validated local log (a forged op stops it), sender keys
 * travelling over the 1:1 sessions (sync.c stores them), group messages
 * decrypted with the right author, entries kept pending until their key
 * arrives, rotation after a removal (the removed member cannot read what
 * follows), keys from non-members ignored, and retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "group.h"
#include "identity.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "session.h"
#include "store.h"
#include "store_group.h"
#include "sync.h"
#include "util.h"

#define GRP "#erfa@oslo.test"
#define NP 4

typedef struct party {
    char dir[64];
    char path[128];
    kl_cli_t cli;
    kl_prekey_batch_t batch;
    int next_opk;
    uint64_t next_seq;           /* inbox seq for kl_sync_entry */
} party_t;

typedef struct got {
    int n;
    char text[256];
    char sender[KL_ADDR_MAX + 1];
    char peer[KL_ADDR_MAX + 1];
} got_t;

static party_t P[NP]; /* alice, bob, carol, dave */

static void party_new(party_t *p, const char *address)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/kl-grp-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->path, sizeof p->path, "%.60s/kollega.db", p->dir);
    snprintf(p->cli.relay.name, sizeof p->cli.relay.name, "oslo.test");
    snprintf(p->cli.relay.host, sizeof p->cli.relay.host, "127.0.0.1");
    p->cli.relay.port = 7447;
    kl_random(p->cli.relay.key, 32);
    assert_int_equal(kl_store_create(p->path, NULL, &p->cli.st), 0);
    assert_int_equal(kl_identity_generate(&p->cli.me, address), 0);
    assert_int_equal(kl_store_begin(p->cli.st), 0);
    assert_int_equal(kl_identity_save(p->cli.st, &p->cli.me, &p->cli.relay), 0);
    assert_int_equal(kl_store_commit(p->cli.st), 0);
    assert_int_equal(kl_prekeys_generate(p->cli.st, &p->cli.me, 5, 1, &p->batch), 0);
    p->next_seq = 1;
}

static void party_free(party_t *p)
{
    char f[160];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    kl_cli_close(&p->cli);
    for (size_t i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "%s%s", p->path, sfx[i]);
        unlink(f);
    }
    rmdir(p->dir);
}

static int setup(void **state)
{
    const char *names[NP] = {"alice@oslo.test", "bob@oslo.test", "carol@oslo.test",
                             "dave@oslo.test"};
    (void)state;
    if (kl_crypto_init() != 0)
        return -1;
    for (int i = 0; i < NP; i++)
        party_new(&P[i], names[i]);
    /* Everyone has pinned everyone (as `contact add` would). */
    for (int i = 0; i < NP; i++)
        for (int j = 0; j < NP; j++) {
            kl_contact_t c;
            if (i == j)
                continue;
            memset(&c, 0, sizeof c);
            snprintf(c.address, sizeof c.address, "%s", P[j].cli.me.address);
            c.has_key = 1;
            memcpy(c.key, P[j].cli.me.pk, 32);
            assert_int_equal(kl_store_contact_put(P[i].cli.st, &c), 0);
        }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NP; i++)
        party_free(&P[i]);
    return 0;
}

/* The group log as the relay would hold it, kept in a validated state. */
typedef struct log {
    kl_group_t *g;
    uint8_t *ops[16];
    size_t len[16];
    size_t n;
} log_t;

static void log_op(log_t *l, party_t *actor, kl_group_opdesc_t d)
{
    kl_group_verr_t why;
    assert_int_equal(kl_group_op_build(l->g, actor->cli.me.sk, actor->cli.me.pk,
                                       actor->cli.me.address, 1, &d, &l->ops[l->n], &l->len[l->n]),
                     0);
    assert_int_equal(kl_group_apply(l->g, l->ops[l->n], l->len[l->n], NULL, &why), 0);
    l->n++;
}

static kl_group_opdesc_t desc(kl_group_opkind_t kind, const party_t *target)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    d.policy = KL_POLICY_FACILITATORS;
    if (target) {
        memcpy(d.target, target->cli.me.pk, 32);
        assert_true(strlen(target->cli.me.address) < sizeof d.target_address);
        memcpy(d.target_address, target->cli.me.address, strlen(target->cli.me.address) + 1);
        d.has_target = 1;
    }
    return d;
}

/* alice creates GRP (policy facilitators) and admits bob and carol. */
static void make_group(log_t *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(kl_group_new(&l->g, GRP), 0);
    log_op(l, &P[0], desc(KL_GOP_CREATE, NULL));
    log_op(l, &P[0], desc(KL_GOP_INVITE, &P[1]));
    log_op(l, &P[0], desc(KL_GOP_INVITE, &P[2]));
}

static void log_free(log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ops[i]);
    kl_group_free(l->g);
}

/* Give party p the ops it does not have yet (what kl_grp_sync_ops does
 * after validating them). */
static void share(const log_t *l, party_t *p)
{
    kl_grp_t x;
    kl_store_group_t row;
    assert_int_equal(kl_grp_load(&p->cli, GRP, &x), 0);
    uint64_t have = kl_group_next_index(x.g);
    kl_grp_free(&x);
    assert_int_equal(kl_store_begin(p->cli.st), 0);
    if (kl_store_group_get(p->cli.st, GRP, &row) == KL_ENOTFOUND) {
        memset(&row, 0, sizeof row);
        snprintf(row.address, sizeof row.address, "%s", GRP);
        assert_int_equal(kl_store_group_put(p->cli.st, &row), 0);
    }
    for (size_t i = have; i < l->n; i++)
        assert_int_equal(kl_store_group_op_put(p->cli.st, GRP, i, l->ops[i], l->len[i]), 0);
    assert_int_equal(kl_store_commit(p->cli.st), 0);
}

static int on_msg(void *ud, const kl_message_t *m)
{
    got_t *g = ud;
    g->n++;
    snprintf(g->text, sizeof g->text, "%.*s", (int)m->text_len, m->text);
    snprintf(g->sender, sizeof g->sender, "%s", m->sender);
    snprintf(g->peer, sizeof g->peer, "%s", m->peer);
    return 0;
}

/* from's current sender key, at its current position, as the 1:1 body
 * that carries it to `to`. Returns the key_id. */
static uint32_t key_body(party_t *from, party_t *to, uint8_t **body, size_t *blen)
{
    kl_grp_t x;
    kl_senderkey_t *k = NULL;
    kl_content_t c;
    kl_prekey_bundle_t b;
    int has = 0;
    assert_int_equal(kl_grp_load(&from->cli, GRP, &x), 0);
    assert_int_equal(kl_grp_own_key(&from->cli, &x, 1, &k), 0);
    memset(&c, 0, sizeof c);
    kl_random(c.id, 16);
    c.text = (char *)"";
    snprintf(c.to, sizeof c.to, "%s", to->cli.me.address);
    c.has_dist = 1;
    snprintf(c.dist_group, sizeof c.dist_group, "%s", GRP);
    c.dist_epoch = kl_group_epoch(x.g);
    assert_int_equal(kl_senderkey_export(k, c.dist), 0);
    assert_int_equal(kl_session_has(from->cli.st, to->cli.me.address, to->cli.me.pk, &has), 0);
    if (!has)
        assert_int_equal(kl_prekeys_local_bundle(to->cli.st, &to->cli.me,
                                                 to->batch.ids[to->next_opk++], &b),
                         0);
    assert_int_equal(kl_session_encrypt_content(from->cli.st, &from->cli.me, to->cli.me.address,
                                                to->cli.me.pk, has ? NULL : &b, &c, body, blen),
                     0);
    uint32_t id = kl_senderkey_id(k);
    kl_senderkey_free(k);
    kl_grp_free(&x);
    return id;
}

/* `to` receives a key body through its inbox; sync.c stores the key. */
static void take_key(party_t *to, uint8_t *body, size_t blen)
{
    kl_sync_t s;
    memset(&s, 0, sizeof s);
    s.st = to->cli.st;
    s.me = &to->cli.me;
    s.quiet = 1;
    assert_int_equal(kl_sync_entry(&s, to->next_seq++, 0, body, blen), 0);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.stored, 0); /* a key is not a message */
    free(body);
}

static uint32_t give_key(party_t *from, party_t *to)
{
    uint8_t *body = NULL;
    size_t blen = 0;
    uint32_t id = key_body(from, to, &body, &blen);
    take_key(to, body, blen);
    return id;
}

static void seal(party_t *from, const char *text, uint8_t **body, size_t *blen)
{
    kl_grp_t x;
    kl_senderkey_t *k = NULL;
    kl_message_t m;
    assert_int_equal(kl_grp_load(&from->cli, GRP, &x), 0);
    assert_int_equal(kl_grp_own_key(&from->cli, &x, 1, &k), 0);
    assert_int_equal(kl_grp_seal(&from->cli, &x, k, text, strlen(text), &m, body, blen), 0);
    kl_senderkey_free(k);
    kl_grp_free(&x);
}

/* to processes entry seq; returns the counters. */
static kl_grp_rx_t deliver(party_t *to, uint64_t seq, const uint8_t *body, size_t blen, got_t *g)
{
    kl_grp_t x;
    kl_sync_t s;
    kl_grp_rx_t c;
    memset(&s, 0, sizeof s);
    s.st = to->cli.st;
    s.me = &to->cli.me;
    s.on_message = on_msg;
    s.ud = g;
    assert_int_equal(kl_grp_load(&to->cli, GRP, &x), 0);
    memset(&c, 0, sizeof c);
    c.cli = &to->cli;
    c.s = &s;
    c.x = &x;
    assert_int_equal(kl_grp_entry(&c, seq, 1, body, blen), 0);
    kl_grp_free(&x);
    c.x = NULL;
    return c;
}

static size_t retry(party_t *to, got_t *g)
{
    kl_grp_t x;
    kl_sync_t s;
    kl_grp_rx_t c;
    size_t left = 99;
    memset(&s, 0, sizeof s);
    s.on_message = on_msg;
    s.ud = g;
    assert_int_equal(kl_grp_load(&to->cli, GRP, &x), 0);
    memset(&c, 0, sizeof c);
    c.cli = &to->cli;
    c.s = &s;
    c.x = &x;
    assert_int_equal(kl_grp_retry_pending(&c, &left), 0);
    kl_grp_free(&x);
    return left;
}

static void test_address_and_validated_log(void **state)
{
    log_t l;
    kl_grp_t x;
    char out[KL_ADDR_MAX + 1];
    uint8_t *forged = NULL;
    size_t flen = 0;
    (void)state;
    assert_int_equal(kl_grp_address(&P[0].cli, "#erfa", out, sizeof out), 0);
    assert_string_equal(out, GRP);
    assert_int_equal(kl_grp_address(&P[0].cli, "#erfa@bergen.test", out, sizeof out), 0);
    assert_string_equal(out, "#erfa@bergen.test");
    assert_int_equal(kl_grp_address(&P[0].cli, "erfa", out, sizeof out), KL_EINVAL);
    assert_int_equal(kl_grp_address(&P[0].cli, "#Erfa", out, sizeof out), KL_EINVAL);

    make_group(&l);
    share(&l, &P[1]);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_int_equal(kl_group_member_count(x.g), 3);
    assert_false(x.invalid);
    assert_true(x.admitted);
    assert_string_equal(x.invited_by, P[0].cli.me.address);
    kl_grp_free(&x);

    /* An op dave signed although he is no member ("a relay inserted him"):
     * the local log stops before it and dave never becomes a member. */
    kl_group_opdesc_t d = desc(KL_GOP_INVITE, &P[3]);
    assert_int_equal(kl_group_op_build(l.g, P[3].cli.me.sk, P[3].cli.me.pk, P[3].cli.me.address, 1,
                                       &d, &forged, &flen),
                     0);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    assert_int_equal(kl_store_group_op_put(P[1].cli.st, GRP, l.n, forged, flen), 0);
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_true(x.invalid);
    assert_int_equal(kl_group_next_index(x.g), l.n);
    assert_int_equal(kl_group_role_of(x.g, P[3].cli.me.pk), KL_ROLE_NONE);
    kl_grp_free(&x);
    free(forged);
    log_free(&l);
}

static void test_messages_keys_and_pending(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b1, *b2;
    size_t l1, l2;
    uint64_t n = 0;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint8_t *kc = NULL;
    size_t klc = 0;
    give_key(&P[0], &P[1]);
    /* alice's key for carol leaves before her message, but reaches carol
     * only after it (carol fetched her inbox before it arrived). */
    key_body(&P[0], &P[2], &kc, &klc);
    seal(&P[0], "hei gruppa", &b1, &l1);
    /* The group message names no sender: bob finds alice by her key. */
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[1], 1, b1, l1, &g);
    assert_int_equal(c.stored, 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text, "hei gruppa");
    assert_string_equal(g.sender, P[0].cli.me.address);
    assert_string_equal(g.peer, GRP);
    /* Redelivery at or below the cursor is skipped: shown once. */
    c = deliver(&P[1], 1, b1, l1, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(c.stored + c.pending_new + c.failed, 0);
    /* The author sees its own message in the log and skips it. */
    c = deliver(&P[0], 1, b1, l1, &g);
    assert_int_equal(c.stored + c.pending_new + c.failed, 0);

    /* carol has no key yet: kept pending, then read once the key comes. */
    memset(&g, 0, sizeof g);
    c = deliver(&P[2], 1, b1, l1, &g);
    assert_int_equal(c.pending_new, 1);
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_store_gpending_count(P[2].cli.st, GRP, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(retry(&P[2], &g), 1);
    take_key(&P[2], kc, klc);
    assert_int_equal(retry(&P[2], &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text, "hei gruppa");

    /* A tampered body is counted as a failure, not shown. */
    seal(&P[0], "andre", &b2, &l2);
    b2[l2 / 2] ^= 1;
    memset(&g, 0, sizeof g);
    c = deliver(&P[1], 2, b2, l2, &g);
    assert_int_equal(c.failed, 1);
    assert_int_equal(g.n, 0);
    free(b1);
    free(b2);
    log_free(&l);
}

static void test_removal_rotates_and_excludes(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b1, *b2;
    size_t l1, l2;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint32_t before = give_key(&P[0], &P[1]);
    assert_int_equal(give_key(&P[0], &P[2]), before);
    seal(&P[0], "før", &b1, &l1);
    memset(&g, 0, sizeof g);
    assert_int_equal(deliver(&P[2], 1, b1, l1, &g).stored, 1);

    /* alice removes carol: the epoch moves on and alice's next message
     * uses a new key that only bob receives. */
    log_op(&l, &P[0], desc(KL_GOP_REMOVE, &P[2]));
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint32_t after = give_key(&P[0], &P[1]);
    assert_int_not_equal(after, before);
    seal(&P[0], "etter", &b2, &l2);
    uint32_t kid = 0;
    assert_int_equal(kl_senderkey_msg_key_id(b2, l2, &kid), 0);
    assert_int_equal(kid, after);
    memset(&g, 0, sizeof g);
    assert_int_equal(deliver(&P[1], 2, b2, l2, &g).stored, 1);
    assert_string_equal(g.text, "etter");
    /* carol, handed the entry anyway (a relay giving her cursor back),
     * has no key for it: nothing is shown, it can only wait. */
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[2], 2, b2, l2, &g);
    assert_int_equal(c.stored, 0);
    assert_int_equal(c.pending_new, 1);
    assert_int_equal(retry(&P[2], &g), 1);
    assert_int_equal(g.n, 0);
    free(b1);
    free(b2);
    log_free(&l);
}

static void test_keys_of_non_members_are_not_used(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b;
    size_t bl;
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    share(&l, &P[3]); /* dave holds the log but is no member */
    /* dave hands bob a key for the group and writes with it. */
    give_key(&P[3], &P[1]);
    seal(&P[3], "jeg er med", &b, &bl);
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[1], 1, b, bl, &g);
    assert_int_equal(c.stored, 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(c.pending_new, 1);
    free(b);
    log_free(&l);
}

static void test_retention_deletes_old_messages(void **state)
{
    log_t l;
    kl_message_t m;
    int added = 0;
    uint64_t now = kl_now_ms();
    (void)state;
    memset(&l, 0, sizeof l);
    assert_int_equal(kl_group_new(&l.g, GRP), 0);
    kl_group_opdesc_t d = desc(KL_GOP_CREATE, NULL);
    d.days = 2;
    log_op(&l, &P[0], d);
    share(&l, &P[0]);
    assert_int_equal(kl_store_begin(P[0].cli.st), 0);
    kl_store_group_t row;
    memset(&row, 0, sizeof row);
    snprintf(row.address, sizeof row.address, "%s", GRP);
    assert_int_equal(kl_store_group_put(P[0].cli.st, &row), 0);
    for (int i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        kl_random(m.id, 16);
        snprintf(m.peer, sizeof m.peer, "%s", i < 2 ? GRP : P[1].cli.me.address);
        snprintf(m.sender, sizeof m.sender, "%s", i < 2 ? P[1].cli.me.address : "");
        /* one group message three days old, one fresh; an old 1:1 one */
        m.stored_at = i == 1 ? now : now - 3 * 24 * 3600 * 1000ull;
        m.sent_at = m.stored_at;
        /* The old group message was decrypted late (stored today): the
         * relay's entry time decides. */
        if (i == 0) {
            m.relay_ts = m.stored_at;
            m.stored_at = now;
        }
        m.text = "x";
        m.text_len = 1;
        assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
        assert_true(added);
    }
    assert_int_equal(kl_store_commit(P[0].cli.st), 0);
    assert_int_equal(kl_grp_retention_all(&P[0].cli), 0);
    got_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, GRP, on_msg, &g), 0);
    assert_int_equal(g.n, 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, P[1].cli.me.address, on_msg, &g), 0);
    assert_int_equal(g.n, 1); /* 1:1 history has no retention */
    log_free(&l);
}

static void test_content_with_sender_key(void **state)
{
    kl_content_t c, back;
    uint8_t *pt = NULL;
    size_t cap = 0, len = 0;
    (void)state;
    memset(&c, 0, sizeof c);
    kl_random(c.id, 16);
    c.text = (char *)"";
    snprintf(c.to, sizeof c.to, "bob@oslo.test");
    c.has_dist = 1;
    snprintf(c.dist_group, sizeof c.dist_group, "%s", GRP);
    c.dist_epoch = 3;
    kl_random(c.dist, sizeof c.dist);
    assert_int_equal(kl_content_pack(&c, &pt, &cap, &len), 0);
    assert_int_equal(len % 256, 0);
    assert_int_equal(kl_content_unpack(pt, len, &back), 0);
    assert_true(back.has_dist);
    assert_string_equal(back.dist_group, GRP);
    assert_int_equal(back.dist_epoch, 3);
    assert_memory_equal(back.dist, c.dist, sizeof c.dist);
    kl_content_free(&back);
    kl_free_wipe(pt, cap);
    /* A key for something that is not a group is malformed. */
    snprintf(c.dist_group, sizeof c.dist_group, "bob@oslo.test");
    assert_int_equal(kl_content_pack(&c, &pt, &cap, &len), 0);
    assert_int_equal(kl_content_unpack(pt, len, &back), KL_EPROTO);
    kl_free_wipe(pt, cap);
}

/* A relay that shows bob another op at index 3 than alice: alice's message
 * names her head at index 4, bob's differs: bob warns, and gives no keys
 * and sends nothing in that group from then on. */
static void test_fork_detected(void **state)
{
    log_t la, lb;
    got_t g;
    uint8_t *b;
    size_t bl;
    kl_grp_t x;
    kl_message_t m;
    (void)state;
    make_group(&la);
    make_group(&lb);
    /* Same first ops for both (bob's copy is alice's, re-applied). */
    for (size_t i = 0; i < la.n; i++) {
        free(lb.ops[i]);
        lb.ops[i] = malloc(la.len[i]);
        memcpy(lb.ops[i], la.ops[i], la.len[i]);
        lb.len[i] = la.len[i];
    }
    kl_group_free(lb.g);
    assert_int_equal(kl_group_new(&lb.g, GRP), 0);
    for (size_t i = 0; i < lb.n; i++)
        assert_int_equal(kl_group_apply(lb.g, lb.ops[i], lb.len[i], NULL, NULL), 0);
    log_op(&la, &P[0], desc(KL_GOP_INVITE, &P[3]));   /* alice sees dave invited */
    kl_group_opdesc_t d = desc(KL_GOP_SET_ROLE, &P[1]);
    d.role = KL_ROLE_FACILITATOR;
    log_op(&lb, &P[0], d);                             /* bob sees a role change */
    share(&la, &P[0]);
    share(&lb, &P[1]);
    share(&la, &P[2]);
    give_key(&P[0], &P[1]);
    give_key(&P[0], &P[2]);
    seal(&P[0], "hvem leser?", &b, &bl);
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[1], 1, b, bl, &g);
    assert_int_equal(c.stored, 1);
    assert_int_equal(g.n, 1);
    kl_store_group_t row;
    assert_int_equal(kl_store_group_get(P[1].cli.st, GRP, &row), 0);
    assert_int_equal(row.fork_index, 4);
    assert_memory_equal(row.fork_author, P[0].cli.me.pk, 32);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_true(kl_grp_blocked(&x));
    /* No network is touched: refused before anything is made or sent. */
    assert_int_equal(kl_grp_send(&P[1].cli, NULL, &x, "hei", 3, &m), KL_ECRYPTO);
    assert_int_equal(kl_grp_distribute(&P[1].cli, NULL, &x), 0);
    kl_grp_free(&x);
    /* carol, whose log is alice's, sees no fork. */
    memset(&g, 0, sizeof g);
    assert_int_equal(deliver(&P[2], 1, b, bl, &g).stored, 1);
    assert_int_equal(kl_store_group_get(P[2].cli.st, GRP, &row), 0);
    assert_int_equal(row.fork_index, 0);
    free(b);
    log_free(&la);
    log_free(&lb);
}

/* A local log that failed validation blocks sending and keys. */
static void test_invalid_log_blocks_sending(void **state)
{
    log_t l;
    kl_grp_t x;
    kl_message_t m;
    uint8_t *forged = NULL;
    size_t flen = 0;
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    kl_group_opdesc_t d = desc(KL_GOP_INVITE, &P[3]);
    assert_int_equal(kl_group_op_build(l.g, P[3].cli.me.sk, P[3].cli.me.pk, P[3].cli.me.address, 1,
                                       &d, &forged, &flen),
                     0);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    assert_int_equal(kl_store_group_op_put(P[1].cli.st, GRP, l.n, forged, flen), 0);
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_true(x.invalid);
    assert_int_equal(kl_grp_send(&P[1].cli, NULL, &x, "hei", 3, &m), KL_ECRYPTO);
    kl_grp_free(&x);
    free(forged);
    log_free(&l);
}

/* Two members' messages with the same id are both kept. */
static void test_dedupe_by_sender(void **state)
{
    kl_message_t m;
    int added = 0;
    got_t g;
    (void)state;
    memset(&m, 0, sizeof m);
    kl_random(m.id, 16);
    snprintf(m.peer, sizeof m.peer, "%s", GRP);
    m.text = "x";
    m.text_len = 1;
    m.stored_at = m.sent_at = kl_now_ms();
    assert_int_equal(kl_store_begin(P[0].cli.st), 0);
    snprintf(m.sender, sizeof m.sender, "%s", P[1].cli.me.address);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_false(added); /* a real duplicate */
    snprintf(m.sender, sizeof m.sender, "%s", P[2].cli.me.address);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added); /* carol reusing bob's id does not suppress either */
    /* 1:1 duplicates are still found. */
    snprintf(m.peer, sizeof m.peer, "%s", P[1].cli.me.address);
    m.sender[0] = '\0';
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_false(added);
    assert_int_equal(kl_store_commit(P[0].cli.st), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, GRP, on_msg, &g), 0);
    assert_int_equal(g.n, 2);
}

/* on_message runs only after the commit: a second connection sees it. */
static int on_msg_committed(void *ud, const kl_message_t *m)
{
    got_t *g = ud;
    kl_store_t *other = NULL;
    got_t seen;
    (void)m;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kl_store_open(P[1].path, NULL, NULL, &other), 0);
    assert_int_equal(kl_store_message_each(other, GRP, on_msg, &seen), 0);
    kl_store_close(other);
    g->n += seen.n;
    return 0;
}

static void test_shown_after_commit(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b;
    size_t bl;
    kl_grp_t x;
    kl_sync_t s;
    kl_grp_rx_t c;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 2; i++)
        share(&l, &P[i]);
    give_key(&P[0], &P[1]);
    seal(&P[0], "én gang", &b, &bl);
    memset(&g, 0, sizeof g);
    memset(&s, 0, sizeof s);
    s.on_message = on_msg_committed;
    s.ud = &g;
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    memset(&c, 0, sizeof c);
    c.cli = &P[1].cli;
    c.s = &s;
    c.x = &x;
    assert_int_equal(kl_grp_entry(&c, 1, 1, b, bl), 0);
    assert_int_equal(c.stored, 1);
    assert_int_equal(g.n, 1); /* the message was committed when shown */
    kl_grp_free(&x);
    free(b);
    log_free(&l);
}

/* policy all -> facilitators admits carol and dave at one op: dave, the
 * second, learns he is a member too. */
static void test_several_admitted_at_once(void **state)
{
    log_t l;
    kl_grp_t x;
    (void)state;
    memset(&l, 0, sizeof l);
    assert_int_equal(kl_group_new(&l.g, GRP), 0);
    kl_group_opdesc_t d = desc(KL_GOP_CREATE, NULL);
    d.policy = KL_POLICY_ALL;
    log_op(&l, &P[0], d);
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[1]));   /* alone: admitted */
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[2]));   /* needs bob */
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[3]));   /* needs bob */
    d = desc(KL_GOP_SET_POLICY, NULL);
    d.policy = KL_POLICY_FACILITATORS;
    log_op(&l, &P[0], d);
    share(&l, &P[3]);
    assert_int_equal(kl_grp_load(&P[3].cli, GRP, &x), 0);
    assert_int_equal(kl_group_role_of(x.g, P[3].cli.me.pk), KL_ROLE_MEMBER);
    assert_true(x.admitted);
    kl_grp_free(&x);
    log_free(&l);
}

static int count_key(void *ud, const uint8_t owner[32], const uint8_t *ser, size_t len)
{
    (void)owner;
    (void)ser;
    (void)len;
    (*(int *)ud)++;
    return 0;
}

/* Bounds: pending entries, sender keys per owner, keys for unknown groups,
 * and everything forgotten after leaving. */
static void test_store_bounds(void **state)
{
    log_t l;
    uint64_t n = 0, dropped = 0, total = 0;
    uint8_t body[64];
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    memset(body, 7, sizeof body);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    for (uint64_t seq = 1; seq <= KL_GPENDING_MAX + 5; seq++) {
        assert_int_equal(kl_store_gpending_add(P[1].cli.st, GRP, seq, 1, body, sizeof body,
                                               &dropped),
                         0);
        total += dropped;
    }
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_store_gpending_count(P[1].cli.st, GRP, &n), 0);
    assert_int_equal(n, KL_GPENDING_MAX);
    assert_int_equal(total, 5);

    /* Ten keys of alice: the newest eight stay. */
    uint8_t dist[KL_SENDERKEY_DIST];
    uint32_t ids[10];
    for (int i = 0; i < 10; i++) {
        kl_senderkey_t *k = NULL;
        assert_int_equal(kl_senderkey_new(&k, (uint32_t)(100 + i)), 0);
        ids[i] = kl_senderkey_id(k);
        assert_int_equal(kl_senderkey_export(k, dist), 0);
        kl_senderkey_free(k);
        assert_int_equal(kl_store_begin(P[1].cli.st), 0);
        assert_int_equal(kl_grp_store_dist(P[1].cli.st, GRP, P[0].cli.me.pk, 0, dist, sizeof dist),
                         0);
        /* A group bob never saw: ignored. */
        assert_int_equal(kl_grp_store_dist(P[1].cli.st, "#other@oslo.test", P[0].cli.me.pk, 0,
                                           dist, sizeof dist),
                         0);
        assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    }
    int have = 0;
    for (int i = 0; i < 10; i++) {
        int one = 0;
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, GRP, ids[i], count_key, &one), 0);
        assert_int_equal(one, i >= 2);
        have += one;
        one = 0;
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, "#other@oslo.test", ids[i],
                                                 count_key, &one),
                         0);
        assert_int_equal(one, 0);
    }
    assert_int_equal(have, KL_SK_KEEP);
    /* Gone from the group: keys and pending entries go. */
    assert_int_equal(kl_grp_forget(&P[1].cli, GRP), 0);
    have = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, GRP, ids[i], count_key, &have), 0);
    assert_int_equal(have, 0);
    assert_int_equal(kl_store_gpending_count(P[1].cli.st, GRP, &n), 0);
    assert_int_equal(n, 0);
    log_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_address_and_validated_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_keys_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_rotates_and_excludes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_of_non_members_are_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_deletes_old_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_with_sender_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_log_blocks_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_by_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shown_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_admitted_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_bounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
