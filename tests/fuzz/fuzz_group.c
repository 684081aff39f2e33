/* Group governance log: decoding and validation (kl_group_apply), on a
 * fresh state and after a valid prefix (fuzz_group.h).
 *
 * Input: u8 mode | rest.
 *   mode % 4 == 0  rest is a log: repeated (u16 BE length | that many
 *                  bytes), each applied as a SignedOp to a fresh state.
 *   mode % 4 == 1  the same after the fixture's valid prefix.
 *   mode % 4 == 2  rest is a program run after the prefix: up to 64 steps of
 *                  (u8 actor | u8 kind | u8 target | u8 param | u8 f1 | u8 f2),
 *                  each an op built and signed by a fixture user
 *                  (fg_step_op) and applied; if f1 & 0x80, bit
 *                  ((f1 & 0x7f) << 8 | f2) mod its size of the op is flipped
 *                  first. Signatures are real, so the rules get exercised,
 *                  not only the decoder.
 *   mode % 4 == 3  the same program on a fresh state.
 *
 * Oracles, after every apply:
 *   - refused: a reason is given, the error code matches it, and every
 *     query answers exactly as before;
 *   - accepted: the index advances by one, the head is the SHA-256 of the
 *     op, the event is consistent (admission, epoch), the state's
 *     invariants hold, and the same bytes applied again are refused. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"

#define MAX_STEPS 64

/* Append len bytes at buf + n; a function rather than a macro so gcc's
 * -O2 object-size analysis sees one bounded copy. */
static size_t put_bytes(uint8_t *buf, size_t cap, size_t n, const void *p, size_t len)
{
    if (n > cap || len > cap - n)
        abort();
    memcpy(buf + n, p, len);
    return n + len;
}

/* Every query answer, hashed. Approvals are asked of the fixture users
 * only: nobody else can sign, so nobody else can be a member. */
static void digest(const kl_group_t *g, const fg_fx_t *fx, uint8_t out[32])
{
    static uint8_t buf[1 << 17];
    size_t n = 0;
    uint8_t head[32];
    kl_group_member_t m;
    kl_group_candidate_t c;
#define PUT(p, len) n = put_bytes(buf, sizeof buf, n, (p), (len))
#define PUTV(v)                                                                              \
    do {                                                                                     \
        uint64_t v_ = (uint64_t)(v);                                                         \
        PUT(&v_, sizeof v_);                                                                 \
    } while (0)
    PUT(kl_group_address(g), strlen(kl_group_address(g)) + 1);
    PUTV(kl_group_next_index(g));
    kl_group_head(g, head);
    PUT(head, 32);
    PUTV(kl_group_closed(g));
    PUTV(kl_group_policy(g));
    PUTV(kl_group_retention_days(g));
    PUTV(kl_group_epoch(g));
    PUTV(kl_group_member_count(g));
    for (size_t i = 0; i < kl_group_member_count(g); i++) {
        FUZZ_CHECK(kl_group_member_at(g, i, &m) == 0);
        PUT(m.key, 32);
        PUT(m.address, strnlen(m.address, sizeof m.address));
        PUTV(m.role);
    }
    PUTV(kl_group_candidate_count(g));
    for (size_t i = 0; i < kl_group_candidate_count(g); i++) {
        FUZZ_CHECK(kl_group_candidate_at(g, i, &c) == 0);
        PUT(c.key, 32);
        PUT(c.address, strnlen(c.address, sizeof c.address));
        PUTV(c.approvals);
        PUTV(c.missing);
        for (int u = 0; u < FG_NUSERS; u++)
            PUTV(kl_group_has_approved(g, c.key, fx->u[u].pk));
    }
    for (int u = 0; u < FG_NUSERS; u++) {
        PUTV(kl_group_role_of(g, fx->u[u].pk));
        PUTV(kl_group_was_member(g, fx->u[u].pk, NULL));
        for (uint64_t i = 1; i <= kl_group_next_index(g) && i <= 8; i++)
            PUTV(kl_group_member_at_index(g, fx->u[u].pk, kl_group_next_index(g) + 1 - i, NULL));
    }
#undef PUT
#undef PUTV
    kl_sha256(buf, n, out);
}

