/* ERFA group governance: the validator of the signed, hash-chained op log
 * (proto/group.proto). include/kollega/group.h states every rule; this file
 * implements them once for the relay and for every client.
 *
 * Decoding (proto/group_decode.c) is strict. A SignedOp over KL_GROUP_MAX_OP bytes is refused
 * before protobuf-c sees it, unpacking runs on a capped allocator, and both
 * the SignedOp and the Op inside it must be the canonical (protobuf-c,
 * deterministic) encoding of what they decode to: re-packing must give the
 * exact input bytes back. The SignedOp wrapper is not signed, so without
 * that check a relay could re-encode it (reorder fields, add unknown ones)
 * and hand different clients different bytes, and so different chain
 * hashes, for "the same" op; with it, the bytes of a valid op are unique
 * and every client computes the same head. No message may carry unknown
 * fields either, so no field the validator cannot see is ever signed into
 * the log (protobuf-c would keep and re-pack them).
 *
 * Addresses are stored in the 256-byte fields of the public structs, so
 * an address longer than 255 characters is refused (a valid user address
 * can reach 286 characters).
 *
 * Two readings of group.h made here: removing a candidate (refusing a
 * request) does not change the epoch, since no member goes; and naming a
 * successor in leave promotes it, so only a facilitator may name one. A
 * candidate becomes a member at the op where its policy is first
 * satisfied, whatever that op is: an approval, but also a leave or removal
 * (fewer members to consent), a promotion (FACILITATORS) or a policy
 * change. Ops of the second kind may admit several candidates at once; they
 * are admitted in order of arrival while the member bound allows.
 *
 * Application is validate-then-mutate: check_rules() reads the state only,
 * storage for a new member or candidate is reserved before anything
 * changes, and commit() then cannot fail. A refused op therefore leaves the
 * state exactly as it was.
 *
 * Approvals are a bitmap per candidate indexed by the approver's member
 * slot (0..KL_GROUP_MAX_MEMBERS-1, unique among current members). When a
 * member leaves or is removed its bit is cleared in every candidate, so
 * only approvals by current members count, and a later member reusing the
 * slot does not inherit them. */
#include <stdlib.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "group_int.h"

#define NO_SLOT (-1)

_Static_assert(KL_GROUP_MAX_MEMBERS <= 256, "member slots are bits of a 32-byte bitmap");

typedef struct member {
    uint8_t key[32];
    char address[ADDR_CAP];
    kl_group_role_t role;
    uint64_t since;          /* index of the op that made it a member */
    int slot;
    uint8_t votes[KL_GROUP_MAX_MEMBERS / 8]; /* removal votes against it, bit per member slot */
} member_t;

typedef struct cand {
    uint8_t key[32];
    char address[ADDR_CAP];
    uint8_t approved[KL_GROUP_MAX_MEMBERS / 8]; /* bit per member slot */
} cand_t;

/* A member who left or was removed: a member in the states after ops
 * since .. left - 1, that is for views (next indices) since + 1 .. left. */
typedef struct departed {
    uint8_t key[32];
    char address[ADDR_CAP];
    kl_group_role_t role;
    uint64_t since, left;
    uint64_t epoch_after;    /* the group's epoch after op `left` */
} departed_t;

struct kl_group {
    char *address;
    uint64_t next;
    uint8_t head[32];
    int closed;
    kl_group_policy_t policy;
    uint32_t retention;
    uint64_t epoch;
    member_t *m; /* in order of admission */
    size_t nm, capm;
    cand_t *c;   /* in order of arrival */
    size_t nc, capc;
    /* The last KL_GROUP_MAX_DEPARTED departures, oldest first (allocated
     * at the first one); of the newest one dropped beyond that bound only
     * its op index and the epoch after it are kept. */
    departed_t *d;
    size_t nd;
    int dropped;
    uint64_t dropped_left, dropped_epoch;
};

