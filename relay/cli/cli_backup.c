/* kollega-relay backup FILE / restore FILE: the relay's database.
 *
 * backup copies the database as of one moment while the relay serves (the
 * storage backend's online backup, from a connection of this process of
 * its own): into FILE.tmp, fsync, rename to FILE, fsync the directory, so
 * FILE is either absent or complete. restore needs the relay stopped (the
 * data directory's lock): it copies FILE next to relay.db, checks the copy
 * (an intact relay database, and of the relay whose relay.key is there),
 * removes a stale write-ahead log, and renames the copy over relay.db.
 * Neither touches relay.key: the relay's private key is deliberately not
 * in the database, and is kept (and backed up) on its own. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_admin.h"
#include "keyfile.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_admin.h"

/* fsync path (a file, or a directory to make a rename in it durable). */
static int sync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return KL_EIO;
    int r = fsync(fd) == 0 ? 0 : KL_EIO;
    close(fd);
    return r;
}

static int sync_parent(const char *path)
{
    char tmp[KL_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    return sync_path(dirname(tmp), 1);
}

static int cmd_backup(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX], tmp[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1], key[64];
    struct stat sb;
    kl_storage_t *st = NULL;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->nargs != 1)
        return kl_cli_fail_usage("backup", "backup takes one FILE to write");
    const char *file = o->args[0];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp)
        return kl_cli_fail_usage("backup", "FILE path too long");
    if (!o->force && lstat(file, &sb) == 0)
        return kl_cli_fail_oper("%s exists: pass --force to replace it, or choose another FILE",
                                file);
    r = kl_cli_open_state(o, dir, KL_STORAGE_READONLY, &st);
    if (r)
        return r;
    unlink(tmp); /* a copy an interrupted backup left */
    r = kl_storage_backup(st, tmp);
    kl_storage_close(st);
    if (r == 0 && chmod(tmp, 0600) != 0)
        r = KL_EIO;
    if (r == 0)
        r = sync_path(tmp, 0);
    if (r == 0)
        r = kl_storage_check_file(tmp, name, sizeof name, key, sizeof key);
    if (r == 0 && rename(tmp, file) != 0)
        r = KL_EIO;
    if (r == 0)
        r = sync_parent(file);
    if (r) {
        unlink(tmp);
        return kl_cli_fail_oper("cannot write the backup to %s: %s (is there room on its disk, "
                                "and may this user write there?)", file, kl_strerror(r));
    }
    long long bytes = stat(file, &sb) == 0 ? (long long)sb.st_size : 0;
    if (o->json) {
        kl_json_t j;
        kl_cli_json_begin(&j);
        kl_json_str(&j, "file", file);
        kl_json_uint(&j, "bytes", (unsigned long long)bytes);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_cli_json_end(&j);
    } else {
        printf("backed up relay %s to %s (%lld bytes)\n"
               "it holds users, invites (as hashes), prekeys and the messages waiting now, but "
               "not the relay's private key:\nkeep %s/relay.key in a backup of its own\n",
               name, file, bytes, dir);
    }
    return 0;
}

/* Copy src to dst (created, 0600) and fsync it. */
static int copy_file(const char *src, const char *dst)
{
    char buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC), r = 0;
    if (in < 0)
        return KL_ENOTFOUND;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        close(in);
        return KL_EIO;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? KL_EIO : 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                r = KL_EIO;
                break;
            }
            off += w;
        }
        if (r)
            break;
    }
    if (r == 0 && fsync(out) != 0)
        r = KL_EIO;
    if (close(out) != 0 && r == 0)
        r = KL_EIO;
    close(in);
    return r;
}

