/* ERFA group governance: validation and construction of the hash-chained,
 * signed operation log of proto/group.proto. One implementation, run by the
 * relay (which refuses invalid operations) and by every client (which
 * ignores any invalid operation a relay might deliver).
 *
 * Rules (the whole contract; tests check each):
 *  - Every op: SignedOp decodes; Op.group equals the group's address;
 *    index == next index; prev == SHA-256 of the previous SignedOp bytes
 *    (empty at index 0); actor is 32 bytes; actor_address is a valid user
 *    address; the signature verifies with actor over
 *    "kollega-group-op-v1" || op; the body is set. Otherwise the op is
 *    rejected and the state is unchanged.
 *  - create: only at index 0 (and index 0 must be create). The actor becomes
 *    the first member, a facilitator. Policy must be ALL, MAJORITY or
 *    FACILITATORS.
 *  - invite{candidate}: the actor is a member; the candidate is neither a
 *    member nor already a candidate. The candidate is recorded with the
 *    actor's approval.
 *  - request: the actor is neither member nor candidate; it becomes a
 *    candidate with no approvals.
 *  - An address appears at most once among members and candidates: an
 *    invite whose candidate address, or a request whose actor_address, is
 *    already a member's or a candidate's (under another key: the same key
 *    is ALREADY_MEMBER / ALREADY_CANDIDATE) is refused (ADDRESS_TAKEN). So
 *    nobody can attach someone else's address to their own key while that
 *    person is in the group, and "approve ADDRESS" names one candidate.
 *  - approve{candidate}: the actor is a member, the candidate exists, and
 *    the actor has not approved it yet.
 *  - A candidate becomes a member (role MEMBER) at the op where its
 *    approvals by CURRENT members first satisfy the policy (ALL: every
 *    member approved; MAJORITY: approvals * 2 > members; FACILITATORS: at
 *    least one facilitator approved): an invite, request or approve for that
 *    candidate, or a remove, leave, set_role or set_policy after which the
 *    policy holds (these may admit several candidates, in arrival order).
 *  - remove{member}: the actor is a facilitator, the target a member other
 *    than the actor (use leave), and not the last facilitator. Removing a
 *    candidate (refusing a request) is allowed to any facilitator too.
 *    Under policy MAJORITY a member who is not a facilitator may also
 *    remove a member: its remove is a vote (once per target, else
 *    ALREADY_APPROVED; never against the last facilitator), and the target
 *    is removed at the vote that makes the votes of current members other
 *    than the target more than half of them (votes * 2 > members - 1).
 *    Votes of members who leave stop counting; a vote that does not yet
 *    remove changes nothing else (no epoch change).
 *  - leave{successor}: the actor is a member. If it is the last facilitator
 *    and other members remain, successor must name one of them, who becomes
 *    facilitator. If the last member leaves, the group is closed (no
 *    further op is valid).
 *  - set_role{member, role}: the actor is a facilitator; the target is a
 *    member; demoting the last facilitator is refused.
 *  - set_policy, set_retention: the actor is a facilitator.
 *  - Approvals given by a member who later leaves or is removed no longer
 *    count. Candidate and member counts are bounded (KL_GROUP_MAX_*).
 *  - remove and leave increment the group's epoch: every remaining member
 *    must rotate its sender key before its next message. */
#ifndef KOLLEGA_GROUP_H
#define KOLLEGA_GROUP_H

#include <stddef.h>
#include <stdint.h>

#define KL_GROUP_MAX_MEMBERS 256
#define KL_GROUP_MAX_CANDIDATES 64
#define KL_GROUP_MAX_OP 2048          /* bytes of one SignedOp */
#define KL_GROUP_MAX_DEPARTED 64      /* departures remembered (kl_group_member_at_index) */
#define KL_GROUP_OP_CONTEXT "kollega-group-op-v1"

typedef enum kl_group_policy {
    KL_POLICY_ALL = 1,
    KL_POLICY_MAJORITY = 2,
    KL_POLICY_FACILITATORS = 3,
} kl_group_policy_t;

typedef enum kl_group_role {
    KL_ROLE_NONE = 0,
    KL_ROLE_MEMBER = 1,
    KL_ROLE_FACILITATOR = 2,
} kl_group_role_t;

typedef enum kl_group_opkind {
    KL_GOP_CREATE = 10,
    KL_GOP_INVITE = 11,
    KL_GOP_REQUEST = 12,
    KL_GOP_APPROVE = 13,
    KL_GOP_REMOVE = 14,
    KL_GOP_LEAVE = 15,
    KL_GOP_SET_ROLE = 16,
    KL_GOP_SET_POLICY = 17,
    KL_GOP_SET_RETENTION = 18,
} kl_group_opkind_t;