/* What check_rules() decided, for commit(). */
typedef struct plan {
    size_t actor_m;  /* actor's member index (all but create/request) */
    size_t target_m; /* target member index (remove, set_role, leave successor) */
    size_t cand;     /* candidate index (approve, remove of a candidate) */
    int target_is_cand;
    int admit;       /* invite/request/approve: the candidate becomes a member */
    int vote;        /* remove by a non-facilitator (MAJORITY): a removal vote */
    int vote_removes; /* ... that removes the target */
} plan_t;

static int err_of(kl_group_verr_t why)
{
    switch (why) {
    case KL_GV_OK: return 0;
    case KL_GV_MALFORMED:
    case KL_GV_WRONG_GROUP:
    case KL_GV_CHAIN: return KL_EPROTO;
    case KL_GV_SIGNATURE: return KL_ECRYPTO;
    case KL_GV_LIMIT: return KL_ELIMIT;
    default: return KL_ESTATE;
    }
}

static size_t find_member(const kl_group_t *g, const uint8_t key[32])
{
    for (size_t i = 0; i < g->nm; i++)
        if (memcmp(g->m[i].key, key, 32) == 0)
            return i;
    return SIZE_MAX;
}

static size_t find_cand(const kl_group_t *g, const uint8_t key[32])
{
    for (size_t i = 0; i < g->nc; i++)
        if (memcmp(g->c[i].key, key, 32) == 0)
            return i;
    return SIZE_MAX;
}

/* 1 if address is a member's or a candidate's (group.h: at most once). */
static int address_taken(const kl_group_t *g, const char *address)
{
    for (size_t i = 0; i < g->nm; i++)
        if (strcmp(g->m[i].address, address) == 0)
            return 1;
    for (size_t i = 0; i < g->nc; i++)
        if (strcmp(g->c[i].address, address) == 0)
            return 1;
    return 0;
}

static int bit_get(const uint8_t *bits, int slot)
{
    return (bits[slot / 8] >> (slot % 8)) & 1;
}

static void bit_set(uint8_t *bits, int slot)
{
    bits[slot / 8] |= (uint8_t)(1u << (slot % 8));
}

static void bit_clear(uint8_t *bits, int slot)
{
    bits[slot / 8] &= (uint8_t)~(1u << (slot % 8));
}

static size_t facilitators(const kl_group_t *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nm; i++)
        n += g->m[i].role == KL_ROLE_FACILITATOR;
    return n;
}

/* Removal votes against member t by current members other than t, and
 * how many more are needed (votes * 2 > members - 1), counting slot
 * `extra` as voting too (NO_SLOT for none). */
static size_t votes_against(const kl_group_t *g, size_t t, int extra, size_t *missing)
{
    size_t n = 0, others = g->nm - 1, need = others / 2 + 1;
    for (size_t i = 0; i < g->nm; i++)
        if (i != t && (g->m[i].slot == extra || bit_get(g->m[t].votes, g->m[i].slot)))
            n++;
    if (missing != NULL)
        *missing = need > n ? need - n : 0;
    return n;
}

/* Approvals of candidate c by current members, counting member slot
 * `extra` as approving too (NO_SLOT for none); *by_fac gets whether a
 * facilitator is among them. Only current members' bits are ever set, but
 * counting through the member list keeps that an invariant, not a trust. */
static size_t approvals(const kl_group_t *g, const cand_t *c, int extra, int *by_fac)
{
    size_t n = 0;
    *by_fac = 0;
    for (size_t i = 0; i < g->nm; i++) {
        if (g->m[i].slot == extra || bit_get(c->approved, g->m[i].slot)) {
            n++;
            if (g->m[i].role == KL_ROLE_FACILITATOR)
                *by_fac = 1;
        }
    }
    return n;
}

/* Approvals still needed under the policy (0 = satisfied). */
static size_t missing(const kl_group_t *g, const cand_t *c, int extra)
{
    int by_fac;
    size_t n = approvals(g, c, extra, &by_fac);
    switch (g->policy) {
    case KL_POLICY_ALL: return g->nm > n ? g->nm - n : 0;
    case KL_POLICY_MAJORITY: return g->nm / 2 + 1 > n ? g->nm / 2 + 1 - n : 0;
    case KL_POLICY_FACILITATORS: return by_fac ? 0 : 1;
    }
    return 1;
}

