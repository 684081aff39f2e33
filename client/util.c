#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kollega/err.h"
#include "util.h"

uint64_t kl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void kl_format_time(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(out, cap, "?");
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 if ill-formed or NUL. */
static size_t seq_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (left < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

int kl_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = seq_len(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

int kl_utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    *out = NULL;
    *outlen = 0;
    if (len > (SIZE_MAX - 1) / 3)
        return KL_ETOOBIG;
    /* Each bad byte becomes 3 bytes (U+FFFD), so 3 * len bounds the copy. */
    char *o = malloc(3 * len + 1);
    if (o == NULL)
        return KL_ENOMEM;
    size_t i = 0, j = 0;
    while (i < len) {
        size_t n = seq_len(p + i, len - i);
        if (n == 0) {
            memcpy(o + j, "\xef\xbf\xbd", 3);
            j += 3;
            i++;
        } else {
            memcpy(o + j, p + i, n);
            j += n;
            i += n;
        }
    }
    o[j] = '\0';
    *out = o;
    *outlen = j;
    return 0;
}

void kl_print_safe(FILE *f, const char *s, size_t len, const char *indent)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = seq_len(p + i, len - i);
        unsigned char c = p[i];
        if (n == 1 && c == '\n') {
            fputc('\n', f);
            fputs(indent, f);
        } else if (n == 1 && c == '\t') {
            fputc('\t', f);
        } else if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7f)) ||
                   (n == 2 && c == 0xc2 && p[i + 1] < 0xa0)) {
            /* Ill-formed bytes, C0 controls (ESC starts terminal escape
             * sequences), DEL and the C1 controls U+0080..U+009F. */
            fputs("\xef\xbf\xbd", f);
            n = n ? n : 1;
        } else {
            fwrite(p + i, 1, n, f);
        }
        i += n;
    }
}

int kl_read_text(FILE *f, size_t max, char **out, size_t *len)
{
    /* max + 3 bytes at most (and the NUL): dropping a line ending takes
     * at most 2, so a longer text always ends up over max. */
    size_t cap = max + 4, n = 0;
    char *buf = malloc(cap);
    *out = NULL;
    *len = 0;
    if (buf == NULL)
        return KL_ENOMEM;
    /* A short read is the end (or an error), never a reason to wait for
     * more: a terminal's one end-of-file is enough. */
    while (n < cap - 1) {
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0 || feof(f) || ferror(f))
            break;
    }
    if (ferror(f)) {
        free(buf);
        return KL_EIO;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