static int code_of(kl_group_verr_t why)
{
    switch (why) {
    case KL_GV_MALFORMED:
    case KL_GV_WRONG_GROUP:
    case KL_GV_CHAIN: return KL_EPROTO;
    case KL_GV_SIGNATURE: return KL_ECRYPTO;
    case KL_GV_LIMIT: return KL_ELIMIT;
    case KL_GV_OK: return 0;
    default: return KL_ESTATE;
    }
}

/* The invariants of a valid state. */
static void check_invariants(const kl_group_t *g)
{
    size_t nm = kl_group_member_count(g), nc = kl_group_candidate_count(g), fac = 0;
    kl_group_member_t m, m2;
    kl_group_candidate_t c;

    FUZZ_CHECK(nm <= KL_GROUP_MAX_MEMBERS && nc <= KL_GROUP_MAX_CANDIDATES);
    FUZZ_CHECK(kl_group_closed(g) == (kl_group_next_index(g) > 0 && nm == 0));
    if (kl_group_closed(g))
        FUZZ_CHECK(nc == 0);
    for (size_t i = 0; i < nm; i++) {
        FUZZ_CHECK(kl_group_member_at(g, i, &m) == 0);
        FUZZ_CHECK(m.role == KL_ROLE_MEMBER || m.role == KL_ROLE_FACILITATOR);
        FUZZ_CHECK(kl_group_role_of(g, m.key) == m.role);
        fac += m.role == KL_ROLE_FACILITATOR;
        for (size_t j = i + 1; j < nm; j++) {
            FUZZ_CHECK(kl_group_member_at(g, j, &m2) == 0);
            FUZZ_CHECK(memcmp(m.key, m2.key, 32) != 0);
        }
    }
    if (nm > 0)
        FUZZ_CHECK(fac >= 1);
    /* The history agrees with the present: every member is one at the
     * current view, and the epoch there is the current one. */
    uint64_t next = kl_group_next_index(g), e = 0;
    for (size_t i = 0; i < nm && next > 0; i++) {
        FUZZ_CHECK(kl_group_member_at(g, i, &m) == 0);
        FUZZ_CHECK(kl_group_member_at_index(g, m.key, next, NULL) == 1);
        FUZZ_CHECK(kl_group_was_member(g, m.key, NULL));
    }
    if (next > 0) {
        FUZZ_CHECK(kl_group_epoch_at(g, next, &e) == 0);
        FUZZ_CHECK(e == kl_group_epoch(g));
    }
    /* An address appears at most once among members and candidates. */
    for (size_t i = 0; i < nm + nc; i++) {
        char a[256];
        if (i < nm) {
            FUZZ_CHECK(kl_group_member_at(g, i, &m) == 0);
            memcpy(a, m.address, sizeof a);
        } else {
            FUZZ_CHECK(kl_group_candidate_at(g, i - nm, &c) == 0);
            memcpy(a, c.address, sizeof a);
        }
        for (size_t j = i + 1; j < nm + nc; j++) {
            if (j < nm) {
                FUZZ_CHECK(kl_group_member_at(g, j, &m2) == 0);
                FUZZ_CHECK(strcmp(a, m2.address) != 0);
            } else {
                kl_group_candidate_t c2;
                FUZZ_CHECK(kl_group_candidate_at(g, j - nm, &c2) == 0);
                FUZZ_CHECK(strcmp(a, c2.address) != 0);
            }
        }
    }
    for (size_t i = 0; i < nc; i++) {
        FUZZ_CHECK(kl_group_candidate_at(g, i, &c) == 0);
        FUZZ_CHECK(kl_group_role_of(g, c.key) == KL_ROLE_NONE);
        size_t by = 0;
        int by_fac = 0;
        for (size_t j = 0; j < nm; j++) {
            FUZZ_CHECK(kl_group_member_at(g, j, &m) == 0);
            if (kl_group_has_approved(g, c.key, m.key)) {
                by++;
                by_fac |= m.role == KL_ROLE_FACILITATOR;
            }
        }
        FUZZ_CHECK(by == c.approvals && by <= nm);
        size_t want = 1;
        switch (kl_group_policy(g)) {
        case KL_POLICY_ALL: want = nm - by; break;
        case KL_POLICY_MAJORITY: want = nm / 2 + 1 > by ? nm / 2 + 1 - by : 0; break;
        case KL_POLICY_FACILITATORS: want = by_fac ? 0 : 1; break;
        }
        FUZZ_CHECK(c.missing == want);
        /* A satisfied candidate is admitted at that op: one still waiting
         * with nothing missing is only possible when the group is full. */
        FUZZ_CHECK(c.missing > 0 || nm == KL_GROUP_MAX_MEMBERS);
    }
}

