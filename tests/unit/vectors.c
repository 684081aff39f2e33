/* Strict JSON reader for the test vectors; see vectors.h. A
 * recursive-descent parser over a length-bounded buffer with a depth cap, so
 * even a hostile file cannot make it read out of bounds or recurse without
 * end. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

#define MAX_DEPTH 64
#define MAX_FILE (16u * 1024 * 1024)

typedef struct parser {
    const char *p;
    size_t len;
    size_t off;
    int depth;
} parser_t;

static int parse_value(parser_t *ps, kl_vec_t *out);

static void fail(const parser_t *ps, const char *what)
{
    fprintf(stderr, "vectors: JSON error at offset %zu: %s\n", ps->off, what);
}

static void skip_ws(parser_t *ps)
{
    while (ps->off < ps->len) {
        char c = ps->p[ps->off];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->off++;
    }
}

static int peek(const parser_t *ps)
{
    return ps->off < ps->len ? (unsigned char)ps->p[ps->off] : -1;
}

static int expect_word(parser_t *ps, const char *w)
{
    size_t n = strlen(w);
    if (ps->len - ps->off < n || memcmp(ps->p + ps->off, w, n) != 0) {
        fail(ps, "unknown literal");
        return -1;
    }
    ps->off += n;
    return 0;
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_u4(parser_t *ps, unsigned *v)
{
    *v = 0;
    if (ps->len - ps->off < 4) {
        fail(ps, "short \\u escape");
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        int d = hexdigit((unsigned char)ps->p[ps->off++]);
        if (d < 0) {
            fail(ps, "bad \\u escape");
            return -1;
        }
        *v = (*v << 4) | (unsigned)d;
    }
    return 0;
}

/* Append one code point as UTF-8; dst has room for 4 more bytes. */
static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string starting at the opening quote. The decoded form is never longer
 * than the source (an escape of 6 or 12 bytes yields at most 4), so one
 * allocation of the remaining input length bounds it. */
static int parse_string(parser_t *ps, char **out, size_t *outlen)
{
    size_t start = ++ps->off;
    size_t end = start;
    while (end < ps->len && ps->p[end] != '"') {
        if (ps->p[end] == '\\')
            end++;
        end++;
    }
    if (end >= ps->len) {
        fail(ps, "unterminated string");
        return -1;
    }
    char *s = malloc(end - start + 1);
    size_t n = 0;
    if (s == NULL)
        return -1;
    while (ps->off < end) {
        unsigned char c = (unsigned char)ps->p[ps->off++];
        if (c < 0x20) {
            fail(ps, "control character in string");
            goto bad;
        }
        if (c != '\\') {
            s[n++] = (char)c;
            continue;
        }
        c = (unsigned char)ps->p[ps->off++];
        switch (c) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (read_u4(ps, &cp))
                goto bad;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(ps, "lone low surrogate");
                goto bad;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - ps->off < 6 || ps->p[ps->off] != '\\' || ps->p[ps->off + 1] != 'u') {
                    fail(ps, "lone high surrogate");
                    goto bad;
                }
                ps->off += 2;
                if (read_u4(ps, &lo))
                    goto bad;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(ps, "bad surrogate pair");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(s + n, cp);
            break;
        }
        default:
            fail(ps, "bad escape");
            goto bad;
        }
    }
    if (ps->off != end) {
        fail(ps, "escape runs past end of string");
        goto bad;
    }
    ps->off = end + 1;
    s[n] = '\0';
    *out = s;
    *outlen = n;
    return 0;
bad:
    free(s);
    return -1;
}

/* Integers only: -?(0|[1-9][0-9]*), within long long. */
static int parse_int(parser_t *ps, long long *v)
{
    int neg = 0;
    unsigned long long acc = 0;
    unsigned long long lim = (unsigned long long)LLONG_MAX;
    size_t digits = 0;

    if (peek(ps) == '-') {
        neg = 1;
        lim += 1;
        ps->off++;
    }
    if (peek(ps) == '0') {
        ps->off++;
        digits = 1;
    } else {
        while (peek(ps) >= '0' && peek(ps) <= '9') {
            unsigned d = (unsigned)(peek(ps) - '0');
            if (acc > (lim - d) / 10) {
                fail(ps, "integer out of range");
                return -1;
            }
            acc = acc * 10 + d;
            ps->off++;
            digits++;
        }
    }
    if (digits == 0) {
        fail(ps, "expected a digit");
        return -1;
    }
    int c = peek(ps);
    if (c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')) {
        fail(ps, "only plain integers are supported");
        return -1;
    }
    if (neg)
        *v = acc == lim ? LLONG_MIN : -(long long)acc;
    else
        *v = (long long)acc;
    return 0;
}