/* Whether a new candidate with the actor's approval (invite) or none
 * (request) would be admitted at once. */
static int admits_new(const kl_group_t *g, int approver_slot)
{
    cand_t c;
    memset(c.approved, 0, sizeof c.approved);
    return missing(g, &c, approver_slot) == 0;
}

/* remove{member} by a member who is not a facilitator: a removal vote,
 * allowed under MAJORITY only (group.h). */
static kl_group_verr_t check_vote(const kl_group_t *g, const op_t *o, plan_t *pl)
{
    size_t missing;
    if (g->policy != KL_POLICY_MAJORITY)
        return KL_GV_NOT_FACILITATOR;
    pl->target_m = find_member(g, o->target);
    if (pl->target_m == SIZE_MAX)
        return find_cand(g, o->target) != SIZE_MAX ? KL_GV_NOT_FACILITATOR : KL_GV_NOT_MEMBER;
    if (pl->target_m == pl->actor_m)
        return KL_GV_MALFORMED; /* removing oneself is a leave */
    const member_t *t = &g->m[pl->target_m];
    if (bit_get(t->votes, g->m[pl->actor_m].slot))
        return KL_GV_ALREADY_APPROVED;
    if (t->role == KL_ROLE_FACILITATOR && facilitators(g) < 2)
        return KL_GV_LAST_FACILITATOR;
    pl->vote = 1;
    votes_against(g, pl->target_m, g->m[pl->actor_m].slot, &missing);
    pl->vote_removes = missing == 0;
    return KL_GV_OK;
}

/* Whether the user with key and address may become a candidate: neither a
 * member nor a candidate yet, the address not held by another key, and
 * room for one more. */
static kl_group_verr_t newcomer_ok(const kl_group_t *g, const uint8_t key[32],
                                   const char *address)
{
    if (find_member(g, key) != SIZE_MAX)
        return KL_GV_ALREADY_MEMBER;
    if (find_cand(g, key) != SIZE_MAX)
        return KL_GV_ALREADY_CANDIDATE;
    if (address_taken(g, address))
        return KL_GV_ADDRESS_TAKEN;
    if (g->nc >= KL_GROUP_MAX_CANDIDATES || g->nm >= KL_GROUP_MAX_MEMBERS)
        return KL_GV_LIMIT;
    return KL_GV_OK;
}

