/* Broadcast channels (proto/channel.c): publisher-log ops and posts, raw
 * and built from a program, applied to the fixture's state.
 *
 * Input: records until the input ends, each
 *   u8 mode:  0 raw op:    u16 len, bytes      -> kl_channel_apply
 *             1 raw post:  u16 len, bytes      -> kl_channel_post_open
 *             2 built op:  u8 actor, u8 kind, u8 target (signed correctly,
 *                          so the rules are reached, not just signatures)
 *             3 built post: u8 author, u8 text length (sealed under a
 *                          fixed key in a members-only channel)
 *             4 restart as a fresh members-only channel created by u0
 * Built ops cover every kind (create, publisher and member ops).
 * Oracles: a refused op leaves the state (head, index, publishers,
 * members, epoch) unchanged and names a reason; an accepted op moves the
 * index by one and the head to its hash, and the epoch by one exactly for
 * a remove; the owner is always publisher 0 and a member, every publisher
 * is a member; member ops are refused in a public channel; an opened
 * post's author is a current publisher, a members-only post has no text,
 * ciphertext and 1 <= epoch <= the current one (and unseals under the key),
 * a public one neither; replaying an accepted op is refused. */
#include "fuzz_channel.h"
#include "kollega/err.h"

static fc_fx_t fx;
static int ready;

typedef struct snap {
    uint8_t head[32];
    uint64_t next;
    size_t npub, nmem;
    uint64_t epoch;
    uint8_t digest[32];
} snap_t;

static const uint8_t KEY[KL_CHANNEL_KEY] = {7, 7, 7};

static void snapshot(const kl_channel_t *c, snap_t *s)
{
    uint8_t all[KL_CHANNEL_MAX_PUBLISHERS * 32];
    char addr[256];
    kl_channel_head(c, s->head);
    s->next = kl_channel_next_index(c);
    s->npub = kl_channel_publisher_count(c);
    s->nmem = kl_channel_added_count(c);
    s->epoch = kl_channel_epoch(c);
    FUZZ_CHECK(s->npub <= KL_CHANNEL_MAX_PUBLISHERS && s->nmem <= KL_CHANNEL_MAX_MEMBERS);
    FUZZ_CHECK(kl_channel_members_only(c) || s->nmem == 0);
    for (size_t i = 0; i < s->npub; i++) {
        FUZZ_CHECK(kl_channel_publisher_at(c, i, all + 32 * i, addr) == 0);
        FUZZ_CHECK(kl_channel_is_member(c, all + 32 * i));
    }
    kl_sha256(all, 32 * s->npub, s->digest);
    for (size_t i = 0; i < s->nmem && i < 8; i++) {
        uint8_t k[32];
        FUZZ_CHECK(kl_channel_added_at(c, i, k, addr) == 0 && kl_channel_is_member(c, k));
        s->digest[i] ^= k[0];
    }
}

static void apply_op(kl_channel_t *c, const uint8_t *op, size_t len)
{
    snap_t before, after;
    kl_channel_verr_t why;
    uint8_t h[32], owner[32];

    kl_channel_event_t ev;
    snapshot(c, &before);
    int r = kl_channel_apply(c, op, len, &ev, &why);
    snapshot(c, &after);
    if (r != 0) {
        FUZZ_CHECK(why != KL_CV_OK);
        FUZZ_CHECK(memcmp(&before, &after, sizeof before) == 0);
        return;
    }
    FUZZ_CHECK(why == KL_CV_OK && after.next == before.next + 1);
    kl_sha256(op, len, h);
    FUZZ_CHECK(memcmp(h, after.head, 32) == 0);
    FUZZ_CHECK(kl_channel_owner(c, owner) == 0 && kl_channel_is_publisher(c, owner) &&
               kl_channel_is_member(c, owner));
    FUZZ_CHECK(ev.epoch == after.epoch && after.epoch >= 1);
    if (ev.kind == KL_COP_REMOVE_MEMBER || ev.kind == KL_COP_REMOVE_PUBLISHER)
        FUZZ_CHECK(after.epoch == before.epoch + 1);
    else if (ev.kind != KL_COP_CREATE)
        FUZZ_CHECK(after.epoch == before.epoch);
    if (ev.kind == KL_COP_ADD_MEMBER || ev.kind == KL_COP_REMOVE_MEMBER)
        FUZZ_CHECK(kl_channel_members_only(c));
    FUZZ_CHECK(kl_channel_apply(c, op, len, NULL, &why) != 0 && why == KL_CV_CHAIN);
}