/* Grow a child array by one slot; the new slot is zeroed. */
static kl_vec_t *push_item(kl_vec_t *v, size_t *cap, int with_key)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        kl_vec_t *ni = realloc(v->items, nc * sizeof *ni);
        if (ni == NULL)
            return NULL;
        v->items = ni;
        if (with_key) {
            char **nk = realloc(v->keys, nc * sizeof *nk);
            if (nk == NULL)
                return NULL;
            v->keys = nk;
        }
        *cap = nc;
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (with_key)
        v->keys[v->n] = NULL;
    return &v->items[v->n];
}

static int parse_array(parser_t *ps, kl_vec_t *out)
{
    size_t cap = 0;
    out->type = KL_VEC_ARR;
    ps->off++;
    skip_ws(ps);
    if (peek(ps) == ']') {
        ps->off++;
        return 0;
    }
    for (;;) {
        kl_vec_t *it = push_item(out, &cap, 0);
        if (it == NULL)
            return -1;
        out->n++;
        if (parse_value(ps, it))
            return -1;
        skip_ws(ps);
        int c = peek(ps);
        ps->off++;
        if (c == ']')
            return 0;
        if (c != ',') {
            fail(ps, "expected ',' or ']'");
            return -1;
        }
    }
}

static int parse_object(parser_t *ps, kl_vec_t *out)
{
    size_t cap = 0;
    out->type = KL_VEC_OBJ;
    ps->off++;
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->off++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(ps);
        if (peek(ps) != '"') {
            fail(ps, "expected a member name");
            return -1;
        }
        if (parse_string(ps, &key, &klen))
            return -1;
        if (kl_vec_get(out, key) != NULL) {
            fail(ps, "duplicate member name");
            free(key);
            return -1;
        }
        kl_vec_t *it = push_item(out, &cap, 1);
        if (it == NULL) {
            free(key);
            return -1;
        }
        out->keys[out->n] = key;
        out->n++;
        skip_ws(ps);
        if (peek(ps) != ':') {
            fail(ps, "expected ':'");
            return -1;
        }
        ps->off++;
        if (parse_value(ps, it))
            return -1;
        skip_ws(ps);
        int c = peek(ps);
        ps->off++;
        if (c == '}')
            return 0;
        if (c != ',') {
            fail(ps, "expected ',' or '}'");
            return -1;
        }
    }
}

static int parse_value(parser_t *ps, kl_vec_t *out)
{
    int r;
    if (++ps->depth > MAX_DEPTH) {
        fail(ps, "nested too deeply");
        return -1;
    }
    skip_ws(ps);
    switch (peek(ps)) {
    case '{': r = parse_object(ps, out); break;
    case '[': r = parse_array(ps, out); break;
    case '"':
        out->type = KL_VEC_STR;
        r = parse_string(ps, &out->s, &out->slen);
        break;
    case 't':
        out->type = KL_VEC_BOOL;
        out->i = 1;
        r = expect_word(ps, "true");
        break;
    case 'f':
        out->type = KL_VEC_BOOL;
        out->i = 0;
        r = expect_word(ps, "false");
        break;
    case 'n':
        out->type = KL_VEC_NULL;
        r = expect_word(ps, "null");
        break;
    case -1:
        fail(ps, "unexpected end of input");
        r = -1;
        break;
    default:
        out->type = KL_VEC_INT;
        r = parse_int(ps, &out->i);
        break;
    }
    ps->depth--;
    return r;
}