/* The rules of group.h for a decoded, authenticated op. Reads g only. */
static kl_group_verr_t check_rules(const kl_group_t *g, const op_t *o, plan_t *pl)
{
    memset(pl, 0, sizeof *pl);
    if (o->kind == KL_GOP_CREATE)
        return KL_GV_OK; /* index 0 on an empty state: checked by the chain */
    pl->actor_m = find_member(g, o->actor);
    if (o->kind == KL_GOP_REQUEST) {
        kl_group_verr_t why = newcomer_ok(g, o->actor, o->actor_address);
        if (why == KL_GV_OK)
            pl->admit = admits_new(g, NO_SLOT);
        return why;
    }
    if (pl->actor_m == SIZE_MAX)
        return KL_GV_NOT_MEMBER;
    const member_t *actor = &g->m[pl->actor_m];
    int fac = actor->role == KL_ROLE_FACILITATOR;

    switch (o->kind) {
    case KL_GOP_INVITE: {
        kl_group_verr_t why = newcomer_ok(g, o->target, o->target_address);
        if (why == KL_GV_OK)
            pl->admit = admits_new(g, actor->slot);
        return why;
    }
    case KL_GOP_APPROVE:
        pl->cand = find_cand(g, o->target);
        if (pl->cand == SIZE_MAX)
            return KL_GV_NOT_CANDIDATE;
        if (bit_get(g->c[pl->cand].approved, actor->slot))
            return KL_GV_ALREADY_APPROVED;
        pl->admit = missing(g, &g->c[pl->cand], actor->slot) == 0;
        if (pl->admit && g->nm >= KL_GROUP_MAX_MEMBERS)
            return KL_GV_LIMIT;
        return KL_GV_OK;
    case KL_GOP_REMOVE:
        if (!fac)
            return check_vote(g, o, pl);
        pl->target_m = find_member(g, o->target);
        if (pl->target_m == SIZE_MAX) {
            pl->cand = find_cand(g, o->target);
            if (pl->cand == SIZE_MAX)
                return KL_GV_NOT_MEMBER;
            pl->target_is_cand = 1;
            return KL_GV_OK;
        }
        if (pl->target_m == pl->actor_m)
            return KL_GV_MALFORMED; /* removing oneself is a leave */
        /* The actor is another facilitator, so this cannot trigger; kept
         * so the invariant does not rest on that argument alone. */
        if (g->m[pl->target_m].role == KL_ROLE_FACILITATOR && facilitators(g) < 2)
            return KL_GV_LAST_FACILITATOR;
        return KL_GV_OK;
    case KL_GOP_LEAVE:
        pl->target_m = SIZE_MAX;
        if (o->has_target) {
            /* Naming a successor promotes it: only a facilitator may. */
            if (!fac)
                return KL_GV_NOT_FACILITATOR;
            pl->target_m = find_member(g, o->target);
            if (pl->target_m == SIZE_MAX || pl->target_m == pl->actor_m)
                return KL_GV_SUCCESSOR;
        } else if (fac && facilitators(g) == 1 && g->nm > 1) {
            return KL_GV_SUCCESSOR;
        }
        return KL_GV_OK;
    case KL_GOP_SET_ROLE:
        if (!fac)
            return KL_GV_NOT_FACILITATOR;
        pl->target_m = find_member(g, o->target);
        if (pl->target_m == SIZE_MAX)
            return KL_GV_NOT_MEMBER;
        if (o->role != KL_ROLE_FACILITATOR && g->m[pl->target_m].role == KL_ROLE_FACILITATOR &&
            facilitators(g) < 2)
            return KL_GV_LAST_FACILITATOR;
        return KL_GV_OK;
    case KL_GOP_SET_POLICY:
    case KL_GOP_SET_RETENTION:
        return fac ? KL_GV_OK : KL_GV_NOT_FACILITATOR;
    default:
        return KL_GV_MALFORMED;
    }
}

/* Grow an array to hold `want` elements (doubling from 8, never beyond
 * max). Changes only capacity, so it may run before a commit and fail. */
