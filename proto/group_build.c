/* Building and signing the next group op (include/kollega/group.h), and
 * the names of refusal reasons. The builder checks only the shape of what
 * it is asked to build; whether the actor may do it is kl_group_apply's
 * decision (proto/group.c), run on the result by the client itself and by
 * the relay. */
#include <stdlib.h>
#include <string.h>

#include "group.pb-c.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "pbcanon.h"

static int user_addr(const char *s)
{
    kl_addr_t a;
    return s != NULL && strnlen(s, 256) < 256 && kl_addr_parse(s, &a) == 0 && !a.is_group;
}

static int policy_ok(int p)
{
    return p == KL_POLICY_ALL || p == KL_POLICY_MAJORITY || p == KL_POLICY_FACILITATORS;
}

/* A short phrase for a refusal reason, for error messages. Never NULL. */
const char *kl_group_verr_str(kl_group_verr_t why)
{
    switch (why) {
    case KL_GV_OK: return "valid";
    case KL_GV_MALFORMED: return "malformed operation";
    case KL_GV_SIGNATURE: return "signature does not verify";
    case KL_GV_WRONG_GROUP: return "operation for another group";
    case KL_GV_CHAIN: return "operation does not continue the group log";
    case KL_GV_CLOSED: return "the group is closed";
    case KL_GV_NOT_MEMBER: return "not a member of the group";
    case KL_GV_NOT_FACILITATOR: return "only a facilitator may do this";
    case KL_GV_ALREADY_MEMBER: return "already a member";
    case KL_GV_ALREADY_CANDIDATE: return "already a candidate";
    case KL_GV_NOT_CANDIDATE: return "no such candidate";
    case KL_GV_ALREADY_APPROVED: return "approval already given";
    case KL_GV_LAST_FACILITATOR: return "the group would have no facilitator";
    case KL_GV_SUCCESSOR: return "a successor who is a member must be named";
    case KL_GV_LIMIT: return "too many members or candidates";
    case KL_GV_ADDRESS_TAKEN:
        return "the address is already in the group under another identity key";
    }
    return "unknown reason";
}

/* Build and sign op index of group (contract of kl_group_op_build_at in
 * group.h): prev is the hash of op index - 1 (ignored for index 0). */
