/* `kollega history [ADDRESS|#GROUP|!CHANNEL] [--search TEXT] [--limit N]`: the most
 * recent N stored messages (optionally with one peer or in one group,
 * optionally containing TEXT, ASCII case-insensitively), printed oldest
 * first, after deleting group messages older than their group's retention.
 * Bodies are decrypted in memory only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "cmd.h"
#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

typedef struct hist {
    const char *search;
    size_t search_len;
    size_t limit, n;
    kl_message_t *msgs;          /* newest first, texts copied */
} hist_t;

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int contains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return 1;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        size_t k = 0;
        while (k < nlen && lower((unsigned char)hay[i + k]) == lower((unsigned char)needle[k]))
            k++;
        if (k == nlen)
            return 1;
    }
    return 0;
}

static int collect(void *ud, const kl_message_t *m)
{
    hist_t *h = ud;
    if (h->search && !contains(m->text, m->text_len, h->search, h->search_len))
        return 0;
    char *t = malloc(m->text_len + 1);
    if (t == NULL)
        return KL_ENOMEM;
    memcpy(t, m->text, m->text_len);
    t[m->text_len] = '\0';
    h->msgs[h->n] = *m;
    h->msgs[h->n].text = t;
    h->n++;
    return h->n == h->limit ? 1 : 0;
}

int kl_cmd_history(kl_cli_t *cli, const char *address, const char *search, long limit)
{
    char addr[KL_ADDR_MAX + 1];
    hist_t h;
    int rc;
    int group = address && address[0] == '#';
    int channel = address && address[0] == '!';
    if (address && !group && !channel && (rc = kl_cli_user_address(address, addr, sizeof addr)))
        return rc;
    if ((rc = kl_cli_open(cli)))
        return rc;
    if (group && kl_grp_address(cli, address, addr, sizeof addr) != 0) {
        kl_cli_err("'%s' is not a group address; groups look like #erfa or #erfa@%s", address,
                   cli->relay.name);
        return KL_EXIT_USAGE;
    }
    if (channel && kl_chan_address(cli, address, addr, sizeof addr) != 0) {
        kl_cli_err("'%s' is not a channel address; channels look like !news or !news@%s",
                   address, cli->relay.name);
        return KL_EXIT_USAGE;
    }
    /* Expired group messages go before anything is shown. */
    int pr = kl_grp_retention_all(cli);
    if (pr)
        kl_cli_err("cannot delete expired group messages (%s)", kl_strerror(pr));
    memset(&h, 0, sizeof h);
    h.search = search;
    h.search_len = search ? strlen(search) : 0;
    h.limit = (size_t)limit;
    h.msgs = calloc(h.limit, sizeof *h.msgs);
    if (h.msgs == NULL) {
        kl_cli_err("out of memory for %ld messages; use a smaller --limit", limit);
        return KL_EXIT_FAIL;
    }
    int r = kl_store_message_each(cli->st, address ? addr : NULL, collect, &h);
    if (r < 0) {
        kl_cli_err("cannot read your history (%s)%s", kl_strerror(r),
                   r == KL_ECRYPTO ? "; the store file has been altered" : "");
        rc = KL_EXIT_FAIL;
    } else {
        for (size_t i = h.n; i-- > 0;)
            kl_cli_print_message(cli, &h.msgs[i]);
        if (h.n == 0 && !cli->json)
            printf("No messages%s.\n", search ? " match" : "");
    }
    for (size_t i = 0; i < h.n; i++)
        kl_free_wipe((char *)h.msgs[i].text, h.msgs[i].text_len + 1);
    free(h.msgs);
    return rc;
}
