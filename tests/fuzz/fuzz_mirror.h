/* Fixture of the channel-mirror fuzz target (fuzz_mirror.c) and of its
 * seed generator (gen_corpus_mirror.c): the channel of fuzz_channel.h
 * (FC_ADDR, owner u0, publisher u1) as a home relay would serve it, and
 * the input format. Header-only (static inline).
 *
 * Input: u16 n (big-endian) | n bytes: the home relay's answer to the
 * round's fetch (a relay Frame, normally deliver{entries}) | the rest: its
 * answer to the round's channel_fetch (a relay Frame, normally
 * channel_log{ops}). */
#ifndef KOLLEGA_FUZZ_MIRROR_H
#define KOLLEGA_FUZZ_MIRROR_H

#include "fuzz_channel.h"
#include "relay.pb-c.h"

/* A relay Frame, packed into buf (cap bytes); its length. */
static inline size_t fm_pack(const Kollega__Relay__V1__Frame *f, uint8_t *buf, size_t cap)
{
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    FUZZ_CHECK(n <= cap);
    return kollega__relay__v1__frame__pack(f, buf);
}

/* channel_log{ops[0..n)} from index from, next_index next. */
static inline size_t fm_log(uint8_t *const *ops, const size_t *len, size_t n, uint64_t from,
                            uint64_t next, uint8_t *buf, size_t cap)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__ChannelLog cl = KOLLEGA__RELAY__V1__CHANNEL_LOG__INIT;
    ProtobufCBinaryData b[8];
    FUZZ_CHECK(n <= 8);
    for (size_t i = 0; i < n; i++) {
        b[i].data = ops[i];
        b[i].len = len[i];
    }
    cl.channel = FC_ADDR;
    cl.from_index = from;
    cl.ops = b;
    cl.n_ops = n;
    cl.next_index = next;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_CHANNEL_LOG;
    f.channel_log = &cl;
    return fm_pack(&f, buf, cap);
}

/* deliver{entries: posts[i] at seq seqs[i]}. */
static inline size_t fm_deliver(uint8_t *const *posts, const size_t *len, const uint64_t *seqs,
                                size_t n, uint8_t *buf, size_t cap)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    Kollega__Relay__V1__Entry e[8], *ep[8];
    FUZZ_CHECK(n <= 8);
    for (size_t i = 0; i < n; i++) {
        Kollega__Relay__V1__Entry init = KOLLEGA__RELAY__V1__ENTRY__INIT;
        e[i] = init;
        e[i].seq = seqs[i];
        e[i].ts = FC_TS;
        e[i].body.data = posts[i];
        e[i].body.len = len[i];
        ep[i] = &e[i];
    }
    d.channel = FC_ADDR;
    d.entries = ep;
    d.n_entries = n;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER;
    f.deliver = &d;
    return fm_pack(&f, buf, cap);
}

#endif
