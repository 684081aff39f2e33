/* relay/metrics.c: counters and their Prometheus text rendering (format
 * 0.0.4): HELP and TYPE before every family, label values from fixed sets,
 * histogram buckets cumulative and ending in +Inf, _sum and _count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/version.h"
#include "base/metrics.h"
#include "relay.pb-c.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define MS 1000000ull /* ns */

static char *render(const kl_metrics_t *m, const kl_metrics_view_t *v)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kl_metrics_render(m, v, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* 1 if text holds exactly this line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- in ---\n%s", line, text);
}

/* The value of the sample with exactly this name and labels. */
static unsigned long long sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
    fail_msg("no sample %s", series);
    return 0;
}

/* Walk every line: comments are "# HELP name text" or "# TYPE name type"
 * (HELP first, once per family, right before its samples); every sample's
 * family (the name less _bucket/_sum/_count for a histogram) was declared
 * just before; names carry the prefix; the text ends with a newline. */
static void check_format(const char *text)
{
    char family[128] = "", type[32] = "";
    char seen[4096] = " ";
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        assert_non_null(e);
        char line[512];
        size_t n = (size_t)(e - p);
        assert_true(n > 0 && n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = e + 1;
        assert_true(line[n - 1] != ' ');
        if (strncmp(line, "# HELP ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            assert_int_equal(strncmp(name, "kollega_relay_", 14), 0);
            char key[140];
            snprintf(key, sizeof key, " %s ", name);
            if (strstr(seen, key))
                fail_msg("family %s declared twice", name);
            assert_true(strlen(seen) + strlen(key) < sizeof seen);
            strcat(seen, key + 1);
            snprintf(family, sizeof family, "%s", name);
            type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_string_equal(name, family); /* HELP then TYPE of the same family */
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            if (strcmp(type, "counter") == 0)
                assert_non_null(strstr(name, "_total"));
            continue;
        }
        assert_true(line[0] != '#');
        assert_true(type[0] != '\0'); /* a sample after HELP and TYPE */
        size_t fl = strlen(family);
        assert_int_equal(strncmp(line, family, fl), 0);
        const char *rest = line + fl;
        if (strcmp(type, "histogram") == 0 && *rest == '_') {
            if (strncmp(rest, "_bucket{", 8) == 0)
                rest += 7;
            else if (strncmp(rest, "_sum ", 5) == 0 || strncmp(rest, "_count ", 7) == 0)
                rest = strchr(rest, ' ');
        }
        assert_true(*rest == ' ' || *rest == '{');
        if (*rest == '{') {
            const char *close = strstr(rest, "\"} ");
            assert_non_null(close);
        }
    }
}

static void test_metrics_empty_render(void **state)
{
    (void)state;
    kl_metrics_t *m = kl_metrics_new();
    assert_non_null(m);
    kl_metrics_view_t v = {0};
    char *text = render(m, &v);
    check_format(text);
    expect_line(text, "# HELP kollega_relay_build_info Always 1; the label says which version runs.");
    expect_line(text, "# TYPE kollega_relay_build_info gauge");
    char bi[128];
    snprintf(bi, sizeof bi, "kollega_relay_build_info{version=\"%s\"} 1", KL_VERSION);
    expect_line(text, bi);
    expect_line(text, "# TYPE kollega_relay_connections gauge");
    expect_line(text, "kollega_relay_connections 0");
    expect_line(text, "# TYPE kollega_relay_frames_received_total counter");
    expect_line(text, "kollega_relay_frames_received_total{type=\"send\"} 0");
    expect_line(text, "kollega_relay_errors_sent_total{code=\"RATE_LIMITED\"} 0");
    expect_line(text, "# TYPE kollega_relay_storage_commit_duration_seconds histogram");
    expect_line(text, "kollega_relay_storage_commit_duration_seconds_bucket{le=\"+Inf\"} 0");
    expect_line(text, "kollega_relay_storage_commit_duration_seconds_sum 0.000000000");
    expect_line(text, "kollega_relay_storage_commit_duration_seconds_count 0");
    /* Storage counts not known yet, no federation: left out, not zero. */
    assert_null(strstr(text, "kollega_relay_users"));
    assert_null(strstr(text, "kollega_relay_stored_entries"));
    assert_null(strstr(text, "federation"));
    /* Unspecified is never sent: no label for it. */
    assert_null(strstr(text, "UNSPECIFIED"));
    free(text);
    kl_metrics_free(m);
}

static void test_metrics_counters_by_fixed_label(void **state)
{
    (void)state;
    kl_metrics_t *m = kl_metrics_new();
    kl_metrics_frame_received(m, BODY(SEND));
    kl_metrics_frame_received(m, BODY(SEND));
    kl_metrics_frame_received(m, BODY(PING));
    kl_metrics_frame_received(m, 39);      /* a field number the schema has not */
    kl_metrics_frame_received(m, 1);       /* "id": not a body */
    kl_metrics_frame_received(m, 100000);  /* anything else: "other", never its number */
    kl_metrics_error_sent(m, CODE(RATE_LIMITED));
    kl_metrics_error_sent(m, 4711);
    /* Metrics off: nothing to count, nothing breaks. */
    kl_metrics_frame_received(NULL, BODY(SEND));
    kl_metrics_error_sent(NULL, CODE(INTERNAL));
    kl_metrics_commit(NULL, 1, MS);
    kl_metrics_view_t v = {0};
    char *text = render(m, &v);
    check_format(text);
    assert_int_equal(sample(text, "kollega_relay_frames_received_total{type=\"send\"}"), 2);
    assert_int_equal(sample(text, "kollega_relay_frames_received_total{type=\"ping\"}"), 1);
    assert_int_equal(sample(text, "kollega_relay_frames_received_total{type=\"other\"}"), 3);
    assert_int_equal(sample(text, "kollega_relay_frames_received_total{type=\"auth\"}"), 0);
    assert_null(strstr(text, "type=\"id\""));
    assert_null(strstr(text, "100000"));
    assert_null(strstr(text, "4711"));
    assert_int_equal(sample(text, "kollega_relay_errors_sent_total{code=\"RATE_LIMITED\"}"), 1);
    assert_int_equal(sample(text, "kollega_relay_errors_sent_total{code=\"other\"}"), 1);
    assert_int_equal(sample(text, "kollega_relay_errors_sent_total{code=\"INTERNAL\"}"), 0);
    free(text);
    kl_metrics_free(m);
}

/* Offset of needle in text (which must hold it). gcc 12 at -O3 takes the
 * pointer strstr returns for one into a freed block (-Wdangling-pointer, a
 * false positive: text lives until the test frees it at its end). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
static size_t at(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    assert_non_null(p);
    return (size_t)(p - text);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static void test_metrics_commit_histogram_cumulative(void **state)
{
    (void)state;
    kl_metrics_t *m = kl_metrics_new();
    kl_metrics_commit(m, 1, 300000);        /* 0.3 ms: le 0.0005 */
    kl_metrics_commit(m, 1, MS);            /* exactly 1 ms: le 0.001 (bounds are inclusive) */
    kl_metrics_commit(m, 1, 2 * MS);        /* le 0.0025 */
    kl_metrics_commit(m, 1, 2 * MS);
    kl_metrics_commit(m, 1, 7000 * MS);     /* 7 s: only +Inf */
    kl_metrics_commit(m, 0, 50 * MS);       /* not committed: no observation */
    kl_metrics_view_t v = {0};
    char *text = render(m, &v);
    check_format(text);
    static const char *expect[][2] = {
        {"0.0005", "1"}, {"0.001", "2"}, {"0.0025", "4"}, {"0.005", "4"}, {"0.01", "4"},
        {"0.025", "4"},  {"0.05", "4"},  {"0.1", "4"},    {"0.25", "4"},  {"0.5", "4"},
        {"1", "4"},      {"2.5", "4"},   {"5", "4"},      {"+Inf", "5"},
    };
    assert_int_equal(sizeof expect / sizeof expect[0], KL_METRICS_COMMIT_BUCKETS + 1);
    /* Positions as offsets into text (found with at()), compared in order. */
    size_t prev = 0;
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "kollega_relay_storage_commit_duration_seconds_bucket{le=\"%s\"} %s",
                 expect[i][0], expect[i][1]);
        expect_line(text, line);
        /* In increasing order of le, +Inf last. */
        size_t here = at(text, line);
        assert_true(here > prev);
        prev = here;
    }
    size_t sum = at(text, "kollega_relay_storage_commit_duration_seconds_sum ");
    size_t count = at(text, "kollega_relay_storage_commit_duration_seconds_count ");
    assert_true(sum > prev && count > sum);
    expect_line(text, "kollega_relay_storage_commit_duration_seconds_sum 7.005300000");
    expect_line(text, "kollega_relay_storage_commit_duration_seconds_count 5");
    expect_line(text, "kollega_relay_storage_commits_total 5");
    expect_line(text, "kollega_relay_storage_commit_failures_total 1");
    free(text);
    kl_metrics_free(m);
}