static void open_post(const kl_channel_t *c, const uint8_t *p, size_t len)
{
    kl_channel_post_t post;
    kl_channel_verr_t why;
    if (kl_channel_post_open(c, p, len, &post, &why) != 0) {
        FUZZ_CHECK(post.text == NULL);
        return;
    }
    FUZZ_CHECK(why == KL_CV_OK && kl_channel_is_publisher(c, post.publisher));
    FUZZ_CHECK(post.text != NULL && strlen(post.text) == post.text_len);
    if (kl_channel_members_only(c)) {
        FUZZ_CHECK(post.text_len == 0 && post.ciphertext != NULL && post.epoch >= 1 &&
                   post.epoch <= kl_channel_epoch(c));
        if (kl_channel_post_unseal(kl_channel_address(c), &post, KEY) == 0)
            FUZZ_CHECK(post.text != NULL && strlen(post.text) == post.text_len);
    } else {
        FUZZ_CHECK(post.ciphertext == NULL && post.epoch == 0);
    }
    kl_channel_post_clear(&post);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    size_t n;
    if (!ready) {
        fc_fixture(&fx);
        ready = 1;
    }
    fuzz_rng_reset(FC_SEED + 1);
    kl_channel_t *c = fc_state(&fx);
    for (int steps = 0; in.left > 0 && steps < 64; steps++) {
        uint8_t mode = fuzz_u8(&in) % 5;
        if (mode == 4) {
            uint8_t *op = NULL;
            size_t oplen = 0;
            kl_channel_free(c);
            FUZZ_CHECK(kl_channel_new(&c, FC_ADDR) == 0);
            FUZZ_CHECK(kl_channel_op_build_create(c, fx.u[0].sk, fx.u[0].pk, fx.u[0].addr, FC_TS,
                                                  1, &op, &oplen) == 0);
            apply_op(c, op, oplen);
            FUZZ_CHECK(kl_channel_members_only(c) && kl_channel_epoch(c) == 1);
            free(op);
            continue;
        }
        if (mode <= 1) {
            const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &n);
            if (mode == 0)
                apply_op(c, p, n);
            else
                open_post(c, p, n);
            continue;
        }
        const fc_user_t *a = &fx.u[fuzz_u8(&in) % FC_NUSERS];
        uint8_t *out = NULL;
        size_t len = 0;
        if (mode == 2) {
            kl_channel_opkind_t kind = (kl_channel_opkind_t)(KL_COP_CREATE + fuzz_u8(&in) % 5);
            const fc_user_t *t = &fx.u[fuzz_u8(&in) % FC_NUSERS];
            if (kl_channel_op_build(c, a->sk, a->pk, a->addr, FC_TS, kind, t->pk, t->addr, &out,
                                    &len) == 0)
                apply_op(c, out, len);
        } else {
            char text[256];
            uint8_t id[16] = {0};
            size_t tl = fuzz_u8(&in);
            memset(text, 'a', tl);
            text[tl] = '\0';
            int r = kl_channel_members_only(c)
                        ? kl_channel_post_build_sealed(c, a->sk, a->pk, a->addr, id, FC_TS, KEY,
                                                       kl_channel_epoch(c), text, &out, &len)
                        : kl_channel_post_build(c, a->sk, a->pk, a->addr, id, FC_TS, text, &out,
                                                &len);
            FUZZ_CHECK((r == 0) == kl_channel_is_publisher(c, a->pk));
            if (r == 0)
                open_post(c, out, len);
        }
        free(out);
    }
    kl_channel_free(c);
    return 0;
}
