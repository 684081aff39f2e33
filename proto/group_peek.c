/* kl_group_op_peek (contract in group.h): what a relay may learn of a
 * SignedOp before it touches the group's log.
 *
 * A relay validates an op against the group's state, which it must load
 * (from a cache, or by replaying the stored log). Checking the signature
 * first, here, without any state, means a stranger who sends ops with
 * bogus signatures costs one Ed25519 verification on the network thread
 * and nothing on the storage thread. The decoding is the validator's own
 * (kl_gop_decode without a state), so an op that passes here fails
 * kl_group_apply only for reasons of state (chain, rules). */
#include <string.h>

#include "group_int.h"
#include "kollega/err.h"
#include "kollega/group.h"

int kl_group_op_peek(const uint8_t *signed_op, size_t len, kl_group_peek_t *out)
{
    op_t o;

    if (out == NULL || signed_op == NULL)
        return KL_EINVAL;
    memset(out, 0, sizeof *out);
    if (len == 0 || len > KL_GROUP_MAX_OP)
        return len ? KL_ETOOBIG : KL_EPROTO;
    kl_group_verr_t why = kl_gop_decode(NULL, signed_op, len, &o, 1);
    if (why != KL_GV_OK)
        return why == KL_GV_SIGNATURE ? KL_ECRYPTO : KL_EPROTO;
    out->index = o.index;
    out->kind = o.kind;
    memcpy(out->actor, o.actor, 32);
    memcpy(out->actor_address, o.actor_address, sizeof out->actor_address);
    memcpy(out->group, o.group, sizeof out->group);
    return 0;
}
