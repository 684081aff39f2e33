/* The storage-thread steps of group and channel jobs (oplog_job.h). */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "oplog_job.h"

/* Ops read per step while replaying a log. */
#define REPLAY_CHUNK 256

void kl_oplog_out_free(kl_oplog_out_t *o)
{
    kl_storage_entries_free(o->entries, o->n);
    free(o->push);
    free(o->notify);
    memset(o, 0, sizeof *o);
}

/* Rebuild the validated state of a stored row from its ops. Every stored
 * op was validated in full when it arrived, so one that fails now means the
 * database was edited: KL_EIO, and nothing is built on it. */
static int replay(kl_storage_t *st, const kl_oplog_kind_t *k, const char *address,
                  const kl_oplog_row_t *row, void **out)
{
    void *state = NULL;
    int r = k->state_new(&state, address);
    uint64_t from = 0;
    while (r == 0 && from < row->next_index) {
        kl_storage_entry_t *e = NULL;
        size_t n = 0;
        int more = 0;
        r = k->read_ops(st, row->id, from, REPLAY_CHUNK, SIZE_MAX, &e, &n, &more);
        if (r == 0 && n == 0)
            r = KL_EIO;
        for (size_t i = 0; i < n && r == 0; i++)
            if (e[i].seq != from + i || k->replay(state, e[i].body, e[i].len) != 0)
                r = KL_EIO;
        from += n;
        kl_storage_entries_free(e, n);
    }
    if (r == 0 && k->state.next_index(state) != row->next_index)
        r = KL_EIO;
    if (r) {
        if (state)
            k->state.free(state);
        return r;
    }
    *out = state;
    return 0;
}

int kl_oplog_state(kl_storage_t *st, const kl_oplog_kind_t *k, const char *address,
                   const kl_oplog_row_t *row, void **out)
{
    kl_scache_t *c = k->cache(st);
    *out = kl_scache_find(c, row->id, row->next_index, row->head);
    if (*out != NULL)
        return 0;
    int r = replay(st, k, address, row, out);
    if (r == 0) {
        *out = kl_scache_keep(c, &k->state, row->id, *out);
        if (*out == NULL)
            r = KL_ENOMEM;
    }
    return r;
}

int kl_oplog_op_state(kl_storage_t *st, const kl_oplog_kind_t *k, const char *address,
                      int found, const kl_oplog_row_t *row, uint64_t index, uint64_t max_ops,
                      void **state, int *fresh)
{
    *state = NULL;
    *fresh = 0;
    if (!found && index != 0)
        return KL_ENOTFOUND;
    /* No row, or one without ops (a channel mirror's placeholder,
     * storage_cmirror.h): the op creates the log. */
    if (index == 0 && (!found || row->next_index == 0)) {
        int r = k->state_new(state, address);
        *fresh = r == 0;
        return r;
    }
    if (index == 0)
        return KL_EEXIST;
    if (index != row->next_index)
        return KL_ESTATE;
    if (max_ops != 0 && index >= max_ops)
        return KL_ELIMIT;
    return kl_oplog_state(st, k, address, row, state);
}

void kl_oplog_keep(kl_storage_t *st, const kl_oplog_kind_t *k, uint64_t id, void *state)
{
    kl_scache_keep(k->cache(st), &k->state, id, state);
}

int kl_oplog_ack(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t seq)
{
    int r = kl_storage_log_ack(st, log, reader, seq);
    return r == KL_ENOTFOUND ? KL_EREFUSED : r;
}
