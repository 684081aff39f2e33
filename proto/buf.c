#include <string.h>

#include "kollega/buf.h"
#include "kollega/err.h"

void kl_reader_init(kl_reader_t *rd, const uint8_t *p, size_t len)
{
    rd->p = p;
    rd->len = len;
    rd->off = 0;
}

size_t kl_reader_left(const kl_reader_t *rd)
{
    return rd->len - rd->off;
}

int kl_reader_view(kl_reader_t *rd, const uint8_t **out, size_t n)
{
    if (kl_reader_left(rd) < n)
        return KL_EPROTO;
    *out = rd->p + rd->off;
    rd->off += n;
    return 0;
}

int kl_reader_bytes(kl_reader_t *rd, uint8_t *out, size_t n)
{
    const uint8_t *v;
    int r = kl_reader_view(rd, &v, n);
    if (r == 0 && n > 0)
        memcpy(out, v, n);
    return r;
}

int kl_reader_expect(kl_reader_t *rd, const uint8_t *want, size_t n)
{
    const uint8_t *v;
    if (kl_reader_view(rd, &v, n) != 0 || (n > 0 && memcmp(v, want, n) != 0))
        return KL_EPROTO;
    return 0;
}

static int read_be(kl_reader_t *rd, size_t n, uint64_t *v)
{
    const uint8_t *p;
    int r = kl_reader_view(rd, &p, n);
    if (r)
        return r;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | p[i];
    return 0;
}

int kl_reader_u8(kl_reader_t *rd, uint8_t *v)
{
    uint64_t x;
    int r = read_be(rd, 1, &x);
    if (r == 0)
        *v = (uint8_t)x;
    return r;
}

int kl_reader_u16(kl_reader_t *rd, uint16_t *v)
{
    uint64_t x;
    int r = read_be(rd, 2, &x);
    if (r == 0)
        *v = (uint16_t)x;
    return r;
}

int kl_reader_u32(kl_reader_t *rd, uint32_t *v)
{
    uint64_t x;
    int r = read_be(rd, 4, &x);
    if (r == 0)
        *v = (uint32_t)x;
    return r;
}

int kl_reader_u64(kl_reader_t *rd, uint64_t *v)
{
    return read_be(rd, 8, v);
}

void kl_writer_init(kl_writer_t *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = cap;
    w->off = 0;
}

int kl_writer_bytes(kl_writer_t *w, const uint8_t *in, size_t n)
{
    if (w->cap - w->off < n)
        return KL_ETOOBIG;
    if (n > 0)
        memcpy(w->p + w->off, in, n);
    w->off += n;
    return 0;
}

static int write_be(kl_writer_t *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[n - 1 - i] = (uint8_t)(v >> (8 * i));
    return kl_writer_bytes(w, b, n);
}

int kl_writer_u8(kl_writer_t *w, uint8_t v) { return write_be(w, v, 1); }
int kl_writer_u16(kl_writer_t *w, uint16_t v) { return write_be(w, v, 2); }
int kl_writer_u32(kl_writer_t *w, uint32_t v) { return write_be(w, v, 4); }
int kl_writer_u64(kl_writer_t *w, uint64_t v) { return write_be(w, v, 8); }

void kl_put_u32(uint8_t p[4], uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t kl_get_u32(const uint8_t p[4])
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
