/* Broadcast channels: the publisher log and post signatures (contract in
 * include/kollega/channel.h). Decoding is strict and canonical
 * (pbcanon.h), for the reason group.c gives: every relay and subscriber
 * must see the same bytes, so the same chain head, for the same op. */
#include <stdlib.h>
#include <string.h>

#include "channel.pb-c.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/channel.h"
#include "channel_int.h"
#include "pbcanon.h"

#define ADDR_CAP KL_CH_ADDR_CAP

typedef kl_ch_entry_t publisher_t;

/* A decoded op, free of protobuf-c structs. */
typedef struct cop {
    kl_channel_opkind_t kind;
    uint8_t actor[32];
    char actor_address[ADDR_CAP];
    uint8_t target[32];
    char target_address[ADDR_CAP];
    int members_only;
} cop_t;

const char *kl_channel_verr_str(kl_channel_verr_t why)
{
    switch (why) {
    case KL_CV_OK: return "valid";
    case KL_CV_MALFORMED: return "malformed channel record";
    case KL_CV_SIGNATURE: return "signature does not verify";
    case KL_CV_WRONG_CHANNEL: return "record belongs to another channel";
    case KL_CV_CHAIN: return "does not continue the channel's log";
    case KL_CV_NOT_OWNER: return "only the channel's owner changes its publishers";
    case KL_CV_NOT_PUBLISHER: return "not a publisher of this channel";
    case KL_CV_ALREADY_PUBLISHER: return "already a publisher";
    case KL_CV_OWNER: return "the owner cannot be removed";
    case KL_CV_LIMIT: return "too many publishers or members";
    case KL_CV_PUBLIC: return "not allowed in a public channel (members-only channels only)";
    case KL_CV_NOT_MEMBER: return "not an added member of this channel";
    case KL_CV_ALREADY_MEMBER: return "already a member";
    case KL_CV_EPOCH: return "the post's key epoch is not one of this channel's";
    }
    return "unknown reason";
}

int kl_ch_err_of(kl_channel_verr_t why)
{
    switch (why) {
    case KL_CV_OK: return 0;
    case KL_CV_MALFORMED:
    case KL_CV_WRONG_CHANNEL:
    case KL_CV_CHAIN: return KL_EPROTO;
    case KL_CV_SIGNATURE: return KL_ECRYPTO;
    case KL_CV_LIMIT: return KL_ELIMIT;
    default: return KL_ESTATE;
    }
}

int kl_ch_user_addr_ok(const char *s)
{
    kl_addr_t a;
    return s != NULL && strnlen(s, ADDR_CAP) < ADDR_CAP && kl_addr_parse(s, &a) == 0 &&
           !a.is_group;
}

int kl_channel_addr_valid(const char *s)
{
    return s != NULL && s[0] == '!' && strnlen(s, ADDR_CAP) < ADDR_CAP && kl_ch_user_addr_ok(s + 1);
}

size_t kl_ch_find_pub(const kl_channel_t *c, const uint8_t key[32])
{
    for (size_t i = 0; i < c->npub; i++)
        if (memcmp(c->pub[i].key, key, 32) == 0)
            return i;
    return SIZE_MAX;
}

size_t kl_ch_find_mem(const kl_channel_t *c, const uint8_t key[32])
{
    for (size_t i = 0; i < c->nmem; i++)
        if (memcmp(c->mem[i].key, key, 32) == 0)
            return i;
    return SIZE_MAX;
}

/* The key and address of an add_publisher / add_member body. */
static kl_channel_verr_t decode_add(const ProtobufCMessage *m, const ProtobufCBinaryData *key,
                                    const char *address, cop_t *o, kl_channel_opkind_t kind)
{
    if (m == NULL || !kl_pb_known_only(m) || !kl_pb_key32(key, o->target) ||
        !kl_ch_user_addr_ok(address))
        return KL_CV_MALFORMED;
    o->kind = kind;
    strcpy(o->target_address, address); /* length checked */
    return KL_CV_OK;
}

