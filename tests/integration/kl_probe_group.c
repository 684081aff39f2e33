/* kl-probe modes of a hostile group member. The member is a kollega home
 * (its own client store, made by `kollega init` and kept up to date by the
 * real client): the probe takes from it what only the member has (its
 * identity key, its validated copy of the group's log, its sender key) and
 * then does by hand, on the wire, what the real client never does:
 *
 *   group-invite HOME GROUP ADDRESS KEY_B64
 *       submit a signed invite naming {ADDRESS, KEY} (someone else's
 *       address on a key of the member's choosing);
 *   group-send HOME GROUP TEXT [--index N] [--head-bogus] [--print]
 *       encrypt TEXT with the member's newest sender key (of whatever
 *       epoch) as a group message whose
 *       Content claims log index N (default: the member's next index) and,
 *       with --head-bogus, a random head; send it with Send.group_index N,
 *       or with --print write the body (hex) instead of sending it (for a
 *       test that plants it in the relay's database).
 *
 * and, as a publisher of a members-only channel (the home's identity):
 *
 *   chan-post HOME CHANNEL EPOCH TEXT
 *       a post sealed with the channel key of EPOCH (say an older one than
 *       the channel's current epoch, which the real client never uses), sent
 *       to CHANNEL ("index" in the answer is EPOCH).
 *
 * One JSON line: {"mode", "ok", "error_code" (null), "error", "seq", "index",
 * "body"}. The advanced sender key is written back to the home, so the
 * member's real client never reuses a message key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "cli.h"
#include "group.h"
#include "kl_probe.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/senderkey.h"
#include "relay.pb-c.h"
#include "session.h"
#include "store_group.h"
#include "util.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x

/* The member: its store, identity and validated group state. */
typedef struct member {
    kl_cli_t cli;
    kl_grp_t x;
    int loaded;
} member_t;

static int member_open(member_t *m, const char *home, const char *grp)
{
    memset(m, 0, sizeof *m);
    m->cli.home_opt = home;
    if (kl_cli_resolve_home(&m->cli) != 0 || kl_cli_open(&m->cli) != 0)
        return -1;
    if (kl_grp_load(&m->cli, grp, &m->x) != 0 || kl_group_next_index(m->x.g) == 0) {
        fprintf(stderr, "kl-probe: %s holds no log of %s (run `kollega receive` first)\n", home,
                grp);
        return -1;
    }
    m->loaded = 1;
    return 0;
}

static void member_close(member_t *m)
{
    if (m->loaded)
        kl_grp_free(&m->x);
    kl_cli_close(&m->cli);
}

/* Connect and authenticate as the member: 0 or -1. */
static int member_connect(member_t *m, pconn_t *c)
{
    if (pconn_open(c) != 0)
        return -1;
    if (probe_auth(c, m->cli.me.sk, m->cli.me.address) != 0) {
        pconn_close(c);
        return -1;
    }
    return 0;
}

/* Send f and print the outcome as one JSON line. */
static int call_and_report(pconn_t *c, kl_frame_t *f, const char *mode, uint64_t index)
{
    kl_frame_t *rep = NULL;
    f->id = pconn_id(c);
    if (pconn_send(c, f) != 0 || probe_await(c, f->id, &rep, NULL) != 0) {
        printf("{\"mode\":\"%s\",\"ok\":false,\"error_code\":null,\"error\":\"no answer\"}\n",
               mode);
        return 1;
    }
    int ok = rep->body_case != BODY(ERROR);
    printf("{\"mode\":\"%s\",\"ok\":%s,\"index\":%llu,\"seq\":%llu,\"error_code\":", mode,
           ok ? "true" : "false", (unsigned long long)index,
           (unsigned long long)(rep->body_case == BODY(SENT) ? rep->sent->seq : 0));
    if (ok) {
        printf("null,\"error\":\"\"}\n");
    } else {
        printf("%d,\"error\":", (int)rep->error->code);
        probe_json_str(rep->error->message ? rep->error->message : "");
        printf("}\n");
    }
    kl_wire_free(rep);
    return 0;
}