/* Why an op was refused (for clear errors; kl_group_verr_str names them). */
typedef enum kl_group_verr {
    KL_GV_OK = 0,
    KL_GV_MALFORMED,        /* does not decode, fields missing or of wrong size */
    KL_GV_SIGNATURE,        /* signature does not verify */
    KL_GV_WRONG_GROUP,      /* Op.group is another group */
    KL_GV_CHAIN,            /* index or prev hash does not continue the log */
    KL_GV_CLOSED,           /* the group has no members left */
    KL_GV_NOT_MEMBER,       /* actor (or target) is not a member */
    KL_GV_NOT_FACILITATOR,  /* actor lacks the facilitator role */
    KL_GV_ALREADY_MEMBER,
    KL_GV_ALREADY_CANDIDATE,
    KL_GV_NOT_CANDIDATE,
    KL_GV_ALREADY_APPROVED,
    KL_GV_LAST_FACILITATOR, /* would leave the group without a facilitator */
    KL_GV_SUCCESSOR,        /* successor missing or not a member */
    KL_GV_LIMIT,            /* too many members or candidates */
    KL_GV_ADDRESS_TAKEN,    /* the address is a member's or candidate's under another key */
} kl_group_verr_t;

/* A short English text for why (static storage, never NULL). */
const char *kl_group_verr_str(kl_group_verr_t why);

typedef struct kl_group kl_group_t; /* opaque validated state */

/* A parsed, verified op as applied (returned by kl_group_apply for callers
 * that react to it: rotate sender keys, notify, show). */
typedef struct kl_group_event {
    kl_group_opkind_t kind;
    uint64_t index;
    uint8_t actor[32];
    char actor_address[256];
    uint8_t target[32];        /* candidate / member / successor, when the op has one */
    char target_address[256];  /* for invite (candidate) and request (the actor) */
    int admitted;              /* how many candidates this op made members (0 = none) */
    uint8_t admitted_key[32];  /* the first of them */
    uint8_t admitted_keys[KL_GROUP_MAX_CANDIDATES][32]; /* all of them, in order */
    int epoch_changed;         /* 1 after remove / leave */
} kl_group_event_t;

/* New empty state for the group at address ("#name@relay") in *out (the
 * caller's: kl_group_free, NULL is fine). KL_EINVAL, KL_ENOMEM. */
int kl_group_new(kl_group_t **out, const char *address);
void kl_group_free(kl_group_t *g);

/* Validate the next SignedOp and apply it. 0 on success (ev, if not NULL,
 * describes it); KL_EPROTO/KL_ECRYPTO/KL_ESTATE/KL_ELIMIT with *why set on
 * refusal, and the state unchanged. */
int kl_group_apply(kl_group_t *g, const uint8_t *signed_op, size_t len, kl_group_event_t *ev,
                   kl_group_verr_t *why);

/* What a SignedOp says of itself (kl_group_op_peek). */
typedef struct kl_group_peek {
    uint64_t index;
    kl_group_opkind_t kind;
    uint8_t actor[32];
    char actor_address[256];
    char group[256];
} kl_group_peek_t;

/* What a SignedOp says of itself, checked without any group state:
 * kl_group_op_peek decodes it with kl_group_apply's own decoder (canonical
 * encoding, every field checked, group and actor_address under 256 bytes)
 * and verifies its signature with the actor key it names. A relay calls it
 * before loading the group's log, so an op with a bogus signature costs
 * one verification and nothing more. The caller still compares actor with
 * the identity it expects. 0 with the caller's *out filled; KL_EPROTO
 * (malformed), KL_ETOOBIG (over KL_GROUP_MAX_OP), KL_ECRYPTO (signature),
 * KL_EINVAL (NULL argument); *out is zeroed on error. */
int kl_group_op_peek(const uint8_t *signed_op, size_t len, kl_group_peek_t *out);

/* kl_group_apply without the signature verification, and only that: for
 * replaying ops the caller itself validated in full with kl_group_apply
 * before storing them (the relay rebuilding a group from its own
 * database). Never use it for ops received from anyone else. */
int kl_group_apply_stored(kl_group_t *g, const uint8_t *signed_op, size_t len,
                          kl_group_event_t *ev, kl_group_verr_t *why);

/* Description of an op to build (fields used by kind). */
typedef struct kl_group_opdesc {
    kl_group_opkind_t kind;
    kl_group_policy_t policy;       /* create, set_policy */
    uint32_t days;                  /* create (retention), set_retention */
    kl_group_role_t role;           /* set_role */
    uint8_t target[32];             /* invite candidate, approve, remove, leave successor, set_role */
    int has_target;                 /* leave: 0 = no successor */
    char target_address[256];       /* invite: candidate's address */
} kl_group_opdesc_t;