static kl_channel_verr_t decode_body(const Kollega__Channel__V1__Op *p, cop_t *o)
{
    switch (p->body_case) {
    case KOLLEGA__CHANNEL__V1__OP__BODY_CREATE:
        if (p->create == NULL || !kl_pb_known_only(p->create))
            return KL_CV_MALFORMED;
        o->kind = KL_COP_CREATE;
        o->members_only = p->create->members_only != 0;
        return KL_CV_OK;
    case KOLLEGA__CHANNEL__V1__OP__BODY_ADD_PUBLISHER:
        if (p->add_publisher == NULL)
            return KL_CV_MALFORMED;
        return decode_add(&p->add_publisher->base, &p->add_publisher->key,
                          p->add_publisher->address, o, KL_COP_ADD_PUBLISHER);
    case KOLLEGA__CHANNEL__V1__OP__BODY_ADD_MEMBER:
        if (p->add_member == NULL)
            return KL_CV_MALFORMED;
        return decode_add(&p->add_member->base, &p->add_member->key, p->add_member->address, o,
                          KL_COP_ADD_MEMBER);
    case KOLLEGA__CHANNEL__V1__OP__BODY_REMOVE_MEMBER:
        if (p->remove_member == NULL || !kl_pb_known_only(p->remove_member) ||
            !kl_pb_key32(&p->remove_member->key, o->target))
            return KL_CV_MALFORMED;
        o->kind = KL_COP_REMOVE_MEMBER;
        return KL_CV_OK;
    case KOLLEGA__CHANNEL__V1__OP__BODY_REMOVE_PUBLISHER:
        if (p->remove_publisher == NULL || !kl_pb_known_only(p->remove_publisher) ||
            !kl_pb_key32(&p->remove_publisher->key, o->target))
            return KL_CV_MALFORMED;
        o->kind = KL_COP_REMOVE_PUBLISHER;
        return KL_CV_OK;
    default:
        return KL_CV_MALFORMED;
    }
}

/* Decode and authenticate one SignedOp against the state (sizes,
 * canonical encoding, fields, channel, chain, signature last). */
static kl_channel_verr_t decode_verify(const kl_channel_t *c, const uint8_t *in, size_t len,
                                       cop_t *o)
{
    kl_pb_signed_t so;
    kl_channel_verr_t why = KL_CV_MALFORMED;

    memset(o, 0, sizeof *o);
    const Kollega__Channel__V1__Op *p =
        kl_pb_unpack_signed(&so, &kollega__channel__v1__op__descriptor, in, len, KL_CHANNEL_MAX_OP);
    if (p == NULL || !kl_pb_key32(&p->actor, o->actor) || !kl_ch_user_addr_ok(p->actor_address) ||
        (p->prev.len != 0 && p->prev.len != 32))
        goto out;
    strcpy(o->actor_address, p->actor_address); /* length checked */
    why = decode_body(p, o);
    if (why != KL_CV_OK)
        goto out;
    why = KL_CV_WRONG_CHANNEL;
    if (p->channel == NULL || strcmp(p->channel, c->address) != 0)
        goto out;
    why = KL_CV_CHAIN;
    if (!kl_pb_chain_ok(p->index, &p->prev, o->kind == KL_COP_CREATE, c->next, c->head))
        goto out;
    why = KL_CV_SIGNATURE;
    if (kl_pb_signed_verify(&so, o->actor, KL_CHANNEL_OP_CONTEXT, KL_CHANNEL_MAX_OP) != 0)
        goto out;
    why = KL_CV_OK;
out:
    kl_pb_signed_free(&so);
    return why;
}

static kl_channel_verr_t check_rules(const kl_channel_t *c, const cop_t *o)
{
    if (o->kind == KL_COP_CREATE)
        return KL_CV_OK; /* index 0 only: checked by the chain */
    if (memcmp(o->actor, c->pub[0].key, 32) != 0)
        return KL_CV_NOT_OWNER;
    if (o->kind == KL_COP_ADD_MEMBER || o->kind == KL_COP_REMOVE_MEMBER) {
        if (!c->members_only)
            return KL_CV_PUBLIC;
        size_t m = kl_ch_find_mem(c, o->target);
        if (o->kind == KL_COP_REMOVE_MEMBER)
            return m == SIZE_MAX ? KL_CV_NOT_MEMBER : KL_CV_OK;
        if (m != SIZE_MAX || kl_ch_find_pub(c, o->target) != SIZE_MAX)
            return KL_CV_ALREADY_MEMBER;
        return c->nmem < KL_CHANNEL_MAX_MEMBERS ? KL_CV_OK : KL_CV_LIMIT;
    }
    size_t i = kl_ch_find_pub(c, o->target);
    if (o->kind == KL_COP_ADD_PUBLISHER) {
        if (i != SIZE_MAX)
            return KL_CV_ALREADY_PUBLISHER;
        return c->npub < KL_CHANNEL_MAX_PUBLISHERS ? KL_CV_OK : KL_CV_LIMIT;
    }
    if (i == SIZE_MAX)
        return KL_CV_NOT_PUBLISHER;
    return i == 0 ? KL_CV_OWNER : KL_CV_OK;
}

/* Append the op's target to a list (publishers or added members; the
 * rules checked there is room). */
static void entry_add(kl_ch_entry_t *v, size_t *n, const cop_t *o)
{
    memcpy(v[*n].key, o->target, 32);
    strcpy(v[*n].address, o->target_address);
    (*n)++;
}

