/* Decoding and authentication of one group op (contract in group_int.h):
 * strict, canonical decoding (pbcanon.h: the same bytes for the same op at
 * every relay and client, so the same chain head), every field checked,
 * then the chain position, then the signature, the costly check, last. */
#include <string.h>

#include "group.pb-c.h"
#include "group_int.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "pbcanon.h"

/* A valid address of the wanted kind that fits the public structs. */
int kl_gop_addr_ok(const char *s, int group)
{
    kl_addr_t a;
    if (s == NULL || strnlen(s, ADDR_CAP) >= ADDR_CAP)
        return 0;
    return kl_addr_parse(s, &a) == 0 && a.is_group == group;
}

static int policy_ok(int p)
{
    return p == KL_POLICY_ALL || p == KL_POLICY_MAJORITY || p == KL_POLICY_FACILITATORS;
}

static int role_ok(int r)
{
    return r == KL_ROLE_MEMBER || r == KL_ROLE_FACILITATOR;
}

/* The member or candidate key an op names, as its target. */
static kl_group_verr_t target_key(const ProtobufCBinaryData *key, op_t *o, kl_group_opkind_t kind)
{
    if (!kl_pb_key32(key, o->target))
        return KL_GV_MALFORMED;
    o->kind = kind;
    o->has_target = 1;
    return KL_GV_OK;
}

/* The body's fields into o. KL_GV_MALFORMED for a missing sub-message, a
 * key that is not 32 bytes, an invalid address, policy or role. */
static kl_group_verr_t decode_body(const Kollega__Group__V1__Op *p, op_t *o)
{
    /* Whichever member of the oneof is set, it is a message: check it. */
    if (!kl_pb_known_only(p->create) ||
        (p->body_case == KOLLEGA__GROUP__V1__OP__BODY_INVITE && p->invite != NULL &&
         !kl_pb_known_only(p->invite->candidate)))
        return KL_GV_MALFORMED;
    switch (p->body_case) {
    case KOLLEGA__GROUP__V1__OP__BODY_CREATE:
        if (p->create == NULL || !policy_ok((int)p->create->policy))
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_CREATE;
        o->policy = (kl_group_policy_t)p->create->policy;
        o->days = p->create->retention_days;
        return KL_GV_OK;
    case KOLLEGA__GROUP__V1__OP__BODY_INVITE:
        if (p->invite == NULL || p->invite->candidate == NULL ||
            !kl_pb_key32(&p->invite->candidate->identity_key, o->target) ||
            !kl_gop_addr_ok(p->invite->candidate->address, 0))
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_INVITE;
        o->has_target = 1;
        strcpy(o->target_address, p->invite->candidate->address); /* length checked */
        return KL_GV_OK;
    case KOLLEGA__GROUP__V1__OP__BODY_REQUEST:
        if (p->request == NULL)
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_REQUEST;
        return KL_GV_OK;
    case KOLLEGA__GROUP__V1__OP__BODY_APPROVE:
        if (p->approve == NULL)
            return KL_GV_MALFORMED;
        return target_key(&p->approve->candidate, o, KL_GOP_APPROVE);
    case KOLLEGA__GROUP__V1__OP__BODY_REMOVE:
        if (p->remove == NULL)
            return KL_GV_MALFORMED;
        return target_key(&p->remove->member, o, KL_GOP_REMOVE);
    case KOLLEGA__GROUP__V1__OP__BODY_LEAVE:
        if (p->leave == NULL)
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_LEAVE;
        if (p->leave->successor.len == 0)
            return KL_GV_OK;
        return target_key(&p->leave->successor, o, KL_GOP_LEAVE);
    case KOLLEGA__GROUP__V1__OP__BODY_SET_ROLE:
        if (p->set_role == NULL || !kl_pb_key32(&p->set_role->member, o->target) ||
            !role_ok((int)p->set_role->role))
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_SET_ROLE;
        o->has_target = 1;
        o->role = (kl_group_role_t)p->set_role->role;
        return KL_GV_OK;
    case KOLLEGA__GROUP__V1__OP__BODY_SET_POLICY:
        if (p->set_policy == NULL || !policy_ok((int)p->set_policy->policy))
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_SET_POLICY;
        o->policy = (kl_group_policy_t)p->set_policy->policy;
        return KL_GV_OK;
    case KOLLEGA__GROUP__V1__OP__BODY_SET_RETENTION:
        if (p->set_retention == NULL)
            return KL_GV_MALFORMED;
        o->kind = KL_GOP_SET_RETENTION;
        o->days = p->set_retention->days;
        return KL_GV_OK;
    default:
        return KL_GV_MALFORMED;
    }
}

/* Decode and authenticate one SignedOp against the state: sizes, canonical
 * encoding, fields, group, open group, index and prev, signature, in that
 * order (the signature last among them because it is the costly check).
 * Fills o; the rules are check_rules()'s. */
kl_group_verr_t kl_gop_decode(const kl_gop_ctx_t *g, const uint8_t *in, size_t len, op_t *o,
                              int check_sig)
{
    kl_pb_signed_t so;
    kl_group_verr_t why = KL_GV_MALFORMED;

    memset(o, 0, sizeof *o);
    const Kollega__Group__V1__Op *p =
        kl_pb_unpack_signed(&so, &kollega__group__v1__op__descriptor, in, len, KL_GROUP_MAX_OP);
    if (p == NULL)
        goto out;
    if (!kl_pb_key32(&p->actor, o->actor) || !kl_gop_addr_ok(p->actor_address, 0))
        goto out;
    if (p->prev.len != 0 && p->prev.len != 32)
        goto out;
    strcpy(o->actor_address, p->actor_address); /* length checked */
    o->index = p->index;
    why = decode_body(p, o);
    if (why != KL_GV_OK)
        goto out;

    if (p->group == NULL || strnlen(p->group, ADDR_CAP) >= ADDR_CAP)
        goto out;
    strcpy(o->group, p->group); /* length checked */
    if (g == NULL)
        goto signature;
    why = KL_GV_WRONG_GROUP;
    if (strcmp(p->group, g->group) != 0)
        goto out;
    why = KL_GV_CLOSED;
    if (g->closed)
        goto out;
    why = KL_GV_CHAIN;
    if (!kl_pb_chain_ok(p->index, &p->prev, o->kind == KL_GOP_CREATE, g->next, g->head))
        goto out;

signature:
    why = KL_GV_SIGNATURE;
    if (check_sig && kl_pb_signed_verify(&so, o->actor, KL_GROUP_OP_CONTEXT, KL_GROUP_MAX_OP) != 0)
        goto out;
    why = KL_GV_OK;
out:
    kl_pb_signed_free(&so);
    return why;
}
