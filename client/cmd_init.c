/* `kollega init --invite TOKEN --name HANDLE [--no-passphrase]`.
 *
 * The store is built under a temporary name (kollega.db.new): identity and
 * prekeys are generated and committed first, then the relay is asked to
 * register the handle, the prekeys are uploaded, and only then does the
 * file get its real name. A refused or interrupted init therefore leaves
 * no half-made identity behind, and a registered handle always has its
 * keys on disk (the rename follows right after the relay said ok). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "cmd.h"
#include "cmdline/json.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "rpc.h"

/* mkdir -p with mode 0700 for what we create; the home itself is made
 * private even if it existed. */
static int make_home(const char *home)
{
    char p[KL_PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof p, "%s", home);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return -errno;
    if (stat(p, &sb) != 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    if ((sb.st_mode & 077) && chmod(p, 0700) != 0)
        return -errno;
    return 0;
}

static void remove_store_files(const char *path)
{
    char p[KL_PATH_MAX + 64];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int do_register(kl_net_t *conn, const kl_identity_t *id, const char *handle,
                       const char *code)
{
    uint8_t msg[256], sig[KL_SIG];
    size_t mlen = 0;
    int r = kl_wire_register_msg(kl_net_handshake_hash(conn), handle, code, msg, sizeof msg,
                                 &mlen);
    if (r || (r = kl_sign(id->sk, msg, mlen, sig)))
        return r;
    return kl_rpc_register(conn, handle, id->pk, code, sig);
}

static void report_register_failure(kl_net_t *conn, int r, const kl_invite_t *inv,
                                    const char *handle)
{
    int code = r == KL_EREFUSED ? kl_net_relay_error(conn) : 0;
    if (code == KL_WIRE_ERR_INVITE_INVALID)
        kl_cli_err("the relay %s refused the invite (INVITE_INVALID): it is used up, expired "
                   "or mistyped; ask whoever runs the relay for a new invite", inv->relay);
    else if (code == KL_WIRE_ERR_CONFLICT)
        kl_cli_err("the name '%s' is already taken at %s; choose another --name", handle,
                   inv->relay);
    else
        kl_cli_relay_fail(conn, r, "register you");
}

static void print_result(const kl_cli_t *cli, const kl_identity_t *id, const kl_invite_t *inv,
                         int protected_, size_t prekeys)
{
    char key[64];
    kl_b64_encode(id->pk, 32, key, sizeof key);
    if (cli->json) {
        char where[KL_HOST_MAX + 16];
        kl_json_t j;
        snprintf(where, sizeof where, strchr(inv->host, ':') ? "[%s]:%u" : "%s:%u", inv->host,
                 inv->port);
        kl_cli_json_begin(&j, "address", id->address);
        kl_json_str(&j, "identity_key", key);
        kl_json_str(&j, "relay", inv->relay);
        kl_json_str(&j, "relay_address", where);
        kl_json_str(&j, "home", cli->home);
        kl_json_bool(&j, "passphrase", protected_);
        kl_json_uint(&j, "prekeys_uploaded", prekeys);
        kl_cli_json_line(&j);
        return;
    }
    printf("Welcome to Kollega. Your address is %s\n", id->address);
    printf("Your identity key: %s\n", key);
    printf("Your keys and messages are stored in %s, %s.\n", cli->home,
           protected_ ? "protected by your passphrase"
                      : "NOT protected by a passphrase (anyone who can read that directory can "
                        "read them)");
    printf("Give your address to colleagues, and compare safety numbers with "
           "`kollega contact verify ADDRESS`.\n");
}

int kl_cmd_init(kl_cli_t *cli, const char *invite, const char *name, int no_passphrase)
{
    kl_invite_t inv;
    kl_identity_t id;
    kl_relay_info_t relay;
    kl_prekey_batch_t *batch = NULL;
    kl_store_t *st = NULL;
    kl_net_t *conn = NULL;
    char *pass = NULL;
    char tmp[KL_PATH_MAX + 64], address[KL_ADDR_MAX + 1], err[512];
    int rc = KL_EXIT_FAIL, r, registered = 0;
    struct stat sb;

    memset(&id, 0, sizeof id);
    tmp[0] = '\0';
    if (!kl_handle_valid(name)) {
        kl_cli_err("'%s' cannot be a name: use 1-32 characters a-z, 0-9, '.', '_', '-', "
                   "starting with a letter or digit", name);
        return KL_EXIT_USAGE;
    }
    if (kl_invite_parse(invite, &inv) != 0) {
        kl_cli_err("the invite token is malformed; it is one line starting with "
                   "kollega:invite? (copy it whole)");
        return KL_EXIT_USAGE;
    }
    snprintf(address, sizeof address, "%s@%s", name, inv.relay);
    if (stat(cli->dbpath, &sb) == 0) {
        kl_cli_err("%s already holds a Kollega identity; use another --home, or move %s away "
                   "to start over", cli->home, cli->dbpath);
        return KL_EXIT_FAIL;
    }
    if ((r = make_home(cli->home))) {
        kl_cli_err("cannot create the directory %s (%s)", cli->home, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    if (!no_passphrase) {
        pass = kl_secure_alloc(KL_STORE_PASS_MAX);
        if (pass == NULL)
            goto out;
        if ((r = kl_cli_choose_passphrase(pass, 0))) {
            rc = r;
            goto out;
        }
    }

    snprintf(tmp, sizeof tmp, "%s.new", cli->dbpath);
    remove_store_files(tmp); /* left over from an init killed before registering */
    memset(&relay, 0, sizeof relay);
    memcpy(relay.name, inv.relay, sizeof relay.name);
    memcpy(relay.host, inv.host, sizeof relay.host);
    relay.port = inv.port;
    memcpy(relay.key, inv.key, 32);
    batch = malloc(sizeof *batch);
    if (batch == NULL)
        goto out;
    if ((r = kl_store_create(tmp, pass, &st)) || (r = kl_identity_generate(&id, address)) ||
        (r = kl_store_begin(st)) || (r = kl_identity_save(st, &id, &relay)) ||
        (r = kl_store_commit(st)) ||
        (r = kl_prekeys_generate(st, &id, KL_OPK_BATCH, 1, batch))) {
        kl_cli_err("cannot create the store in %s (%s)", cli->home, kl_strerror(r));
        goto out;
    }

    r = kl_net_open(inv.host, inv.port, inv.key, cli->stop, &conn, err, sizeof err);
    if (r) {
        kl_cli_err("%s", err);
        goto out;
    }
    if ((r = do_register(conn, &id, name, inv.code))) {
        report_register_failure(conn, r, &inv, name);
        goto out;
    }
    registered = 1;
    /* The relay has bound the handle to our key: publish prekeys, then give
     * the store its real name. A failed upload is repaired by the next
     * `kollega receive`, which tops prekeys up. */
    size_t uploaded = 0;
    if ((r = kl_rpc_prekey_upload(conn, batch)) == 0)
        uploaded = batch->n;
    else
        kl_cli_relay_fail(conn, r, "publish your prekeys (run `kollega receive` later to retry)");
    kl_store_close(st);
    st = NULL;
    if (rename(tmp, cli->dbpath) != 0) {
        kl_cli_err("registered %s, but cannot move %s to %s (%s); rename it by hand", address,
                   tmp, cli->dbpath, strerror(errno));
        goto out;
    }
    sync_dir(cli->home);
    print_result(cli, &id, &inv, pass != NULL, uploaded);
    rc = KL_EXIT_OK;
out:
    kl_net_close(conn);
    kl_store_close(st);
    if (!registered && tmp[0])
        remove_store_files(tmp);
    kl_identity_wipe(&id);
    if (pass)
        kl_secure_free(pass);
    free(batch);
    return rc;
}
