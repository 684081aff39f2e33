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

/* n (1, 2, 4 or 8) bytes big-endian into the integer of that size at out. */
static int read_be(kl_reader_t *rd, void *out, size_t n)
{
    const uint8_t *p;
    uint64_t x = 0;
    int r = kl_reader_view(rd, &p, n);
    if (r)
        return r;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[i];
    switch (n) {
    case 1: *(uint8_t *)out = (uint8_t)x; break;
    case 2: *(uint16_t *)out = (uint16_t)x; break;
    case 4: *(uint32_t *)out = (uint32_t)x; break;
    default: *(uint64_t *)out = x; break;
    }
    return 0;
}

int kl_reader_u8(kl_reader_t *rd, uint8_t *v) { return read_be(rd, v, sizeof *v); }
int kl_reader_u16(kl_reader_t *rd, uint16_t *v) { return read_be(rd, v, sizeof *v); }
int kl_reader_u32(kl_reader_t *rd, uint32_t *v) { return read_be(rd, v, sizeof *v); }
int kl_reader_u64(kl_reader_t *rd, uint64_t *v) { return read_be(rd, v, sizeof *v); }

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