/* Build and sign the next op for this state (index/prev/group filled in).
 * *out is malloc'd (free with free()). Does NOT apply it: pass it to
 * kl_group_apply (and to the relay). KL_EINVAL for a NULL argument or an
 * unusable desc (unknown kind, invalid policy, role or address),
 * KL_ETOOBIG over KL_GROUP_MAX_OP, KL_ECRYPTO, KL_ENOMEM; nothing is
 * allocated on error. */
int kl_group_op_build(const kl_group_t *g, const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                      const char *actor_address, uint64_t ts, const kl_group_opdesc_t *d,
                      uint8_t **out, size_t *outlen);

/* kl_group_op_build for a log the caller cannot read (a join request: the
 * relay tells the index of the next op and the hash of the last one, prev;
 * the relay checks the op against the whole log). Same output and errors;
 * KL_EINVAL also for a NULL group, or a NULL prev when index > 0. */
int kl_group_op_build_at(const char *group, uint64_t index, const uint8_t prev[32],
                         const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                         const char *actor_address, uint64_t ts, const kl_group_opdesc_t *d,
                         uint8_t **out, size_t *outlen);

/* Queries of the state; none fails. The group's address (owned by the
 * state, valid while it lives), the index of the next op, the hash of the
 * last op (zeros before create), 1 if the group is closed (its last member
 * left) else 0, its policy and retention (0 before create), its key epoch,
 * and key's role (KL_ROLE_NONE for a non-member). */
const char *kl_group_address(const kl_group_t *g);
uint64_t kl_group_next_index(const kl_group_t *g);
void kl_group_head(const kl_group_t *g, uint8_t hash[32]);
int kl_group_closed(const kl_group_t *g);
kl_group_policy_t kl_group_policy(const kl_group_t *g);
uint32_t kl_group_retention_days(const kl_group_t *g);
uint64_t kl_group_epoch(const kl_group_t *g);
kl_group_role_t kl_group_role_of(const kl_group_t *g, const uint8_t key[32]);

typedef struct kl_group_member {
    uint8_t key[32];
    char address[256];
    kl_group_role_t role;
} kl_group_member_t;

/* The number of members, and the i-th one (in order of admission) copied
 * into the caller's *out: 0, or KL_ENOTFOUND past the last. */
size_t kl_group_member_count(const kl_group_t *g);
int kl_group_member_at(const kl_group_t *g, size_t i, kl_group_member_t *out);

typedef struct kl_group_candidate {
    uint8_t key[32];
    char address[256];
    size_t approvals;          /* by current members */
    size_t missing;            /* approvals still needed under the policy (for FACILITATORS: 1 if none yet) */
} kl_group_candidate_t;

/* The number of candidates, and the i-th one with its approvals copied
 * into the caller's *out: 0, or KL_ENOTFOUND past the last. */
size_t kl_group_candidate_count(const kl_group_t *g);
int kl_group_candidate_at(const kl_group_t *g, size_t i, kl_group_candidate_t *out);
/* Removal votes (policy MAJORITY) by current members against member
 * `target`; *missing (may be NULL) gets how many more are needed. 0 for a
 * key that is not a member. */
size_t kl_group_removal_votes(const kl_group_t *g, const uint8_t target[32], size_t *missing);

/* History of membership, for messages bound to a view of the log: a
 * message written with next_index == index (the state after op index - 1)
 * is its author's if the author was a member in that state, even if it
 * left or was removed since. kl_group_member_at_index: 1 if key was a
 * member at that view (*out, may be NULL: its address and role then), 0 if
 * not, if index is 0 or beyond the log, or if that spell of membership
 * ended before the last KL_GROUP_MAX_DEPARTED departures (older ones are
 * forgotten). kl_group_was_member: 1 if key is a member or one of those
 * departed members (*out, may be NULL: as it is, or as it was last). kl_group_epoch_at: the epoch at that view (0 with
 * *epoch), KL_ENOTFOUND when index is 0, beyond the log, or older than the
 * departures remembered. */
int kl_group_member_at_index(const kl_group_t *g, const uint8_t key[32], uint64_t index,
                             kl_group_member_t *out);
int kl_group_was_member(const kl_group_t *g, const uint8_t key[32], kl_group_member_t *out);
int kl_group_epoch_at(const kl_group_t *g, uint64_t index, uint64_t *epoch);

/* 1 if member `approver` has approved `candidate`. */
int kl_group_has_approved(const kl_group_t *g, const uint8_t candidate[32],
                          const uint8_t approver[32]);

#endif
