/* Bounded readers and writers over byte buffers. Parsing code reads untrusted
 * bytes only through these, so it has no raw pointer arithmetic: every read
 * checks the remaining length first and fails with KL_EPROTO instead of
 * reading past the end (in the manner of OpenSSH's sshbuf). */
#ifndef KOLLEGA_BUF_H
#define KOLLEGA_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct kl_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} kl_reader_t;

typedef struct kl_writer {
    uint8_t *p;
    size_t cap;
    size_t off;
} kl_writer_t;

/* A reader over len bytes at p (borrowed: they must outlive the reader),
 * at their start; the bytes not read yet. Neither can fail. */
void kl_reader_init(kl_reader_t *rd, const uint8_t *p, size_t len);
size_t kl_reader_left(const kl_reader_t *rd);
/* Read an integer (big-endian), or copy exactly n bytes into out: 0, or
 * KL_EPROTO if fewer bytes are left (nothing is read then). */
int kl_reader_u8(kl_reader_t *rd, uint8_t *v);
int kl_reader_u16(kl_reader_t *rd, uint16_t *v);
int kl_reader_u32(kl_reader_t *rd, uint32_t *v);
int kl_reader_u64(kl_reader_t *rd, uint64_t *v);
int kl_reader_bytes(kl_reader_t *rd, uint8_t *out, size_t n);
/* Point *out at the next n bytes without copying (into the reader's
 * borrowed buffer): 0, or KL_EPROTO if fewer are left. */
int kl_reader_view(kl_reader_t *rd, const uint8_t **out, size_t n);
/* Read n bytes that must equal want (a magic number, a version):
 * KL_EPROTO if they differ or are not there. */
int kl_reader_expect(kl_reader_t *rd, const uint8_t *want, size_t n);

/* A writer into the caller's cap bytes at p, at their start. Cannot fail. */
void kl_writer_init(kl_writer_t *w, uint8_t *p, size_t cap);
/* Append an integer (big-endian) or n bytes of in: 0, or KL_ETOOBIG if
 * they do not fit (nothing is written then). */
int kl_writer_u8(kl_writer_t *w, uint8_t v);
int kl_writer_u16(kl_writer_t *w, uint16_t v);
int kl_writer_u32(kl_writer_t *w, uint32_t v);
int kl_writer_u64(kl_writer_t *w, uint64_t v);
int kl_writer_bytes(kl_writer_t *w, const uint8_t *in, size_t n);

/* Store or load a big-endian u32 at a fixed place of a buffer whose length
 * the caller has checked already (a header): no bounds check, cannot fail. */
void kl_put_u32(uint8_t p[4], uint32_t v);
uint32_t kl_get_u32(const uint8_t p[4]);

#endif