/* Drop entry i of a list; the op's target address is the one it had. */
static void entry_remove(kl_ch_entry_t *v, size_t *n, size_t i, cop_t *o)
{
    strcpy(o->target_address, v[i].address);
    memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
    (*n)--;
}

int kl_channel_apply(kl_channel_t *c, const uint8_t *signed_op, size_t len,
                     kl_channel_event_t *ev, kl_channel_verr_t *why)
{
    cop_t o;
    kl_channel_verr_t w;

    if (ev != NULL)
        memset(ev, 0, sizeof *ev);
    if (why != NULL)
        *why = KL_CV_MALFORMED;
    if (c == NULL)
        return KL_EINVAL;
    w = decode_verify(c, signed_op, len, &o);
    if (w == KL_CV_OK)
        w = check_rules(c, &o);
    if (why != NULL)
        *why = w;
    if (w != KL_CV_OK)
        return kl_ch_err_of(w);
    if (o.kind == KL_COP_ADD_MEMBER && c->nmem == c->capmem) {
        size_t cap = c->capmem ? 2 * c->capmem : 16;
        if (cap > KL_CHANNEL_MAX_MEMBERS)
            cap = KL_CHANNEL_MAX_MEMBERS;
        kl_ch_entry_t *m = realloc(c->mem, cap * sizeof *m);
        if (m == NULL) {
            if (why != NULL)
                *why = KL_CV_OK; /* no verdict on the op: may be retried */
            return KL_ENOMEM;
        }
        c->mem = m;
        c->capmem = cap;
    }

    switch (o.kind) {
    case KL_COP_CREATE:
        memcpy(c->pub[0].key, o.actor, 32);
        strcpy(c->pub[0].address, o.actor_address);
        c->npub = 1;
        c->members_only = o.members_only;
        c->epoch = 1;
        break;
    case KL_COP_ADD_MEMBER:
        entry_add(c->mem, &c->nmem, &o);
        break;
    case KL_COP_REMOVE_MEMBER:
        entry_remove(c->mem, &c->nmem, kl_ch_find_mem(c, o.target), &o);
        c->epoch++;
        break;
    case KL_COP_ADD_PUBLISHER:
        entry_add(c->pub, &c->npub, &o);
        break;
    case KL_COP_REMOVE_PUBLISHER:
        entry_remove(c->pub, &c->npub, kl_ch_find_pub(c, o.target), &o);
        c->epoch++;
        break;
    }
    kl_sha256(signed_op, len, c->head);
    if (ev != NULL) {
        ev->kind = o.kind;
        ev->index = c->next;
        memcpy(ev->actor, o.actor, 32);
        memcpy(ev->target, o.target, 32);
        memcpy(ev->target_address, o.target_address, ADDR_CAP);
        ev->members_only = c->members_only;
        ev->epoch = c->epoch;
    }
    c->next++;
    return 0;
}

static int op_build(const kl_channel_t *c, const uint8_t actor_sk[64], const uint8_t actor_pk[32],
                    const char *actor_address, uint64_t ts, kl_channel_opkind_t kind,
                    int members_only, const uint8_t target[32], const char *target_address,
                    uint8_t **out, size_t *outlen)
{
    Kollega__Channel__V1__AddMember addm = KOLLEGA__CHANNEL__V1__ADD_MEMBER__INIT;
    Kollega__Channel__V1__RemoveMember rmm = KOLLEGA__CHANNEL__V1__REMOVE_MEMBER__INIT;
    Kollega__Channel__V1__Op op = KOLLEGA__CHANNEL__V1__OP__INIT;
    Kollega__Channel__V1__Create create = KOLLEGA__CHANNEL__V1__CREATE__INIT;
    Kollega__Channel__V1__AddPublisher add = KOLLEGA__CHANNEL__V1__ADD_PUBLISHER__INIT;
    Kollega__Channel__V1__RemovePublisher rm = KOLLEGA__CHANNEL__V1__REMOVE_PUBLISHER__INIT;
    uint8_t tkey[32], pk[32], prev[32];

    if (c == NULL || actor_sk == NULL || actor_pk == NULL || !kl_ch_user_addr_ok(actor_address) ||
        out == NULL || outlen == NULL)
        return KL_EINVAL;
    memcpy(pk, actor_pk, 32);
    memcpy(prev, c->head, 32);
    op.channel = (char *)c->address;
    op.index = c->next;
    if (c->next > 0) {
        op.prev.data = prev;
        op.prev.len = 32;
    }
    op.actor.data = pk;
    op.actor.len = 32;
    op.actor_address = (char *)actor_address;
    op.ts = ts;
    int adds = kind == KL_COP_ADD_MEMBER || kind == KL_COP_ADD_PUBLISHER;
    if (kind != KL_COP_CREATE) {
        if (target == NULL || (adds && !kl_ch_user_addr_ok(target_address)))
            return KL_EINVAL;
        memcpy(tkey, target, 32);
    }
    ProtobufCBinaryData tk = {32, tkey};
    switch (kind) {
    case KL_COP_CREATE:
        create.members_only = members_only != 0;
        op.body_case = KOLLEGA__CHANNEL__V1__OP__BODY_CREATE;
        op.create = &create;
        break;
    case KL_COP_ADD_MEMBER:
        addm.key = tk;
        addm.address = (char *)target_address;
        op.body_case = KOLLEGA__CHANNEL__V1__OP__BODY_ADD_MEMBER;
        op.add_member = &addm;
        break;
    case KL_COP_REMOVE_MEMBER:
        rmm.key = tk;
        op.body_case = KOLLEGA__CHANNEL__V1__OP__BODY_REMOVE_MEMBER;
        op.remove_member = &rmm;
        break;
    case KL_COP_ADD_PUBLISHER:
        add.key = tk;
        add.address = (char *)target_address;
        op.body_case = KOLLEGA__CHANNEL__V1__OP__BODY_ADD_PUBLISHER;
        op.add_publisher = &add;
        break;
    case KL_COP_REMOVE_PUBLISHER:
        rm.key = tk;
        op.body_case = KOLLEGA__CHANNEL__V1__OP__BODY_REMOVE_PUBLISHER;
        op.remove_publisher = &rm;
        break;
    default:
        return KL_EINVAL;
    }
    return kl_pb_sign_wrap(&op.base, KL_CHANNEL_OP_CONTEXT, KL_CHANNEL_MAX_OP, actor_sk, out,
                           outlen);
}

