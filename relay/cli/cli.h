/* kollega-relay's command line: the options every command shares, their
 * parsing, and the helpers each command uses to report (cli.c). One file
 * per command: cli_init.c, cli_serve.c, cli_invite.c, cli_status.c (and
 * cli_peer.c for `peer`); main.c only picks the command.
 * Exit codes: 0 ok, 1 operational failure, 2 usage error. Errors go to
 * stderr and say what to do next. */
#ifndef KOLLEGA_RELAY_CLI_H
#define KOLLEGA_RELAY_CLI_H

#include <stdint.h>

#include "admin.h"
#include "cmdline/json.h"
#include "net/server.h"
#include "storage/storage.h"

#define KL_EXIT_OPER 1
#define KL_EXIT_USAGE 2
#define KL_DEFAULT_INVITE_TTL (7u * 86400)

#define KL_CLI_ARGS_MAX 4
#define KL_CLI_FILE_STRS 32

typedef struct kl_cli_opts {
    const char *cmd;
    const char *data, *name, *listen, *advertise, *expires, *sync, *log_level;
    const char *fed_listen;
    const char *metrics_listen;
    const char *config, *log_format;
    int argc;                          /* the command line kl_cli_parse read */
    char **argv;
    const char *args[KL_CLI_ARGS_MAX]; /* positional arguments (config check FILE, user reset
                                        * HANDLE, backup FILE, ...) */
    int nargs;
    char *file_strs[KL_CLI_FILE_STRS]; /* string values copied from a config file */
    int json, help;
    int force;                 /* backup, restore: --force */
    uint64_t uses;
    uint64_t max_db_bytes;
    kl_server_cfg_t cfg;
} kl_cli_opts_t;

/* One command: its name, what it does (for the main usage), its options
 * (usage), and the run function. */
typedef struct kl_cli_cmd {
    const char *name;
    const char *summary;
    void (*usage)(void);
    int (*run)(kl_cli_opts_t *o);
} kl_cli_cmd_t;

extern const kl_cli_cmd_t kl_cli_init, kl_cli_serve, kl_cli_invite, kl_cli_status;
extern const kl_cli_cmd_t kl_cli_user, kl_cli_backup, kl_cli_restore; /* cli_user.c, cli_backup.c */
extern const kl_cli_cmd_t kl_cli_config;

/* The options every command takes, printed after its own. */
void kl_cli_usage_common(void);

/* Parse argv[2..] into o (o->cmd set); prints the error and returns
 * KL_EXIT_USAGE on a bad option, 0 otherwise. */
int kl_cli_parse(int argc, char **argv, kl_cli_opts_t *o);

/* Config file keys (config.c reads the file): every option of serve but
 * --config is a key named as its flag without "--", with the flag's
 * validation, so a new serve flag is a key without more code.
 * kl_cli_key: the i-th key, NULL after the last. kl_cli_key_set: 0,
 * KL_ENOTFOUND (no such key) or KL_EINVAL (*expect says what the value
 * must be); the value is copied. kl_cli_key_get: the effective value as
 * text, KL_ENOTFOUND when unset (the built-in behaviour applies).
 * kl_cli_key_range: a numeric key's bounds (KL_ENOTFOUND for text keys). */
const char *kl_cli_key(size_t i);
int kl_cli_key_set(kl_cli_opts_t *o, const char *key, const char *val, char *expect, size_t cap);
int kl_cli_key_get(const kl_cli_opts_t *o, const char *key, char *out, size_t cap);
int kl_cli_key_range(const char *key, uint64_t *min, uint64_t *max);
/* Free the strings a config file put into o. */
void kl_cli_opts_release(kl_cli_opts_t *o);

/* Print the printf-style message to stderr and return an exit code:
 * usage adds "run 'kollega-relay CMD --help'" (cmd may be NULL) and returns
 * KL_EXIT_USAGE; oper returns KL_EXIT_OPER. They cannot fail. */
int kl_cli_fail_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kl_cli_fail_oper(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The data directory (--data or the defaults), or a usage error. */
int kl_cli_data_dir(const kl_cli_opts_t *o, char *dir, size_t cap);
int kl_cli_state_error(const char *dir, int r);
/* Usage error unless v (when set) is HOST:PORT. */
int kl_cli_check_listen(const kl_cli_opts_t *o, const char *v, const char *flag);
/* Open the database of a ready data directory (READY, or NO_KEY for any
 * command but serve) with kl_storage_open flags into *st, which the caller
 * closes with kl_storage_close. Returns 0, or prints what went wrong and
 * what to do and returns KL_EXIT_OPER (*st then is not set). */
int kl_cli_open_state(const kl_cli_opts_t *o, const char *dir, int flags, kl_storage_t **st);
/* Initialise dir as relay `name` (init and a first serve) with kl_admin_init,
 * recording --advertise if set; quiet prints nothing on success, else the
 * name, public key and listen address (JSON with --json). Returns 0, or
 * prints the failure and returns KL_EXIT_OPER. */
int kl_cli_init_dir(const kl_cli_opts_t *o, const char *dir, const char *name, int quiet);

/* Explain why an invite (kl_admin_invite*) could not be made: KL_ESTATE
 * is a wildcard listen address without advertise. Returns KL_EXIT_OPER. */
int kl_cli_invite_error(const char *dir, int r);

/* Print a new invite token: the token alone, or with --json an object with
 * token, uses (or the handle of a reset invite) and expires_at. */
void kl_cli_print_invite(const kl_cli_opts_t *o, const char *token, uint32_t uses,
                         const char *handle, uint64_t expires_ms);

/* Print j on one line of stdout and free it. */
void kl_cli_print_json(kl_json_t *j);
/* The one JSON object a command prints with --json: begin initialises j
 * and opens it; end closes it and prints it (kl_cli_print_json). */
void kl_cli_json_begin(kl_json_t *j);
void kl_cli_json_end(kl_json_t *j);

#endif