/* Apply one op to g and check the oracles. */
static void apply_checked(kl_group_t *g, const fg_fx_t *fx, const uint8_t *op, size_t len)
{
    uint8_t before[32], after[32], want_head[32];
    uint64_t next = kl_group_next_index(g), epoch = kl_group_epoch(g);
    kl_group_event_t ev;
    kl_group_verr_t why = KL_GV_OK;

    kl_group_role_t role_before[FG_NUSERS];
    for (int u = 0; u < FG_NUSERS; u++)
        role_before[u] = kl_group_role_of(g, fx->u[u].pk);
    digest(g, fx, before);
    /* The relay's stateless pre-check: whatever it refuses, apply refuses
     * too, and what apply accepts it describes the same way. */
    kl_group_peek_t pk;
    int pr = kl_group_op_peek(op, len, &pk);
    int r = kl_group_apply(g, op, len, &ev, &why);
    digest(g, fx, after);
    if (pr != 0)
        FUZZ_CHECK(r != 0);
    if (r == 0)
        FUZZ_CHECK(pr == 0 && pk.index == ev.index && pk.kind == ev.kind &&
                   memcmp(pk.actor, ev.actor, 32) == 0 &&
                   strcmp(pk.actor_address, ev.actor_address) == 0 &&
                   strcmp(pk.group, kl_group_address(g)) == 0);
    if (r != 0) {
        FUZZ_CHECK(why != KL_GV_OK && r == code_of(why));
        FUZZ_CHECK(memcmp(before, after, 32) == 0);
        return;
    }
    FUZZ_CHECK(why == KL_GV_OK);
    FUZZ_CHECK(ev.index == next && kl_group_next_index(g) == next + 1);
    kl_sha256(op, len, want_head);
    kl_group_head(g, after);
    FUZZ_CHECK(memcmp(after, want_head, 32) == 0);
    FUZZ_CHECK(kl_group_epoch(g) == epoch + (ev.epoch_changed ? 1 : 0));
    /* The epoch moves exactly when a member goes. */
    int member_went = ev.kind == KL_GOP_LEAVE;
    /* A remove takes a member out, or (MAJORITY, by a non-facilitator) is
     * a vote that may leave it in. */
    for (int u = 0; u < FG_NUSERS && ev.kind == KL_GOP_REMOVE; u++)
        if (memcmp(fx->u[u].pk, ev.target, 32) == 0 && role_before[u] != KL_ROLE_NONE &&
            kl_group_role_of(g, ev.target) == KL_ROLE_NONE)
            member_went = 1;
    FUZZ_CHECK(ev.epoch_changed == member_went);
    if (member_went) {
        const uint8_t *gone = ev.kind == KL_GOP_LEAVE ? ev.actor : ev.target;
        FUZZ_CHECK(kl_group_role_of(g, gone) == KL_ROLE_NONE);
        /* Its messages up to this op stay its own; none after. */
        FUZZ_CHECK(kl_group_member_at_index(g, gone, ev.index, NULL) == 1);
        FUZZ_CHECK(kl_group_member_at_index(g, gone, ev.index + 1, NULL) == 0);
    }
    FUZZ_CHECK(ev.admitted >= 0 && ev.admitted <= KL_GROUP_MAX_CANDIDATES);
    if (ev.kind == KL_GOP_INVITE || ev.kind == KL_GOP_APPROVE || ev.kind == KL_GOP_REQUEST)
        FUZZ_CHECK(ev.admitted <= 1);
    if (ev.kind == KL_GOP_CREATE || ev.kind == KL_GOP_SET_RETENTION)
        FUZZ_CHECK(ev.admitted == 0);
    if (ev.admitted)
        FUZZ_CHECK(memcmp(ev.admitted_key, ev.admitted_keys[0], 32) == 0);
    for (int k = 0; k < ev.admitted; k++) {
        FUZZ_CHECK(kl_group_role_of(g, ev.admitted_keys[k]) == KL_ROLE_MEMBER);
        for (size_t c = 0; c < kl_group_candidate_count(g); c++) {
            kl_group_candidate_t cd;
            FUZZ_CHECK(kl_group_candidate_at(g, c, &cd) == 0);
            FUZZ_CHECK(memcmp(cd.key, ev.admitted_keys[k], 32) != 0);
        }
    }
    if (ev.kind == KL_GOP_CREATE)
        FUZZ_CHECK(kl_group_role_of(g, ev.actor) == KL_ROLE_FACILITATOR);
    check_invariants(g);
    digest(g, fx, before);
    /* A replay is refused. */
    r = kl_group_apply(g, op, len, NULL, &why);
    FUZZ_CHECK(r == KL_EPROTO || r == KL_ESTATE);
    FUZZ_CHECK(why == KL_GV_CHAIN || why == KL_GV_CLOSED);
    digest(g, fx, after);
    FUZZ_CHECK(memcmp(before, after, 32) == 0);
}

