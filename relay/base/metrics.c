#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "kollega/version.h"
#include "metrics.h"
#include "relay.pb-c.h"

/* Frame body field numbers below this are counted by name; slot 0 holds
 * "other" (a number the schema does not name, which protobuf-c cannot
 * even produce: the slot is a guard, not an expected value). */
#define FRAME_SLOTS 64
/* ErrorCode values below this are counted by name; ERR_OTHER the rest. */
#define ERR_SLOTS 32
#define ERR_OTHER ERR_SLOTS
/* The rendered text never grows past this (it is a few KiB). */
#define RENDER_MAX (1u << 20)

const double kl_metrics_commit_le[KL_METRICS_COMMIT_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

struct kl_metrics {
    atomic_uint_fast64_t frames[FRAME_SLOTS];
    atomic_uint_fast64_t errors[ERR_SLOTS + 1];
    atomic_uint_fast64_t commits;
    atomic_uint_fast64_t commit_failures;
    /* Per bucket, not cumulative: the renderer adds them up, so that the
     * +Inf bucket and _count are always the same number even while the
     * storage thread observes. */
    atomic_uint_fast64_t commit_hist[KL_METRICS_COMMIT_BUCKETS + 1];
    atomic_uint_fast64_t commit_ns;
    uint64_t le_ns[KL_METRICS_COMMIT_BUCKETS];
};

kl_metrics_t *kl_metrics_new(void)
{
    kl_metrics_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof m->frames / sizeof m->frames[0]; i++)
        atomic_init(&m->frames[i], 0);
    for (size_t i = 0; i < sizeof m->errors / sizeof m->errors[0]; i++)
        atomic_init(&m->errors[i], 0);
    for (size_t i = 0; i < sizeof m->commit_hist / sizeof m->commit_hist[0]; i++)
        atomic_init(&m->commit_hist[i], 0);
    atomic_init(&m->commits, 0);
    atomic_init(&m->commit_failures, 0);
    atomic_init(&m->commit_ns, 0);
    for (size_t i = 0; i < KL_METRICS_COMMIT_BUCKETS; i++)
        m->le_ns[i] = (uint64_t)(kl_metrics_commit_le[i] * 1e9 + 0.5);
    return m;
}

void kl_metrics_free(kl_metrics_t *m)
{
    free(m);
}

static void bump(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t get(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)c, memory_order_relaxed);
}

/* The oneof field of Frame with number type, or NULL. */
static const ProtobufCFieldDescriptor *frame_field(unsigned type)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(&kollega__relay__v1__frame__descriptor, type);
    return fd && (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? fd : NULL;
}

void kl_metrics_frame_received(kl_metrics_t *m, unsigned type)
{
    if (m == NULL)
        return;
    bump(&m->frames[type < FRAME_SLOTS && frame_field(type) ? type : 0]);
}

void kl_metrics_error_sent(kl_metrics_t *m, unsigned code)
{
    if (m == NULL)
        return;
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&kollega__relay__v1__error_code__descriptor,
                                             (int)code);
    bump(&m->errors[code < ERR_SLOTS && v ? code : ERR_OTHER]);
}

void kl_metrics_commit(kl_metrics_t *m, int committed, uint64_t ns)
{
    if (m == NULL)
        return;
    if (!committed) {
        bump(&m->commit_failures);
        return;
    }
    size_t b = 0;
    while (b < KL_METRICS_COMMIT_BUCKETS && ns > m->le_ns[b])
        b++;
    bump(&m->commit_hist[b]);
    atomic_fetch_add_explicit(&m->commit_ns, ns, memory_order_relaxed);
    bump(&m->commits);
}

/* ---- rendering ---- */

