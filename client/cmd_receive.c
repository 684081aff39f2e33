/* `kollega receive [--follow] [--timeout SECONDS]`.
 *
 * Connect, authenticate, top up prekeys, fetch everything after the local
 * cursor (sync.c stores and acks each entry), then the groups (group_msg.c:
 * ops, invitations, keys, each group's log), print each new message.
 * Without --follow or --timeout it then exits. --timeout S keeps listening
 * for pushes until S seconds after the start and exits 0. --follow keeps
 * listening until SIGINT/SIGTERM, pings the relay every minute so the
 * connection stays up, and reconnects with backoff when it drops. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "channels.h"
#include "cmd.h"
#include "group.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "rpc.h"
#include "sync.h"

#define PING_MS 60000
#define BACKOFF_MAX_MS 30000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int print_cb(void *ud, const kl_message_t *m)
{
    kl_cli_print_message(ud, m);
    return 0;
}

static int stopped(const kl_cli_t *cli)
{
    return cli->stop && *cli->stop;
}

/* Sleep up to ms, waking early on a signal. */
static void nap(const kl_cli_t *cli, uint64_t ms)
{
    if (!stopped(cli))
        poll(NULL, 0, (int)ms);
}

/* The inbox first (it carries the group keys), then every group. A store
 * failure in the group part is reported like one in the inbox part. */
static int fetch_everything(kl_sync_t *s, kl_cli_t *cli, kl_net_t *conn)
{
    /* Group keys in the inbox are kept only for groups we know. */
    int r = kl_grp_know_listed(cli, conn);
    if (r == 0)
        r = kl_sync_fetch_all(s);
    if (r)
        return r;
    r = kl_grp_receive_all(cli, conn, s);
    if (r == 0)
        r = kl_chan_receive_all(cli, conn, s); /* channels.c */
    if (r && r != KL_EREFUSED && r != KL_EIO && r != KL_ETIMEDOUT && r != -EINTR &&
        r != KL_EPROTO)
        s->store_error = r;
    return r;
}

/* Listen for pushes until the deadline (UINT64_MAX: forever). Returns 0 at
 * the deadline or on a stop signal, else the error; *fatal is set when it
 * was the local store that failed (reconnecting would not help). */
static int listen(kl_cli_t *cli, kl_sync_t *s, kl_net_t *conn, uint64_t deadline, int *fatal)
{
    uint64_t last = mono_ms();
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline || stopped(cli))
            return 0;
        uint64_t wait = PING_MS - (now - last < PING_MS ? now - last : PING_MS);
        if (deadline != UINT64_MAX && deadline - now < wait)
            wait = deadline - now;
        kl_frame_t *push = NULL;
        int r = kl_net_wait_push(conn, (int)wait, &push);
        if (r == -EINTR)
            return 0;
        if (r == KL_ETIMEDOUT) {
            if (mono_ms() - last >= PING_MS) {
                if ((r = kl_rpc_ping(conn, (uint64_t)mono_ms())))
                    return r;
                last = mono_ms();
            }
            continue;
        }
        if (r)
            return r;
        /* Any deliver push (new entries, or "more": you missed some) is a
         * reason to fetch after our cursor: fetching is the one path that
         * processes entries strictly in order. */
        int refetch = kl_rpc_push_is_news(push);
        kl_wire_free(push);
        /* One fetch answers every push already queued. */
        while (kl_net_wait_push(conn, 0, &push) == 0) {
            refetch |= kl_rpc_push_is_news(push);
            kl_wire_free(push);
        }
        if (kl_net_take_missed(conn))
            refetch = 1;
        if (refetch) {
            if ((r = fetch_everything(s, cli, conn))) {
                *fatal = s->store_error != 0;
                return r;
            }
            last = mono_ms();
        }
    }
}

int kl_cmd_receive(kl_cli_t *cli, int follow, long timeout_s)
{
    kl_sync_t s;
    kl_net_t *conn = NULL;
    int rc = kl_cli_open(cli);
    if (rc)
        return rc;
    int waiting = follow || timeout_s >= 0;
    uint64_t start = mono_ms();
    uint64_t deadline = timeout_s >= 0 ? start + (uint64_t)timeout_s * 1000u : UINT64_MAX;
    uint64_t backoff = 1000;
    int connected_once = 0;

    memset(&s, 0, sizeof s);
    s.st = cli->st;
    s.me = &cli->me;
    s.on_message = print_cb;
    s.ud = cli;
    for (;;) {
        if ((rc = kl_cli_connect(cli, &conn))) {
            if (!waiting || stopped(cli) || (!connected_once && !follow))
                return stopped(cli) ? KL_EXIT_OK : rc;
            uint64_t now = mono_ms();
            if (now >= deadline)
                return KL_EXIT_OK;
            kl_cli_err("retrying in %llu s", (unsigned long long)(backoff / 1000));
            nap(cli, deadline - now < backoff ? deadline - now : backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (connected_once && !cli->json)
            fprintf(stderr, "kollega: connected to the relay again\n");
        connected_once = 1;
        backoff = 1000;
        s.conn = conn;
        int fatal = 0;
        int r = fetch_everything(&s, cli, conn);
        fatal = s.store_error != 0;
        if (r == 0 && waiting)
            r = listen(cli, &s, conn, deadline, &fatal);
        if (r == 0 || r == -EINTR || stopped(cli)) {
            kl_net_close(conn);
            if (!waiting && !cli->json && s.stored == 0 && s.held == 0 && s.failed == 0)
                printf("No new messages.\n");
            return KL_EXIT_OK;
        }
        if (fatal)
            kl_cli_err("cannot store received messages in %s (%s); they stay at the relay "
                       "until this works", cli->home, kl_strerror(r));
        else if (waiting && r != KL_EREFUSED)
            kl_cli_err("%s; reconnecting", kl_net_error(conn));
        else
            kl_cli_relay_fail(conn, r, "receive messages");
        kl_net_close(conn);
        conn = NULL;
        s.conn = NULL;
        if (!waiting || fatal || r == KL_EREFUSED)
            return KL_EXIT_FAIL;
        if (mono_ms() >= deadline)
            return KL_EXIT_OK;
    }
}
