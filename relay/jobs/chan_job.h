/* The broadcast-channel part of a storage job (kl_job_t kinds
 * KL_JOB_CHAN_*, u.chan): inputs filled by dispatch_channel.c on the loop
 * thread, outputs filled by jobs_channel.c on the storage thread. */
#ifndef KOLLEGA_RELAY_CHAN_JOB_H
#define KOLLEGA_RELAY_CHAN_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "oplog_job.h"
#include "storage/storage.h"

typedef struct kl_chan_job {
    /* in */
    char address[KL_ADDR_MAX + 1]; /* the channel "!name@relay" */
    uint64_t user;                 /* the caller (0: remote, resolved by the job) */
    /* A federation peer's caller (dispatch_channel.c): "handle@peer" or
     * "@peer" (the peer relay itself); "" for a local one. remote_key is
     * the caller's identity key in both cases (members-only checks). */
    char remote[KL_ADDR_MAX + 1];
    uint8_t remote_key[32];
    const uint8_t *data;           /* op or post, in the job's own allocation */
    size_t len;
    uint64_t from;                 /* op: its index; fetch: from_index; read: after; ack: seq */
    uint32_t limit;                /* read */
    size_t max_bytes;              /* read, fetch */
    uint32_t backlog;              /* subscribe */
    uint64_t expires_ms;           /* post */
    kl_storage_quota_t quota;      /* post: per channel log */
    /* out */
    int verr;                      /* kl_channel_verr_t of a refusal */
    kl_storage_channel_t chan;     /* the row after the job */
    int subscribed;
    uint64_t cursor;               /* subscribe: where the cursor starts */
    uint64_t seq;                  /* post: the entry's seq */
    kl_oplog_out_t out;            /* entries; subscribers and mirroring peers (op, post) */
    kl_storage_cinfo_t *infos;     /* list */
    size_t n_infos;
} kl_chan_job_t;

#endif
