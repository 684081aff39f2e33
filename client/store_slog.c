/* What the client store keeps alike for every signed log, a group's
 * ('#...') or a channel's ('!...'): the validated ops, and the record of
 * which member got which of our keys. One function serves both, by the
 * log address's sigil; each kind keeps its own tables. See store.h. */
#include "kollega/channel.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "store_int.h"

/* The tables of a log kind, and the largest op it takes. */
typedef struct slog_tables {
    const char *op_put, *op_each, *ops;
    const char *sent_mark, *sent_has;
    size_t max_op;
} slog_tables_t;

static const slog_tables_t GROUP = {
    "INSERT INTO group_ops(grp, idx, box) VALUES(?1, ?2, ?3)",
    "SELECT idx, box FROM group_ops WHERE grp = ?1 ORDER BY idx",
    "group_ops",
    "INSERT OR IGNORE INTO sk_sent(grp, key_id, member) VALUES(?1, ?2, ?3)",
    "SELECT 1 FROM sk_sent WHERE grp = ?1 AND key_id = ?2 AND member = ?3",
    KL_GROUP_MAX_OP,
};

static const slog_tables_t CHANNEL = {
    "INSERT INTO channel_ops(chan, idx, box) VALUES(?1, ?2, ?3)",
    "SELECT idx, box FROM channel_ops WHERE chan = ?1 ORDER BY idx",
    "channel_ops",
    "INSERT OR IGNORE INTO channel_key_sent(chan, epoch, member) VALUES(?1, ?2, ?3)",
    "SELECT 1 FROM channel_key_sent WHERE chan = ?1 AND epoch = ?2 AND member = ?3",
    KL_CHANNEL_MAX_OP,
};

static const slog_tables_t *tables(const char *log)
{
    return log[0] == '#' ? &GROUP : log[0] == '!' ? &CHANNEL : NULL;
}

int kl_store_slog_op_put(kl_store_t *st, const char *log, uint64_t idx, const uint8_t *op,
                         size_t len)
{
    const slog_tables_t *t = tables(log);
    if (t == NULL || len == 0)
        return KL_EINVAL;
    if (len > t->max_op)
        return KL_ETOOBIG;
    return kl_store_log_put(st, t->op_put, t->ops, log, idx, op, len);
}

int kl_store_slog_op_each(kl_store_t *st, const char *log,
                          int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                          void *ud)
{
    const slog_tables_t *t = tables(log);
    return t ? kl_store_log_each(st, t->op_each, t->ops, log, cb, ud) : KL_EINVAL;
}

int kl_store_slog_key_sent(kl_store_t *st, const char *log, uint64_t key, const uint8_t member[32],
                           int mark, int *sent)
{
    const slog_tables_t *t = tables(log);
    if (t == NULL)
        return KL_EINVAL;
    if (mark)
        return kl_store_run(st, t->sent_mark, KL_ARGS(KL_TEXT(log), KL_INT(key),
                                                      KL_BLOB(member, 32)));
    return kl_store_exists(st, sent, t->sent_has, KL_ARGS(KL_TEXT(log), KL_INT(key),
                                                          KL_BLOB(member, 32)));
}