int kl_channel_op_build(const kl_channel_t *c, const uint8_t actor_sk[64],
                        const uint8_t actor_pk[32], const char *actor_address, uint64_t ts,
                        kl_channel_opkind_t kind, const uint8_t target[32],
                        const char *target_address, uint8_t **out, size_t *outlen)
{
    return op_build(c, actor_sk, actor_pk, actor_address, ts, kind, 0, target, target_address,
                    out, outlen);
}

int kl_channel_op_build_create(const kl_channel_t *c, const uint8_t actor_sk[64],
                               const uint8_t actor_pk[32], const char *actor_address,
                               uint64_t ts, int members_only, uint8_t **out, size_t *outlen)
{
    return op_build(c, actor_sk, actor_pk, actor_address, ts, KL_COP_CREATE, members_only, NULL,
                    NULL, out, outlen);
}

int kl_channel_new(kl_channel_t **out, const char *address)
{
    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (!kl_channel_addr_valid(address))
        return KL_EINVAL;
    kl_channel_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return KL_ENOMEM;
    strcpy(c->address, address); /* length checked */
    *out = c;
    return 0;
}

void kl_channel_free(kl_channel_t *c)
{
    if (c == NULL)
        return;
    free(c->mem);
    free(c);
}

const char *kl_channel_address(const kl_channel_t *c)
{
    return c->address;
}

uint64_t kl_channel_next_index(const kl_channel_t *c)
{
    return c->next;
}

void kl_channel_head(const kl_channel_t *c, uint8_t hash[32])
{
    memcpy(hash, c->head, 32);
}

int kl_channel_owner(const kl_channel_t *c, uint8_t key[32])
{
    if (c->npub == 0)
        return KL_ENOTFOUND;
    memcpy(key, c->pub[0].key, 32);
    return 0;
}

int kl_channel_is_publisher(const kl_channel_t *c, const uint8_t key[32])
{
    return kl_ch_find_pub(c, key) != SIZE_MAX;
}

size_t kl_channel_publisher_count(const kl_channel_t *c)
{
    return c->npub;
}

int kl_channel_publisher_at(const kl_channel_t *c, size_t i, uint8_t key[32], char address[256])
{
    if (i >= c->npub)
        return KL_ENOTFOUND;
    memcpy(key, c->pub[i].key, 32);
    memcpy(address, c->pub[i].address, ADDR_CAP);
    return 0;
}

int kl_channel_members_only(const kl_channel_t *c)
{
    return c->members_only;
}

int kl_channel_is_member(const kl_channel_t *c, const uint8_t key[32])
{
    return kl_ch_find_pub(c, key) != SIZE_MAX || kl_ch_find_mem(c, key) != SIZE_MAX;
}

uint64_t kl_channel_epoch(const kl_channel_t *c)
{
    return c->epoch;
}

size_t kl_channel_added_count(const kl_channel_t *c)
{
    return c->nmem;
}

int kl_channel_added_at(const kl_channel_t *c, size_t i, uint8_t key[32], char address[256])
{
    if (i >= c->nmem)
        return KL_ENOTFOUND;
    memcpy(key, c->mem[i].key, 32);
    memcpy(address, c->mem[i].address, ADDR_CAP);
    return 0;
}
