/* Internal to the client's request modules (rpc_*.c): the generated relay
 * protocol and the shorthands they build frames with. */
#ifndef KOLLEGA_CLIENT_RPC_INT_H
#define KOLLEGA_CLIENT_RPC_INT_H

#include <stddef.h>

#include "relay.pb-c.h"
#include "rpc.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
/* Make msg the body of frame f: f.body_case = BODY(CASE), f.field = &msg. */
#define SET_BODY(f, field, CASE, msg) ((f).body_case = BODY(CASE), (f).field = &(msg))

/* A bytes field that borrows p[0..n) (protobuf-c only reads it). */
static inline ProtobufCBinaryData kl_rpc_bytes(const void *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)p};
}

#endif