typedef struct text {
    char *p;
    size_t len, cap;
    int err;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...)
{
    if (t->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->err = KL_EINVAL;
            return;
        }
        if (t->p && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *np = cap <= RENDER_MAX ? realloc(t->p, cap) : NULL;
        if (np == NULL) {
            t->err = KL_ENOMEM;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

static void head(text_t *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP kollega_relay_%s %s\n# TYPE kollega_relay_%s %s\n", name, help, name, type);
}

/* A label value in the exposition format's escaping (\\, \", \n). The
 * values are relay names and schema names, so this never changes them; it
 * keeps the format valid whatever a future caller passes. */
static void put_label(text_t *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            put(t, "\\%c", *v);
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

/* One sample of metric name with one label key="value" (escaped). */
static void sample(text_t *t, const char *name, const char *key, const char *value, uint64_t v)
{
    put(t, "kollega_relay_%s{%s=\"", name, key);
    put_label(t, value);
    put(t, "\"} %llu\n", (unsigned long long)v);
}

static void peer_sample(text_t *t, const char *name, const kl_metrics_peer_t *p, uint64_t v)
{
    sample(t, name, "peer", p->name, v);
}

static void render_frames(text_t *t, const kl_metrics_t *m)
{
    const ProtobufCMessageDescriptor *d = &kollega__relay__v1__frame__descriptor;
    head(t, "frames_received_total", "counter",
         "Frames received from clients and decoded, by frame type (relay.proto Frame body).");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || fd->id >= FRAME_SLOTS)
            continue;
        sample(t, "frames_received_total", "type", fd->name, get(&m->frames[fd->id]));
    }
    sample(t, "frames_received_total", "type", "other", get(&m->frames[0]));
}

static void render_errors(text_t *t, const kl_metrics_t *m)
{
    const ProtobufCEnumDescriptor *d = &kollega__relay__v1__error_code__descriptor;
    head(t, "errors_sent_total", "counter",
         "Error frames sent to clients, by error code (relay.proto ErrorCode).");
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *v = &d->values[i];
        if (v->value <= 0 || v->value >= ERR_SLOTS) /* 0: ERROR_CODE_UNSPECIFIED, never sent */
            continue;
        sample(t, "errors_sent_total", "code", v->name, get(&m->errors[v->value]));
    }
    sample(t, "errors_sent_total", "code", "other",
           get(&m->errors[ERR_OTHER]) + get(&m->errors[0]));
}

static void render_commits(text_t *t, const kl_metrics_t *m)
{
    head(t, "storage_commits_total", "counter",
         "Storage transactions committed (one group commit holds many requests).");
    put(t, "kollega_relay_storage_commits_total %llu\n", (unsigned long long)get(&m->commits));
    head(t, "storage_commit_failures_total", "counter",
         "Storage transactions that did not commit (full disk, lock held too long); their "
         "requests were answered UNAVAILABLE or retried one by one.");
    put(t, "kollega_relay_storage_commit_failures_total %llu\n",
        (unsigned long long)get(&m->commit_failures));
    head(t, "storage_commit_duration_seconds", "histogram",
         "Time of one committed storage transaction, from BEGIN to the end of COMMIT "
         "(fsync included).");
    uint64_t cum = 0;
    for (size_t i = 0; i < KL_METRICS_COMMIT_BUCKETS; i++) {
        cum += get(&m->commit_hist[i]);
        put(t, "kollega_relay_storage_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
            kl_metrics_commit_le[i], (unsigned long long)cum);
    }
    cum += get(&m->commit_hist[KL_METRICS_COMMIT_BUCKETS]);
    uint64_t ns = get(&m->commit_ns);
    put(t, "kollega_relay_storage_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)cum);
    put(t, "kollega_relay_storage_commit_duration_seconds_sum %llu.%09llu\n",
        (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
    put(t, "kollega_relay_storage_commit_duration_seconds_count %llu\n", (unsigned long long)cum);
}

static void render_view(text_t *t, const kl_metrics_view_t *v)
{
    head(t, "connections", "gauge", "Client connections open now (handshaking included).");
    put(t, "kollega_relay_connections %llu\n", (unsigned long long)v->connections);
    head(t, "connections_accepted_total", "counter", "Client connections accepted.");
    put(t, "kollega_relay_connections_accepted_total %llu\n", (unsigned long long)v->accepted);
    if (v->have_storage) {
        head(t, "users", "gauge", "Users registered on this relay.");
        put(t, "kollega_relay_users %llu\n", (unsigned long long)v->users);
        head(t, "stored_entries", "gauge",
             "Entries stored and not yet acked or expired (inboxes, groups, channels, "
             "federation outboxes).");
        put(t, "kollega_relay_stored_entries %llu\n", (unsigned long long)v->entries);
        head(t, "stored_entry_bytes", "gauge", "Body bytes of the stored entries.");
        put(t, "kollega_relay_stored_entry_bytes %llu\n", (unsigned long long)v->entry_bytes);
    }
    if (!v->federation)
        return;
    head(t, "federation_links", "gauge",
         "Federation links up (handshake done), outgoing and inbound.");
    put(t, "kollega_relay_federation_links %llu\n", (unsigned long long)v->fed_links);
    if (v->n_peers == 0)
        return;
    head(t, "federation_peer_up", "gauge", "1 while this relay's link to the peer is up.");
    for (size_t i = 0; i < v->n_peers; i++)
        peer_sample(t, "federation_peer_up", &v->peers[i], v->peers[i].up ? 1 : 0);
    if (!v->have_storage)
        return;
    head(t, "federation_outbox_entries", "gauge",
         "Entries waiting in the outbox to the peer (not yet accepted by it).");
    for (size_t i = 0; i < v->n_peers; i++)
        if (v->peers[i].have_depth)
            peer_sample(t, "federation_outbox_entries", &v->peers[i], v->peers[i].depth);
    head(t, "federation_outbox_bytes", "gauge", "Body bytes of the outbox to the peer.");
    for (size_t i = 0; i < v->n_peers; i++)
        if (v->peers[i].have_depth)
            peer_sample(t, "federation_outbox_bytes", &v->peers[i], v->peers[i].depth_bytes);
}

int kl_metrics_render(const kl_metrics_t *m, const kl_metrics_view_t *v, char **out, size_t *len)
{
    text_t t = {0};
    *out = NULL;
    *len = 0;
    head(&t, "build_info", "gauge", "Always 1; the label says which version runs.");
    put(&t, "kollega_relay_build_info{version=\"");
    put_label(&t, KL_VERSION);
    put(&t, "\"} 1\n");
    render_view(&t, v);
    render_frames(&t, m);
    render_errors(&t, m);
    render_commits(&t, m);
    if (t.err) {
        free(t.p);
        return t.err;
    }
    *out = t.p;
    *len = t.len;
    return 0;
}