static int build_at(const char *group, uint64_t index, const uint8_t prev[32],
                    const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                    const char *actor_address, uint64_t ts, const kl_group_opdesc_t *d,
                    uint8_t **out, size_t *outlen)
{
    Kollega__Group__V1__Op op = KOLLEGA__GROUP__V1__OP__INIT;
    Kollega__Group__V1__Create create = KOLLEGA__GROUP__V1__CREATE__INIT;
    Kollega__Group__V1__Member cand = KOLLEGA__GROUP__V1__MEMBER__INIT;
    Kollega__Group__V1__Invite invite = KOLLEGA__GROUP__V1__INVITE__INIT;
    Kollega__Group__V1__Request request = KOLLEGA__GROUP__V1__REQUEST__INIT;
    Kollega__Group__V1__Approve approve = KOLLEGA__GROUP__V1__APPROVE__INIT;
    Kollega__Group__V1__Remove remove = KOLLEGA__GROUP__V1__REMOVE__INIT;
    Kollega__Group__V1__Leave leave = KOLLEGA__GROUP__V1__LEAVE__INIT;
    Kollega__Group__V1__SetRole set_role = KOLLEGA__GROUP__V1__SET_ROLE__INIT;
    Kollega__Group__V1__SetPolicy set_policy = KOLLEGA__GROUP__V1__SET_POLICY__INIT;
    Kollega__Group__V1__SetRetention set_ret = KOLLEGA__GROUP__V1__SET_RETENTION__INIT;
    uint8_t head[32], target[32];
    char target_address[256];

    if (out == NULL || outlen == NULL)
        return KL_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (group == NULL || (index > 0 && prev == NULL) || actor_sk == NULL || actor_pk == NULL ||
        d == NULL || !user_addr(actor_address))
        return KL_EINVAL;
    memcpy(target, d->target, 32);
    if (index > 0)
        memcpy(head, prev, 32);
    op.group = (char *)group;
    op.index = index;
    if (op.index > 0) {
        op.prev.data = head;
        op.prev.len = 32;
    }
    op.actor.data = (uint8_t *)actor_pk;
    op.actor.len = 32;
    op.actor_address = (char *)actor_address;
    op.ts = ts;
    ProtobufCBinaryData tk = {32, target};

    switch (d->kind) {
    case KL_GOP_CREATE:
        if (!policy_ok((int)d->policy))
            return KL_EINVAL;
        create.policy = (Kollega__Group__V1__Policy)d->policy;
        create.retention_days = d->days;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_CREATE;
        op.create = &create;
        break;
    case KL_GOP_INVITE:
        if (memchr(d->target_address, '\0', sizeof d->target_address) == NULL)
            return KL_EINVAL;
        memcpy(target_address, d->target_address, sizeof target_address);
        if (!user_addr(target_address))
            return KL_EINVAL;
        cand.identity_key = tk;
        cand.address = target_address;
        invite.candidate = &cand;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_INVITE;
        op.invite = &invite;
        break;
    case KL_GOP_REQUEST:
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_REQUEST;
        op.request = &request;
        break;
    case KL_GOP_APPROVE:
        approve.candidate = tk;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_APPROVE;
        op.approve = &approve;
        break;
    case KL_GOP_REMOVE:
        remove.member = tk;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_REMOVE;
        op.remove = &remove;
        break;
    case KL_GOP_LEAVE:
        if (d->has_target)
            leave.successor = tk;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_LEAVE;
        op.leave = &leave;
        break;
    case KL_GOP_SET_ROLE:
        if (d->role != KL_ROLE_MEMBER && d->role != KL_ROLE_FACILITATOR)
            return KL_EINVAL;
        set_role.member = tk;
        set_role.role = (Kollega__Group__V1__Role)d->role;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_SET_ROLE;
        op.set_role = &set_role;
        break;
    case KL_GOP_SET_POLICY:
        if (!policy_ok((int)d->policy))
            return KL_EINVAL;
        set_policy.policy = (Kollega__Group__V1__Policy)d->policy;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_SET_POLICY;
        op.set_policy = &set_policy;
        break;
    case KL_GOP_SET_RETENTION:
        set_ret.days = d->days;
        op.body_case = KOLLEGA__GROUP__V1__OP__BODY_SET_RETENTION;
        op.set_retention = &set_ret;
        break;
    default:
        return KL_EINVAL;
    }

    /* Addresses are at most 255 bytes each, so an op stays far below the
     * limit; kl_pb_sign_wrap refuses anything over it all the same. */
    return kl_pb_sign_wrap(&op.base, KL_GROUP_OP_CONTEXT, KL_GROUP_MAX_OP, actor_sk, out, outlen);
}

/* Build and sign the next op for g (contract in group.h): index, prev and
 * group come from g. */
int kl_group_op_build(const kl_group_t *g, const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                      const char *actor_address, uint64_t ts, const kl_group_opdesc_t *d,
                      uint8_t **out, size_t *outlen)
{
    uint8_t head[32];
    if (g == NULL) {
        if (out && outlen) {
            *out = NULL;
            *outlen = 0;
        }
        return KL_EINVAL;
    }
    kl_group_head(g, head);
    return build_at(kl_group_address(g), kl_group_next_index(g), head, actor_sk, actor_pk,
                    actor_address, ts, d, out, outlen);
}

int kl_group_op_build_at(const char *group, uint64_t index, const uint8_t prev[32],
                         const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                         const char *actor_address, uint64_t ts, const kl_group_opdesc_t *d,
                         uint8_t **out, size_t *outlen)
{
    return build_at(group, index, prev, actor_sk, actor_pk, actor_address, ts, d, out, outlen);
}