static void free_children(kl_vec_t *v)
{
    for (size_t k = 0; k < v->n; k++) {
        free_children(&v->items[k]);
        if (v->keys)
            free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
}

void kl_vec_free(kl_vec_t *v)
{
    if (v == NULL)
        return;
    free_children(v);
    free(v);
}

kl_vec_t *kl_vec_parse(const char *text, size_t len)
{
    parser_t ps = {text, len, 0, 0};
    kl_vec_t *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    if (parse_value(&ps, v))
        goto bad;
    skip_ws(&ps);
    if (ps.off != ps.len) {
        fail(&ps, "trailing data after the document");
        goto bad;
    }
    return v;
bad:
    kl_vec_free(v);
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            if (cap >= MAX_FILE)
                goto bad;
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                goto bad;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                goto bad;
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
bad:
    fclose(f);
    free(buf);
    return NULL;
}

kl_vec_t *kl_vec_load(const char *filename)
{
    char path[4096];
    const char *dir = getenv("KL_VECTORS_DIR");
    char fallback[4096];
    size_t len = 0;

    /* Without the env var (a test run by hand), look in the repository:
     * this file is tests/unit/vectors.c, the vectors are in tests/vectors. */
    if (dir == NULL || dir[0] == '\0') {
        const char *slash = strrchr(__FILE__, '/');
        int dl = slash ? (int)(slash - __FILE__) : 1;
        snprintf(fallback, sizeof fallback, "%.*s/../vectors", dl, slash ? __FILE__ : ".");
        dir = fallback;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, filename) >= sizeof path) {
        fprintf(stderr, "vectors: path too long\n");
        return NULL;
    }
    char *text = read_file(path, &len);
    if (text == NULL) {
        fprintf(stderr, "vectors: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    kl_vec_t *v = kl_vec_parse(text, len);
    if (v == NULL)
        fprintf(stderr, "vectors: cannot parse %s\n", path);
    free(text);
    return v;
}

const kl_vec_t *kl_vec_get(const kl_vec_t *obj, const char *key)
{
    if (obj == NULL || obj->type != KL_VEC_OBJ || key == NULL)
        return NULL;
    for (size_t k = 0; k < obj->n; k++)
        if (obj->keys[k] != NULL && strcmp(obj->keys[k], key) == 0)
            return &obj->items[k];
    return NULL;
}

const kl_vec_t *kl_vec_at(const kl_vec_t *arr, size_t i)
{
    if (arr == NULL || arr->type != KL_VEC_ARR || i >= arr->n)
        return NULL;
    return &arr->items[i];
}

size_t kl_vec_len(const kl_vec_t *arr)
{
    if (arr == NULL || (arr->type != KL_VEC_ARR && arr->type != KL_VEC_OBJ))
        return 0;
    return arr->n;
}

const char *kl_vec_strval(const kl_vec_t *v)
{
    return v != NULL && v->type == KL_VEC_STR ? v->s : NULL;
}

const char *kl_vec_str(const kl_vec_t *obj, const char *key)
{
    return kl_vec_strval(kl_vec_get(obj, key));
}

long long kl_vec_int(const kl_vec_t *obj, const char *key, int *ok)
{
    const kl_vec_t *v = kl_vec_get(obj, key);
    int good = v != NULL && v->type == KL_VEC_INT;
    if (ok)
        *ok = good;
    return good ? v->i : 0;
}

uint8_t *kl_vec_hexval(const kl_vec_t *v, size_t *len)
{
    const char *s = kl_vec_strval(v);
    if (s == NULL || v->slen % 2 != 0)
        return NULL;
    size_t n = v->slen / 2;
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        int hi = hexdigit((unsigned char)s[2 * k]);
        int lo = hexdigit((unsigned char)s[2 * k + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[k] = (uint8_t)((hi << 4) | lo);
    }
    *len = n;
    return out;
}

uint8_t *kl_vec_hex(const kl_vec_t *obj, const char *key, size_t *len)
{
    return kl_vec_hexval(kl_vec_get(obj, key), len);
}

int kl_vec_hex_exact(const kl_vec_t *obj, const char *key, uint8_t *out, size_t want)
{
    size_t n = 0;
    uint8_t *b = kl_vec_hex(obj, key, &n);
    if (b == NULL)
        return -1;
    if (n != want) {
        free(b);
        return -1;
    }
    memcpy(out, b, n);
    free(b);
    return 0;
}