static int reserve(void **arr, size_t *cap, size_t want, size_t size, size_t max)
{
    size_t ncap;
    void *p;

    if (want <= *cap)
        return 0;
    if (want > max)
        return KL_ELIMIT;
    ncap = *cap ? *cap : 8;
    while (ncap < want)
        ncap *= 2;
    if (ncap > max)
        ncap = max;
    p = realloc(*arr, ncap * size);
    if (p == NULL)
        return KL_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Lowest slot no current member holds (there is one: nm < max). */
static int free_slot(const kl_group_t *g)
{
    uint8_t used[KL_GROUP_MAX_MEMBERS] = {0};
    for (size_t i = 0; i < g->nm; i++)
        used[g->m[i].slot] = 1;
    for (int s = 0; s < KL_GROUP_MAX_MEMBERS; s++)
        if (!used[s])
            return s;
    return NO_SLOT;
}

static void add_member(kl_group_t *g, const uint8_t key[32], const char *address,
                       kl_group_role_t role, uint64_t index)
{
    member_t *m = &g->m[g->nm];
    memset(m, 0, sizeof *m);
    memcpy(m->key, key, 32);
    strcpy(m->address, address); /* both ADDR_CAP */
    m->role = role;
    m->since = index;
    m->slot = free_slot(g);
    g->nm++;
}

/* Record that member i goes at op `left` (before drop_member and the
 * epoch change; g->d was allocated by the caller of commit). */
static void depart(kl_group_t *g, size_t i, uint64_t left)
{
    if (g->nd == KL_GROUP_MAX_DEPARTED) {
        g->dropped = 1;
        g->dropped_left = g->d[0].left;
        g->dropped_epoch = g->d[0].epoch_after;
        memmove(g->d, g->d + 1, (g->nd - 1) * sizeof *g->d);
        g->nd--;
    }
    departed_t *d = &g->d[g->nd++];
    memcpy(d->key, g->m[i].key, 32);
    memcpy(d->address, g->m[i].address, ADDR_CAP);
    d->role = g->m[i].role;
    d->since = g->m[i].since;
    d->left = left;
    d->epoch_after = g->epoch + 1;
}

static void drop_member(kl_group_t *g, size_t i)
{
    for (size_t k = 0; k < g->nc; k++)
        bit_clear(g->c[k].approved, g->m[i].slot);
    for (size_t k = 0; k < g->nm; k++)
        bit_clear(g->m[k].votes, g->m[i].slot);
    memmove(g->m + i, g->m + i + 1, (g->nm - i - 1) * sizeof *g->m);
    g->nm--;
}

static void drop_cand(kl_group_t *g, size_t i)
{
    memmove(g->c + i, g->c + i + 1, (g->nc - i - 1) * sizeof *g->c);
    g->nc--;
}

static void admitted(kl_group_event_t *ev, const uint8_t key[32])
{
    if (ev->admitted == 0)
        memcpy(ev->admitted_key, key, 32);
    memcpy(ev->admitted_keys[ev->admitted], key, 32);
    ev->admitted++;
}

/* Admit every candidate whose approvals by the current members now
 * satisfy the policy (after an op that changed the members, their roles or
 * the policy). All are judged against the members as they are after the op
 * and before any of these admissions, so one newcomer does not stand in the
 * way of another admitted by the same op; they join in order of arrival
 * while the member bound allows. Capacity was reserved by the caller. */
static void admit_satisfied(kl_group_t *g, kl_group_event_t *ev)
{
    uint8_t ok[KL_GROUP_MAX_CANDIDATES] = {0};
    size_t k = 0, total = g->nc;

    if (g->closed)
        return;
    for (size_t i = 0; i < total; i++)
        ok[i] = missing(g, &g->c[i], NO_SLOT) == 0;
    /* i walks the candidates as they were, k the same one in the shrinking
     * array. */
    for (size_t i = 0; i < total; i++) {
        if (!ok[i] || g->nm >= KL_GROUP_MAX_MEMBERS) {
            k++;
            continue;
        }
        add_member(g, g->c[k].key, g->c[k].address, KL_ROLE_MEMBER, ev->index);
        int slot = g->m[g->nm - 1].slot;
        for (size_t j = 0; j < g->nc; j++)
            bit_clear(g->c[j].approved, slot);
        admitted(ev, g->c[k].key);
        drop_cand(g, k); /* the next candidate moves to index k */
    }
}

/* Apply a checked op. Capacity for a new member and candidate is reserved
 * by the caller, so nothing here can fail. */
static void commit(kl_group_t *g, const op_t *o, const plan_t *pl, kl_group_event_t *ev)
{
    size_t ci = SIZE_MAX;
    int slot;

    switch (o->kind) {
    case KL_GOP_CREATE:
        add_member(g, o->actor, o->actor_address, KL_ROLE_FACILITATOR, o->index);
        g->policy = o->policy;
        g->retention = o->days;
        break;
    case KL_GOP_INVITE:
    case KL_GOP_REQUEST: {
        cand_t *c = &g->c[g->nc];
        memset(c, 0, sizeof *c);
        if (o->kind == KL_GOP_INVITE) {
            memcpy(c->key, o->target, 32);
            strcpy(c->address, o->target_address);
            bit_set(c->approved, g->m[pl->actor_m].slot);
        } else {
            memcpy(c->key, o->actor, 32);
            strcpy(c->address, o->actor_address);
        }
        ci = g->nc++;
        break;
    }
    case KL_GOP_APPROVE:
        ci = pl->cand;
        bit_set(g->c[ci].approved, g->m[pl->actor_m].slot);
        memcpy(ev->target_address, g->c[ci].address, ADDR_CAP);
        break;
    case KL_GOP_REMOVE:
        if (pl->target_is_cand) {
            memcpy(ev->target_address, g->c[pl->cand].address, ADDR_CAP);
            drop_cand(g, pl->cand);
            break;
        }
        memcpy(ev->target_address, g->m[pl->target_m].address, ADDR_CAP);
        if (pl->vote && !pl->vote_removes) {
            bit_set(g->m[pl->target_m].votes, g->m[pl->actor_m].slot);
            break;
        }
        depart(g, pl->target_m, o->index);
        drop_member(g, pl->target_m);
        g->epoch++;
        ev->epoch_changed = 1;
        break;
    case KL_GOP_LEAVE:
        if (pl->target_m != SIZE_MAX) {
            g->m[pl->target_m].role = KL_ROLE_FACILITATOR;
            memcpy(ev->target_address, g->m[pl->target_m].address, ADDR_CAP);
        }
        depart(g, pl->actor_m, o->index);
        drop_member(g, pl->actor_m);
        g->epoch++;
        ev->epoch_changed = 1;
        if (g->nm == 0) {
            g->closed = 1;
            g->nc = 0; /* nobody is left to admit them */
        }
        break;
    case KL_GOP_SET_ROLE:
        g->m[pl->target_m].role = o->role;
        memcpy(ev->target_address, g->m[pl->target_m].address, ADDR_CAP);
        break;
    case KL_GOP_SET_POLICY:
        g->policy = o->policy;
        break;
    case KL_GOP_SET_RETENTION:
        g->retention = o->days;
        break;
    }
    if (pl->admit && ci != SIZE_MAX) {
        add_member(g, g->c[ci].key, g->c[ci].address, KL_ROLE_MEMBER, o->index);
        slot = g->m[g->nm - 1].slot;
        /* A fresh slot carries no approvals: they were cleared when its
         * previous holder left. */
        for (size_t k = 0; k < g->nc; k++)
            bit_clear(g->c[k].approved, slot);
        admitted(ev, g->c[ci].key);
        drop_cand(g, ci);
    }
    if (o->kind == KL_GOP_REMOVE || o->kind == KL_GOP_LEAVE || o->kind == KL_GOP_SET_ROLE ||
        o->kind == KL_GOP_SET_POLICY)
        admit_satisfied(g, ev);
}

static int apply(kl_group_t *g, const uint8_t *signed_op, size_t len, kl_group_event_t *ev,
                 kl_group_verr_t *why, int check_sig);

/* Validate the next SignedOp and apply it (contract in group.h). */
int kl_group_apply(kl_group_t *g, const uint8_t *signed_op, size_t len, kl_group_event_t *ev,
                   kl_group_verr_t *why)
{
    return apply(g, signed_op, len, ev, why, 1);
}

/* The same without the signature check, for ops the caller validated in
 * full before it stored them (contract in group.h). */
int kl_group_apply_stored(kl_group_t *g, const uint8_t *signed_op, size_t len,
                          kl_group_event_t *ev, kl_group_verr_t *why)
{
    return apply(g, signed_op, len, ev, why, 0);
}

static int apply(kl_group_t *g, const uint8_t *signed_op, size_t len, kl_group_event_t *ev,
                 kl_group_verr_t *why, int check_sig)
{
    kl_group_event_t e;
    kl_group_verr_t w = KL_GV_MALFORMED;
    op_t o;
    plan_t pl;
    int r;

    if (ev != NULL)
        memset(ev, 0, sizeof *ev);
    if (why != NULL)
        *why = KL_GV_MALFORMED;
    if (g == NULL)
        return KL_EINVAL;
    kl_gop_ctx_t ctx = {g->address, g->closed, g->next, g->head};
    w = kl_gop_decode(&ctx, signed_op, len, &o, check_sig);
    if (w == KL_GV_OK)
        w = check_rules(g, &o, &pl);
    if (w != KL_GV_OK)
        goto out;
    /* Room for whatever this op adds, before anything changes. The rules
     * have checked the bounds, so only an allocation can fail here; that is
     * no verdict on the op (*why stays KL_GV_OK) and it may be retried. */
    r = 0;
    size_t want_m = g->nm + (o.kind == KL_GOP_CREATE || pl.admit ? 1 : 0);
    if (o.kind == KL_GOP_REMOVE || o.kind == KL_GOP_LEAVE || o.kind == KL_GOP_SET_ROLE ||
        o.kind == KL_GOP_SET_POLICY)
        want_m = g->nm + g->nc; /* every candidate might be admitted */
    if (want_m > KL_GROUP_MAX_MEMBERS)
        want_m = KL_GROUP_MAX_MEMBERS;
    if (want_m > g->nm)
        r = reserve((void **)&g->m, &g->capm, want_m, sizeof *g->m, KL_GROUP_MAX_MEMBERS);
    if (r == 0 && (o.kind == KL_GOP_INVITE || o.kind == KL_GOP_REQUEST))
        r = reserve((void **)&g->c, &g->capc, g->nc + 1, sizeof *g->c, KL_GROUP_MAX_CANDIDATES);
    /* Every remove or leave may record a departure (a vote records none). */
    if (r == 0 && (o.kind == KL_GOP_REMOVE || o.kind == KL_GOP_LEAVE) && g->d == NULL &&
        (g->d = calloc(KL_GROUP_MAX_DEPARTED, sizeof *g->d)) == NULL)
        r = KL_ENOMEM;
    if (r != 0) {
        if (why != NULL)
            *why = KL_GV_OK;
        return r;
    }
    memset(&e, 0, sizeof e);
    e.kind = o.kind;
    e.index = o.index;
    memcpy(e.actor, o.actor, 32);
    memcpy(e.actor_address, o.actor_address, ADDR_CAP);
    if (o.has_target) {
        memcpy(e.target, o.target, 32);
        memcpy(e.target_address, o.target_address, ADDR_CAP);
    } else if (o.kind == KL_GOP_REQUEST) {
        memcpy(e.target, o.actor, 32);
        memcpy(e.target_address, o.actor_address, ADDR_CAP);
    }
    commit(g, &o, &pl, &e);
    kl_sha256(signed_op, len, g->head);
    g->next++;
    if (ev != NULL)
        *ev = e;
out:
    if (why != NULL)
        *why = w;
    return err_of(w);
}

/* New empty state for the group at `address` (a group address "#name@relay"
 * of at most 255 characters). KL_EINVAL, KL_ENOMEM. */
int kl_group_new(kl_group_t **out, const char *address)
{
    kl_group_t *g;

    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (!kl_gop_addr_ok(address, 1))
        return KL_EINVAL;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return KL_ENOMEM;
    g->address = strdup(address);
    if (g->address == NULL) {
        free(g);
        return KL_ENOMEM;
    }
    *out = g;
    return 0;
}

void kl_group_free(kl_group_t *g)
{
    if (g == NULL)
        return;
    free(g->address);
    free(g->m);
    free(g->c);
    free(g->d);
    free(g);
}

const char *kl_group_address(const kl_group_t *g)
{
    return g->address;
}

uint64_t kl_group_next_index(const kl_group_t *g)
{
    return g->next;
}

void kl_group_head(const kl_group_t *g, uint8_t hash[32])
{
    memcpy(hash, g->head, 32);
}

int kl_group_closed(const kl_group_t *g)
{
    return g->closed;
}

/* 0 before create. */
kl_group_policy_t kl_group_policy(const kl_group_t *g)
{
    return g->policy;
}

uint32_t kl_group_retention_days(const kl_group_t *g)
{
    return g->retention;
}

uint64_t kl_group_epoch(const kl_group_t *g)
{
    return g->epoch;
}

kl_group_role_t kl_group_role_of(const kl_group_t *g, const uint8_t key[32])
{
    size_t i = find_member(g, key);
    return i == SIZE_MAX ? KL_ROLE_NONE : g->m[i].role;
}

/* Copy one member (current or departed) into *out, when out is not NULL. */
static void fill_member(kl_group_member_t *out, const uint8_t key[32], const char *address,
                        kl_group_role_t role)
{
    if (out == NULL)
        return;
    memcpy(out->key, key, 32);
    memcpy(out->address, address, ADDR_CAP);
    out->role = role;
}

size_t kl_group_member_count(const kl_group_t *g)
{
    return g->nm;
}

/* Members in order of admission. KL_ENOTFOUND past the end. */
int kl_group_member_at(const kl_group_t *g, size_t i, kl_group_member_t *out)
{
    if (i >= g->nm || out == NULL)
        return KL_ENOTFOUND;
    fill_member(out, g->m[i].key, g->m[i].address, g->m[i].role);
    return 0;
}

size_t kl_group_candidate_count(const kl_group_t *g)
{
    return g->nc;
}

/* Candidates in order of arrival. KL_ENOTFOUND past the end. */
int kl_group_candidate_at(const kl_group_t *g, size_t i, kl_group_candidate_t *out)
{
    int by_fac;
    if (i >= g->nc || out == NULL)
        return KL_ENOTFOUND;
    memcpy(out->key, g->c[i].key, 32);
    memcpy(out->address, g->c[i].address, ADDR_CAP);
    out->approvals = approvals(g, &g->c[i], NO_SLOT, &by_fac);
    out->missing = missing(g, &g->c[i], NO_SLOT);
    return 0;
}

size_t kl_group_removal_votes(const kl_group_t *g, const uint8_t target[32], size_t *missing)
{
    size_t t = find_member(g, target);
    if (t == SIZE_MAX) {
        if (missing != NULL)
            *missing = 0;
        return 0;
    }
    return votes_against(g, t, NO_SLOT, missing);
}

int kl_group_has_approved(const kl_group_t *g, const uint8_t candidate[32],
                          const uint8_t approver[32])
{
    size_t c = find_cand(g, candidate), m = find_member(g, approver);
    if (c == SIZE_MAX || m == SIZE_MAX)
        return 0;
    return bit_get(g->c[c].approved, g->m[m].slot);
}

/* Membership at a view (group.h): a current member admitted at op `since`
 * counts from view since + 1; a departed one for views since + 1 .. left.
 * A key may have several spells (it left and came back). */
int kl_group_member_at_index(const kl_group_t *g, const uint8_t key[32], uint64_t index,
                             kl_group_member_t *out)
{
    if (g == NULL || key == NULL || index == 0 || index > g->next)
        return 0;
    size_t i = find_member(g, key);
    if (i != SIZE_MAX && g->m[i].since < index) {
        fill_member(out, key, g->m[i].address, g->m[i].role);
        return 1;
    }
    for (size_t k = g->nd; k > 0; k--) {
        const departed_t *d = &g->d[k - 1];
        if (memcmp(d->key, key, 32) == 0 && d->since < index && index <= d->left) {
            fill_member(out, key, d->address, d->role);
            return 1;
        }
    }
    return 0;
}

int kl_group_was_member(const kl_group_t *g, const uint8_t key[32], kl_group_member_t *out)
{
    size_t i = find_member(g, key);
    if (i != SIZE_MAX) {
        fill_member(out, key, g->m[i].address, g->m[i].role);
        return 1;
    }
    for (size_t k = g->nd; k > 0; k--)
        if (memcmp(g->d[k - 1].key, key, 32) == 0) {
            fill_member(out, key, g->d[k - 1].address, g->d[k - 1].role);
            return 1;
        }
    return 0;
}

int kl_group_epoch_at(const kl_group_t *g, uint64_t index, uint64_t *epoch)
{
    if (g == NULL || epoch == NULL || index == 0 || index > g->next)
        return KL_ENOTFOUND;
    /* The epoch moves only at departures: the last one before this view. */
    for (size_t k = g->nd; k > 0; k--)
        if (g->d[k - 1].left < index) {
            *epoch = g->d[k - 1].epoch_after;
            return 0;
        }
    if (!g->dropped) {
        *epoch = 0;
        return 0;
    }
    if (g->dropped_left < index) {
        *epoch = g->dropped_epoch;
        return 0;
    }
    return KL_ENOTFOUND;
}
