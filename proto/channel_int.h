/* Internals of the broadcast-channel validator shared by proto/channel.c
 * (the op log) and proto/channel_post.c (posts and channel-key sealing).
 * Not installed; the contract is include/kollega/channel.h. */
#ifndef KOLLEGA_PROTO_CHANNEL_INT_H
#define KOLLEGA_PROTO_CHANNEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/channel.h"

#define KL_CH_ADDR_CAP 256

typedef struct kl_ch_entry {
    uint8_t key[32];
    char address[KL_CH_ADDR_CAP];
} kl_ch_entry_t;

struct kl_channel {
    char address[KL_CH_ADDR_CAP];
    uint64_t next;
    uint8_t head[32];
    kl_ch_entry_t pub[KL_CHANNEL_MAX_PUBLISHERS]; /* pub[0] is the owner */
    size_t npub;
    int members_only;
    uint64_t epoch;            /* 0 before create */
    kl_ch_entry_t *mem;        /* added members, malloc'd, grows to KL_CHANNEL_MAX_MEMBERS */
    size_t nmem, capmem;
};

/* A user address that fits KL_CH_ADDR_CAP. */
int kl_ch_user_addr_ok(const char *s);
/* Index of key among the publishers / added members, or SIZE_MAX. */
size_t kl_ch_find_pub(const kl_channel_t *c, const uint8_t key[32]);
size_t kl_ch_find_mem(const kl_channel_t *c, const uint8_t key[32]);
/* A verdict as an error code (channel.h). */
int kl_ch_err_of(kl_channel_verr_t why);

#endif