static int cmd_restore(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX], db[KL_PATH_MAX], tmp[KL_PATH_MAX], side[KL_PATH_MAX + 8];
    char keypath[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1], key[64], have[64] = "";
    uint8_t pk[32], *sk = NULL;
    struct stat sb;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->nargs != 1)
        return kl_cli_fail_usage("restore", "restore takes one FILE (written by kollega-relay "
                                 "backup)");
    const char *file = o->args[0];
    if (kl_admin_path(dir, KL_DB_NAME, db, sizeof db) ||
        kl_admin_path(dir, KL_DB_NAME ".restore", tmp, sizeof tmp) ||
        kl_admin_path(dir, KL_KEYFILE_NAME, keypath, sizeof keypath))
        return kl_cli_fail_usage("restore", "data directory path too long");
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode))
        return kl_cli_fail_oper("cannot read %s: no such file", file);
    if ((r = kl_cli_lock(dir, 1)) != 0)
        return r;
    if (!o->force && lstat(db, &sb) == 0)
        return kl_cli_fail_oper("%s already holds a database: pass --force to replace it with "
                                "the backup (what it holds now is lost), or restore into another "
                                "--data", dir);
    r = copy_file(file, tmp);
    if (r == 0)
        r = kl_storage_check_file(tmp, name, sizeof name, key, sizeof key);
    if (r) {
        unlink(tmp);
        if (r == KL_EPROTO || r == KL_ENOTFOUND)
            return kl_cli_fail_oper("%s is not an intact kollega-relay database (integrity check "
                                    "or relay name and key missing): nothing was changed", file);
        return kl_cli_fail_oper("cannot copy %s into %s: %s", file, dir, kl_strerror(r));
    }
    int has_key = access(keypath, F_OK) == 0;
    if (has_key) {
        r = kl_keyfile_load(keypath, &sk, pk);
        if (sk)
            kl_secure_free(sk);
        if (r == 0)
            r = kl_b64_encode(pk, 32, have, sizeof have);
        if (r) {
            unlink(tmp);
            return kl_cli_fail_oper("cannot read %s: %s (it must be the relay's 32-byte key, "
                                    "mode 0600)", keypath, kl_strerror(r));
        }
        if (strcmp(have, key) != 0) {
            unlink(tmp);
            return kl_cli_fail_oper("the backup is of relay %s with public key %s, but %s holds "
                                    "another key (%s): put the relay.key that belongs to this "
                                    "backup there, or restore into another --data; nothing was "
                                    "changed", name, key, keypath, have);
        }
    }
    /* A write-ahead log left beside the old database would be applied to
     * the restored one: it goes first. */
    snprintf(side, sizeof side, "%s-wal", db);
    r = unlink(side) == 0 || errno == ENOENT ? 0 : KL_EIO;
    snprintf(side, sizeof side, "%s-shm", db);
    if (r == 0)
        r = unlink(side) == 0 || errno == ENOENT ? 0 : KL_EIO;
    if (r == 0 && rename(tmp, db) != 0)
        r = KL_EIO;
    if (r == 0)
        r = sync_path(dir, 1);
    if (r) {
        unlink(tmp);
        return kl_cli_fail_oper("cannot replace %s: %s", db, kl_strerror(r));
    }
    if (o->json) {
        kl_json_t j;
        kl_cli_json_begin(&j);
        kl_json_str(&j, "restored", file);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_json_bool(&j, "key_present", has_key);
        kl_json_str(&j, "data", dir);
        kl_cli_json_end(&j);
    } else {
        printf("restored relay %s (public key %s) into %s\n", name, key, dir);
        if (has_key)
            printf("next: kollega-relay serve --data %s\n", dir);
    }
    if (!has_key)
        fprintf(stderr, "kollega-relay: %s is missing: the database backup deliberately does "
                "not contain the relay's private key. Copy relay.key from its own backup into "
                "%s (chmod 600) before serve: clients have pinned public key %s, and no other "
                "key can stand in for it\n", keypath, dir, key);
    return 0;
}

static void usage_backup(void)
{
    printf("usage: kollega-relay backup FILE --data DIR [--force]\n"
           "  FILE              where to write the copy (mode 0600); the relay may keep\n"
           "                    serving meanwhile: the copy is of one moment\n"
           "  --force           replace FILE if it exists\n"
           "The copy does not contain relay.key: back that file up on its own.\n");
    kl_cli_usage_common();
}

static void usage_restore(void)
{
    printf("usage: kollega-relay restore FILE --data DIR [--force]\n"
           "  FILE              a copy written by kollega-relay backup\n"
           "  --force           replace the database DIR holds now\n"
           "The relay must be stopped. DIR/relay.key, when present, must be the key of\n"
           "the relay the backup is of; when absent, restore it from its own backup.\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_backup = {"backup", "copy the relay's database to a file (while it runs)",
                                    usage_backup, cmd_backup};
const kl_cli_cmd_t kl_cli_restore = {"restore", "replace the database with a backup (relay stopped)",
                                     usage_restore, cmd_restore};
