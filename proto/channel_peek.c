/* kl_channel_op_peek (contract in channel.h): what a relay may learn of a
 * channel SignedOp before it touches the channel's log.
 *
 * The relay validates an op against the channel's state, which it must
 * load (from its cache, or by replaying the stored log). Checking the
 * signature first, here, without any state, means a stranger who sends
 * ops with bogus signatures costs one Ed25519 verification on the network
 * thread and nothing on the storage thread. The decoding is the
 * validator's (proto/channel.c): the same canonical unpack on the same
 * capped allocator, so an op that passes here fails kl_channel_apply only
 * for reasons of state (chain, rules). */
#include <string.h>

#include "channel.pb-c.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "pbcanon.h"

/* s into out[cap] if it fits with its NUL; 0 otherwise. */
static int copy_str(char *out, size_t cap, const char *s)
{
    size_t n = s ? strnlen(s, cap) : cap;
    if (n >= cap)
        return 0;
    memcpy(out, s, n + 1);
    return 1;
}

int kl_channel_op_peek(const uint8_t *signed_op, size_t len, kl_channel_peek_t *out)
{
    kl_pb_signed_t so;
    const Kollega__Channel__V1__Op *p;
    int r = KL_EPROTO;

    if (out == NULL || signed_op == NULL)
        return KL_EINVAL;
    memset(out, 0, sizeof *out);
    if (len == 0 || len > KL_CHANNEL_MAX_OP)
        return len ? KL_ETOOBIG : KL_EPROTO;
    p = kl_pb_unpack_signed(&so, &kollega__channel__v1__op__descriptor, signed_op, len,
                            KL_CHANNEL_MAX_OP);
    if (p == NULL || p->body_case == KOLLEGA__CHANNEL__V1__OP__BODY__NOT_SET ||
        !kl_pb_key32(&p->actor, out->actor) ||
        !copy_str(out->channel, sizeof out->channel, p->channel) ||
        !copy_str(out->actor_address, sizeof out->actor_address, p->actor_address))
        goto out;
    out->index = p->index;
    out->kind = (kl_channel_opkind_t)p->body_case;
    r = KL_ECRYPTO;
    if (kl_pb_signed_verify(&so, out->actor, KL_CHANNEL_OP_CONTEXT, KL_CHANNEL_MAX_OP) != 0)
        goto out;
    r = 0;
out:
    kl_pb_signed_free(&so);
    if (r)
        memset(out, 0, sizeof *out);
    return r;
}
