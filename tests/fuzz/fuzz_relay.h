/* The relay dispatch fixture of the fuzz targets and seed generators
 * (fuzz.h for determinism): the real sqlite backend in a temporary
 * directory with registered users. The library kl_fuzz_relay
 * (fuzz_relay.c). */
#ifndef KOLLEGA_FUZZ_RELAY_H
#define KOLLEGA_FUZZ_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/dispatch.h"
#include "fuzz.h"
#include "storage/storage.h"

/* ---- relay dispatch fixture ------------------------------------------ */
#define FUZZ_INVITE "fuzzinvitecode0123456789_-ABCDEF"

typedef struct fuzz_user {
    char handle[KL_HANDLE_MAX + 1];
    uint8_t pk[32];
    uint8_t sk[64];
    kl_storage_user_t u;     /* id/inbox once registered */
} fuzz_user_t;

typedef struct fuzz_relay {
    kl_storage_t *st;        /* the real sqlite backend, in a temp dir */
    kl_dispatch_cfg_t cfg;
    uint8_t hh[64];          /* the handshake hash every session uses */
    fuzz_user_t alice;       /* registered, 3 entries in her inbox */
    fuzz_user_t bob;         /* registered, signed prekey + 5 one-time prekeys */
    fuzz_user_t carol;       /* not registered: her keys sign register seeds */
} fuzz_relay_t;

/* Built on first use. */
fuzz_relay_t *fuzz_relay_get(void);

#endif