static void run_log(fuzz_in_t *in, kl_group_t *g, const fg_fx_t *fx)
{
    while (in->left > 0) {
        size_t want = fuzz_u16(in), n = 0;
        const uint8_t *p = fuzz_bytes(in, want, &n);
        /* A private copy: the validator must not depend on what follows. */
        uint8_t *op = malloc(n + 1);
        FUZZ_CHECK(op != NULL);
        memcpy(op, p, n);
        apply_checked(g, fx, op, n);
        free(op);
    }
}

static void run_program(fuzz_in_t *in, kl_group_t *g, const fg_fx_t *fx)
{
    for (int step = 0; step < MAX_STEPS && in->left >= 6; step++) {
        uint8_t b[4];
        uint8_t *op = NULL;
        size_t len = 0;
        for (int i = 0; i < 4; i++)
            b[i] = fuzz_u8(in);
        uint8_t f1 = fuzz_u8(in), f2 = fuzz_u8(in);
        if (!fg_step_op(g, fx, b, &op, &len))
            continue;
        if (f1 & 0x80) {
            size_t bit = ((size_t)(f1 & 0x7f) << 8 | f2) % (len * 8);
            op[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        apply_checked(g, fx, op, len);
        free(op);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    fuzz_init();
    const fg_fx_t *fx = fg_get();
    fuzz_rng_reset(size);
    uint8_t mode = fuzz_u8(&in) % 4;
    int with_prefix = mode == 1 || mode == 2;
    kl_group_t *g = fg_state(fx, with_prefix);
    if (mode < 2)
        run_log(&in, g, fx);
    else
        run_program(&in, g, fx);
    check_invariants(g);
    kl_group_free(g);
    return 0;
}
