/* Internal to libkollega: decoding and authentication of one group op
 * (proto/group_decode.c), used by the validator (proto/group.c). */
#ifndef KOLLEGA_GROUP_INT_H
#define KOLLEGA_GROUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/group.h"

#define ADDR_CAP 256 /* kl_group_member_t.address and friends */

/* An op after decoding and field checks, free of protobuf-c structs. */
typedef struct op {
    kl_group_opkind_t kind;
    uint64_t index;
    uint8_t actor[32];
    char actor_address[ADDR_CAP];
    kl_group_policy_t policy;
    uint32_t days;
    kl_group_role_t role;
    uint8_t target[32];
    int has_target;
    char target_address[ADDR_CAP];
    char group[ADDR_CAP];          /* Op.group as sent */
} op_t;

/* What of the group's state decoding needs: its address, whether it is
 * closed, the next index and the head hash (32 bytes). */
typedef struct kl_gop_ctx {
    const char *group;
    int closed;
    uint64_t next;
    const uint8_t *head;
} kl_gop_ctx_t;

/* 1 if s is a valid address (a group address if group, else a user's)
 * that fits ADDR_CAP. */
int kl_gop_addr_ok(const char *s, int group);

/* Decode and authenticate one SignedOp against the state: sizes, canonical
 * encoding, fields, group, open group, index and prev, and (check_sig) the
 * signature, in that order. Fills o; the rules are group.c's. With g NULL
 * the checks that need a state (group, open, chain) are skipped: what
 * kl_group_op_peek tells before any state is loaded. */
kl_group_verr_t kl_gop_decode(const kl_gop_ctx_t *g, const uint8_t *in, size_t len, op_t *o,
                              int check_sig);

#endif