int probe_group_invite(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: kl-probe ... group-invite HOME GROUP ADDRESS KEY_B64\n");
        return 2;
    }
    member_t m;
    pconn_t c;
    kl_group_opdesc_t d;
    uint8_t *op = NULL;
    size_t oplen = 0, klen = 0;
    int rc = 1;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_INVITE;
    d.has_target = 1;
    if (kl_b64_decode(argv[3], d.target, sizeof d.target, &klen) != 0 || klen != 32 ||
        strlen(argv[2]) >= sizeof d.target_address)
        return 2;
    memcpy(d.target_address, argv[2], strlen(argv[2]) + 1);
    if (member_open(&m, argv[0], argv[1]) != 0)
        goto out;
    if (kl_group_op_build(m.x.g, m.cli.me.sk, m.cli.me.pk, m.cli.me.address, 1, &d, &op,
                          &oplen) != 0 ||
        member_connect(&m, &c) != 0)
        goto out;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    go.signed_op.data = op;
    go.signed_op.len = oplen;
    f.body_case = BODY(GROUP_OP);
    f.group_op = &go;
    rc = call_and_report(&c, &f, "group-invite", kl_group_next_index(m.x.g));
    pconn_close(&c);
out:
    free(op);
    member_close(&m);
    return rc;
}

/* Encrypt text as the member's group message claiming index (and head),
 * and write the advanced key back. *body malloc'd. 0 or -1. */
static int seal_claim(member_t *m, const char *text, uint64_t index, int bogus_head,
                      uint8_t **body, size_t *blen)
{
    kl_senderkey_t *k = NULL;
    kl_content_t ct;
    uint8_t ad[KL_ADDR_MAX + 32], *pt = NULL, *ser = NULL, *out = NULL;
    size_t ptcap = 0, ptlen = 0, slen = 0, glen = strlen(m->x.address);
    uint32_t key_id = 0;
    uint64_t epoch = 0;
    int r = -1;
    /* The member's newest sender key, whatever epoch it was made for (an
     * honest client renews it after a removal; this one need not). */
    if (kl_store_senderkey_own(m->cli.st, m->x.address, m->cli.me.pk, &key_id, &epoch, &ser,
                               &slen) != 0 ||
        kl_senderkey_deserialize(&k, ser, slen) != 0) {
        fprintf(stderr, "kl-probe: the member has no sender key (let its client send once "
                        "first)\n");
        kl_free_wipe(ser, slen);
        return -1;
    }
    kl_free_wipe(ser, slen);
    ser = NULL;
    slen = 0;
    memset(&ct, 0, sizeof ct);
    kl_random(ct.id, KL_MSG_ID);
    ct.sent_at = kl_now_ms();
    ct.text = (char *)text;
    ct.text_len = strlen(text);
    snprintf(ct.to, sizeof ct.to, "%s", m->x.address);
    ct.group_index = index;
    if (bogus_head || kl_grp_head_at(&m->x, index, ct.group_head) != 0)
        kl_random(ct.group_head, 32);
    memcpy(ad, m->x.address, glen);
    memcpy(ad + glen, m->cli.me.pk, 32);
    if (kl_content_pack(&ct, &pt, &ptcap, &ptlen) != 0 ||
        (out = malloc(ptlen + KL_SENDERKEY_OVERHEAD)) == NULL ||
        kl_senderkey_encrypt(k, ad, glen + 32, pt, ptlen, out, ptlen + KL_SENDERKEY_OVERHEAD,
                             blen) != 0 ||
        kl_senderkey_serialize(k, &ser, &slen) != 0 || kl_store_begin(m->cli.st) != 0)
        goto out;
    if (kl_store_senderkey_put(m->cli.st, m->x.address, m->cli.me.pk, key_id, epoch, 1, 1, ser,
                               slen) != 0 ||
        kl_store_commit(m->cli.st) != 0) {
        kl_store_rollback(m->cli.st);
        goto out;
    }
    *body = out;
    out = NULL;
    r = 0;
out:
    free(out);
    kl_free_wipe(pt, ptcap);
    kl_free_wipe(ser, slen);
    kl_senderkey_free(k);
    return r;
}

