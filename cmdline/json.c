/* The JSON writer of --json output (cmdline/json.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline/json.h"

void kl_json_init(kl_json_t *j)
{
    memset(j, 0, sizeof *j);
}

void kl_json_free(kl_json_t *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static void put(kl_json_t *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (j->len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(j->buf, cap);
        if (b == NULL) {
            j->failed = 1;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(kl_json_t *j, const char *s)
{
    put(j, s, strlen(s));
}

static void quoted(kl_json_t *j, const char *s, size_t n)
{
    put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': puts_(j, "\\\""); break;
        case '\\': puts_(j, "\\\\"); break;
        case '\n': puts_(j, "\\n"); break;
        case '\r': puts_(j, "\\r"); break;
        case '\t': puts_(j, "\\t"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(j, esc);
            } else {
                put(j, (const char *)&s[i], 1);
            }
        }
    }
    put(j, "\"", 1);
}

/* Comma and key before every value. */
static void lead(kl_json_t *j, const char *key)
{
    if (j->count[j->depth]++ > 0)
        put(j, ",", 1);
    if (key) {
        quoted(j, key, strlen(key));
        put(j, ":", 1);
    }
}

static void open_(kl_json_t *j, const char *key, const char *tok)
{
    lead(j, key);
    puts_(j, tok);
    if (j->depth + 1 >= KL_JSON_DEPTH) {
        j->failed = 1;
        return;
    }
    j->count[++j->depth] = 0;
}

static void close_(kl_json_t *j, const char *tok)
{
    if (j->depth > 0)
        j->depth--;
    puts_(j, tok);
}

void kl_json_obj_begin(kl_json_t *j, const char *key) { open_(j, key, "{"); }
void kl_json_obj_end(kl_json_t *j) { close_(j, "}"); }
void kl_json_arr_begin(kl_json_t *j, const char *key) { open_(j, key, "["); }
void kl_json_arr_end(kl_json_t *j) { close_(j, "]"); }

void kl_json_strn(kl_json_t *j, const char *key, const char *v, size_t n)
{
    lead(j, key);
    quoted(j, v, n);
}

void kl_json_str(kl_json_t *j, const char *key, const char *v)
{
    if (v == NULL) {
        kl_json_null(j, key);
        return;
    }
    kl_json_strn(j, key, v, strlen(v));
}

void kl_json_int(kl_json_t *j, const char *key, long long v)
{
    char b[32];
    lead(j, key);
    snprintf(b, sizeof b, "%lld", v);
    puts_(j, b);
}

void kl_json_uint(kl_json_t *j, const char *key, unsigned long long v)
{
    char b[32];
    lead(j, key);
    snprintf(b, sizeof b, "%llu", v);
    puts_(j, b);
}

void kl_json_bool(kl_json_t *j, const char *key, int v)
{
    lead(j, key);
    puts_(j, v ? "true" : "false");
}

void kl_json_null(kl_json_t *j, const char *key)
{
    lead(j, key);
    puts_(j, "null");
}

const char *kl_json_cstr(const kl_json_t *j)
{
    if (j->failed)
        return NULL;
    return j->buf ? j->buf : "";
}
