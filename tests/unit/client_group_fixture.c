/* The client group fixture (client_group_fixture.h). */
#include "client_group_fixture.h"

party_t P[NP];

void party_new(party_t *p, const char *address)
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

void party_free(party_t *p)
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

int setup(void **state)
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

int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NP; i++)
        party_free(&P[i]);
    return 0;
}

void log_op(log_t *l, party_t *actor, kl_group_opdesc_t d)
{
    kl_group_verr_t why;
    assert_int_equal(kl_group_op_build(l->g, actor->cli.me.sk, actor->cli.me.pk,
                                       actor->cli.me.address, 1, &d, &l->ops[l->n], &l->len[l->n]),
                     0);
    assert_int_equal(kl_group_apply(l->g, l->ops[l->n], l->len[l->n], NULL, &why), 0);
    l->n++;
}

kl_group_opdesc_t desc(kl_group_opkind_t kind, const party_t *target)
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

void make_group(log_t *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(kl_group_new(&l->g, GRP), 0);
    log_op(l, &P[0], desc(KL_GOP_CREATE, NULL));
    log_op(l, &P[0], desc(KL_GOP_INVITE, &P[1]));
    log_op(l, &P[0], desc(KL_GOP_INVITE, &P[2]));
}

void log_free(log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ops[i]);
    kl_group_free(l->g);
}

void share(const log_t *l, party_t *p)
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
        assert_int_equal(kl_store_slog_op_put(p->cli.st, GRP, i, l->ops[i], l->len[i]), 0);
    assert_int_equal(kl_store_commit(p->cli.st), 0);
}

int on_msg(void *ud, const kl_message_t *m)
{
    got_t *g = ud;
    g->n++;
    snprintf(g->text, sizeof g->text, "%.*s", (int)m->text_len, m->text);
    snprintf(g->sender, sizeof g->sender, "%s", m->sender);
    snprintf(g->peer, sizeof g->peer, "%s", m->peer);
    return 0;
}

uint32_t key_body(party_t *from, party_t *to, uint8_t **body, size_t *blen)
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

void take_key(party_t *to, uint8_t *body, size_t blen)
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

uint32_t give_key(party_t *from, party_t *to)
{
    uint8_t *body = NULL;
    size_t blen = 0;
    uint32_t id = key_body(from, to, &body, &blen);
    take_key(to, body, blen);
    return id;
}

void seal(party_t *from, const char *text, uint8_t **body, size_t *blen)
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

kl_grp_rx_t deliver(party_t *to, uint64_t seq, const uint8_t *body, size_t blen, got_t *g)
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

size_t retry(party_t *to, got_t *g)
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