int probe_group_send(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kl-probe ... group-send HOME GROUP TEXT [--index N] "
                        "[--head-bogus] [--print]\n");
        return 2;
    }
    long long index = -1;
    int bogus = 0, print = 0, rc = 1;
    for (int k = 3; k < argc; k++) {
        if (strcmp(argv[k], "--head-bogus") == 0)
            bogus = 1;
        else if (strcmp(argv[k], "--print") == 0)
            print = 1;
        else if (k + 1 < argc && strcmp(argv[k], "--index") == 0)
            index = atoll(argv[++k]);
        else
            return 2;
    }
    member_t m;
    pconn_t c;
    uint8_t *body = NULL;
    size_t blen = 0;
    if (member_open(&m, argv[0], argv[1]) != 0)
        goto out;
    uint64_t idx = index > 0 ? (uint64_t)index : kl_group_next_index(m.x.g);
    if (seal_claim(&m, argv[2], idx, bogus, &body, &blen) != 0)
        goto out;
    if (print) {
        char *hex = malloc(2 * blen + 1);
        if (hex == NULL)
            goto out;
        kl_hex_encode(body, blen, hex, 2 * blen + 1);
        printf("{\"mode\":\"group-send\",\"ok\":true,\"index\":%llu,\"body\":\"%s\"}\n",
               (unsigned long long)idx, hex);
        free(hex);
        rc = 0;
        goto out;
    }
    if (member_connect(&m, &c) != 0)
        goto out;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = m.x.address;
    sd.body.data = body;
    sd.body.len = blen;
    sd.group_index = idx;
    f.body_case = BODY(SEND);
    f.send = &sd;
    rc = call_and_report(&c, &f, "group-send", idx);
    pconn_close(&c);
out:
    free(body);
    member_close(&m);
    return rc;
}

int probe_chan_post(int argc, char **argv)
{
    if (argc != 4 || atoll(argv[2]) <= 0) {
        fprintf(stderr, "usage: kl-probe ... chan-post HOME CHANNEL EPOCH TEXT\n");
        return 2;
    }
    kl_cli_t cli;
    kl_chan_t x;
    pconn_t c;
    uint8_t key[KL_CHANNEL_KEY], id[KL_MSG_ID], *body = NULL;
    size_t blen = 0;
    uint64_t epoch = (uint64_t)atoll(argv[2]);
    int rc = 1, loaded = 0;
    memset(&cli, 0, sizeof cli);
    memset(&x, 0, sizeof x);
    cli.home_opt = argv[0];
    if (kl_cli_resolve_home(&cli) != 0 || kl_cli_open(&cli) != 0)
        goto out;
    if (kl_chan_load(&cli, argv[1], &x) != 0)
        goto out;
    loaded = 1;
    kl_random(id, sizeof id);
    if (kl_chan_key_get(&cli, &x, epoch, key) != 0 ||
        kl_channel_post_build_sealed(x.c, cli.me.sk, cli.me.pk, cli.me.address, id,
                                     kl_now_ms(), key, epoch, argv[3], &body, &blen) != 0) {
        fprintf(stderr, "kl-probe: no key of epoch %s for %s in %s\n", argv[2], argv[1], argv[0]);
        goto out;
    }
    if (pconn_open(&c) != 0)
        goto out;
    if (probe_auth(&c, cli.me.sk, cli.me.address) == 0) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
        s.to = argv[1];
        s.body.data = body;
        s.body.len = blen;
        f.body_case = BODY(SEND);
        f.send = &s;
        rc = call_and_report(&c, &f, "chan-post", epoch);
    }
    pconn_close(&c);
out:
    kl_memzero(key, sizeof key);
    free(body);
    if (loaded)
        kl_chan_free(&x);
    kl_cli_close(&cli);
    return rc;
}
