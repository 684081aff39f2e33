/* `kollega passphrase [--no-passphrase]`: change, add or remove the
 * passphrase of the store.
 *
 * The current passphrase is asked as every command asks it (and proves
 * itself by opening the store: one derivation); the store is opened without
 * the upgrade re-wrap, since the new wrap follows anyway. Then the new
 * passphrase (KOLLEGA_NEW_PASSPHRASE or asked twice), and kl_store_rekey
 * re-wraps the same store key under it in one transaction: one more
 * derivation. Nothing else in the file is re-encrypted. */
#include <stdio.h>

#include "cmd.h"
#include "cmdline/json.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

static void print_result(const kl_cli_t *cli, int protected_, int changed)
{
    if (cli->json) {
        kl_json_t j;
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_bool(&j, "ok", 1);
        kl_json_bool(&j, "passphrase", protected_);
        kl_json_bool(&j, "changed", changed);
        kl_json_str(&j, "home", cli->home);
        kl_cli_json_line(&j);
    } else if (!changed) {
        printf("Your store in %s has no passphrase already; nothing was changed.\n", cli->home);
    } else if (protected_) {
        printf("Your store in %s is now protected by the new passphrase; the old one no longer "
               "opens it.\n", cli->home);
    } else {
        printf("Your store in %s now has NO passphrase: anyone who can read that directory "
               "can read your keys and messages.\n", cli->home);
    }
    fflush(stdout);
}

int kl_cmd_passphrase(kl_cli_t *cli, int no_passphrase)
{
    char *pass = NULL;
    int r, rc = kl_cli_open_flags(cli, KL_STORE_OPEN_NO_UPGRADE);
    if (rc)
        return rc;
    if (no_passphrase && !kl_store_has_passphrase(cli->st)) {
        print_result(cli, 0, 0);
        return KL_EXIT_OK;
    }
    if (!no_passphrase) {
        rc = KL_EXIT_FAIL;
        pass = kl_secure_alloc(KL_STORE_PASS_MAX);
        if (pass == NULL) {
            kl_cli_err("out of memory; nothing was changed");
            goto out;
        }
        if ((rc = kl_cli_choose_passphrase(pass, 1)))
            goto out;
    }
    r = kl_store_rekey(cli->st, pass);
    if (r == KL_ESTATE) {
        kl_cli_err("another kollega changed the passphrase of %s meanwhile; nothing was "
                   "changed, run `kollega passphrase` again", cli->dbpath);
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if (r) {
        kl_cli_err("cannot change the passphrase of %s (%s); the old passphrase still opens "
                   "it", cli->dbpath, kl_strerror(r));
        rc = KL_EXIT_FAIL;
        goto out;
    }
    print_result(cli, pass != NULL, 1);
    rc = KL_EXIT_OK;
out:
    if (pass)
        kl_secure_free(pass);
    return rc;
}