static void test_metrics_view_gauges_and_peers(void **state)
{
    (void)state;
    kl_metrics_t *m = kl_metrics_new();
    kl_metrics_peer_t peers[3] = {
        {.name = "stockholm.example.se", .up = 1, .have_depth = 1, .depth = 12,
         .depth_bytes = 3400},
        {.name = "odd\"na\\me", .up = 0, .have_depth = 1, .depth = 0},
        {.name = "new.example.org", .up = 0, .have_depth = 0},
    };
    kl_metrics_view_t v = {.connections = 7, .accepted = 42, .have_storage = 1, .users = 3,
                           .entries = 5, .entry_bytes = 900, .federation = 1, .fed_links = 2,
                           .peers = peers, .n_peers = 3};
    char *text = render(m, &v);
    check_format(text);
    expect_line(text, "kollega_relay_connections 7");
    expect_line(text, "kollega_relay_connections_accepted_total 42");
    expect_line(text, "# TYPE kollega_relay_users gauge");
    expect_line(text, "kollega_relay_users 3");
    expect_line(text, "kollega_relay_stored_entries 5");
    expect_line(text, "kollega_relay_stored_entry_bytes 900");
    expect_line(text, "kollega_relay_federation_links 2");
    expect_line(text, "kollega_relay_federation_peer_up{peer=\"stockholm.example.se\"} 1");
    expect_line(text, "kollega_relay_federation_peer_up{peer=\"odd\\\"na\\\\me\"} 0");
    expect_line(text, "kollega_relay_federation_peer_up{peer=\"new.example.org\"} 0");
    expect_line(text, "kollega_relay_federation_outbox_entries{peer=\"stockholm.example.se\"} 12");
    expect_line(text, "kollega_relay_federation_outbox_bytes{peer=\"stockholm.example.se\"} 3400");
    /* A depth storage has not reported is left out, not shown as 0. */
    assert_null(strstr(text, "kollega_relay_federation_outbox_entries{peer=\"new.example.org\"}"));
    free(text);
    kl_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_empty_render),
        cmocka_unit_test(test_metrics_counters_by_fixed_label),
        cmocka_unit_test(test_metrics_commit_histogram_cumulative),
        cmocka_unit_test(test_metrics_view_gauges_and_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
