/* Reading kollega-relay's configuration file with libinih (ini.h).
 *
 * Why libinih: it is a Debian package (libinih-dev) made for exactly this,
 * a few hundred lines of C that read INI line by line into a callback,
 * with no allocation surprises (lines are parsed in a fixed stack buffer)
 * and nothing else to learn. The key names, their validation and their
 * ranges are NOT here: they come from the one option table in cli.c, so a
 * serve flag and its key can never disagree. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kollega/err.h"

const char *kl_config_default_path(void)
{
    const char *env = getenv(KL_CONFIG_ENV);
    if (env)
        return env[0] ? env : NULL;
    return access(KL_CONFIG_DEFAULT, F_OK) == 0 ? KL_CONFIG_DEFAULT : NULL;
}

typedef struct load {
    kl_cli_opts_t *o;
    const char *path;
    FILE *f;
    int line;            /* the line being parsed (inih calls back on it) */
    int long_line;       /* first line longer than inih reads, 0: none */
    int max;             /* the longest line inih reads */
    int err_line;        /* first line the handler refused, 0: none */
    char err[400];
    uint64_t set;
    int set_line[64];
} load_t;

/* inih's reader: fgets plus a line count, so the handler knows the line
 * it is called for. A line longer than inih's buffer would be read as two;
 * it is recorded as an error instead and the rest of it skipped. */
static char *read_line(char *buf, int num, void *stream)
{
    load_t *l = stream;
    if (fgets(buf, num, l->f) == NULL)
        return NULL;
    l->line++;
    size_t n = strlen(buf);
    if (n + 1 == (size_t)num && buf[n - 1] != '\n') {
        int c = fgetc(l->f);
        if (c != EOF && c != '\n') {
            while ((c = fgetc(l->f)) != EOF && c != '\n')
                ;
            if (l->long_line == 0) {
                l->long_line = l->line;
                l->max = num - 2;
            }
            buf[0] = '\0';
        }
    }
    return buf;
}

/* Record the first error (the handler goes on: inih reports the first
 * failing line, which must be the one described). */
static int refuse(load_t *l, const char *what)
{
    if (l->err_line == 0) {
        l->err_line = l->line;
        snprintf(l->err, sizeof l->err, "%s:%d: %s", l->path, l->line, what);
    }
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_t *l = user;
    char expect[128], what[360];
    size_t i = 0;
    if (section[0] == '\0') {
        snprintf(what, sizeof what, "key '%.64s' is outside a section: put it under [relay]", name);
        return refuse(l, what);
    }
    if (strcmp(section, "relay") != 0) {
        snprintf(what, sizeof what, "unknown section [%.64s] (key '%.64s'): the only section is "
                 "[relay]", section, name);
        return refuse(l, what);
    }
    while (kl_cli_key(i) && strcmp(kl_cli_key(i), name) != 0)
        i++;
    if (kl_cli_key(i) == NULL || i >= 64) {
        snprintf(what, sizeof what, "unknown key '%.64s' (the keys are the options of "
                 "kollega-relay serve --help without --; etc/relay.conf lists them)", name);
        return refuse(l, what);
    }
    if (l->set & (1ull << i)) {
        snprintf(what, sizeof what, "key '%s' is set twice (first on line %d)", name,
                 l->set_line[i]);
        return refuse(l, what);
    }
    if (kl_cli_key_set(l->o, name, value, expect, sizeof expect) != 0) {
        snprintf(what, sizeof what, "key '%s': must be %s, got '%.64s'", name, expect, value);
        return refuse(l, what);
    }
    l->set |= 1ull << i;
    l->set_line[i] = l->line;
    return 1;
}

int kl_config_load(kl_cli_opts_t *o, const char *path, uint64_t *set, char *err, size_t cap)
{
    load_t l;
    memset(&l, 0, sizeof l);
    l.o = o;
    l.path = path;
    l.f = fopen(path, "r");
    if (l.f == NULL) {
        snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
        return KL_EIO;
    }
    int r = ini_parse_stream(read_line, &l, on_key, &l);
    int bad_read = ferror(l.f);
    fclose(l.f);
    if (bad_read) {
        snprintf(err, cap, "cannot read %s: read error", path);
        return KL_EIO;
    }
    if (r == -2) {
        snprintf(err, cap, "cannot read %s: out of memory", path);
        return KL_EIO;
    }
    int first = r > 0 ? r : 0;
    if (l.long_line && (first == 0 || l.long_line <= first)) {
        snprintf(err, cap, "%s:%d: line too long (at most %d characters)", path, l.long_line, l.max);
        return KL_EINVAL;
    }
    if (l.err_line && l.err_line == first) {
        snprintf(err, cap, "%s", l.err);
        return KL_EINVAL;
    }
    if (first) {
        snprintf(err, cap, "%s:%d: not a 'key = value' line, a [section] line or a comment "
                 "(# or ;)", path, first);
        return KL_EINVAL;
    }
    if (set)
        *set = l.set;
    return 0;
}

int kl_config_serve_opts(kl_cli_opts_t *o, const char *path, char *err, size_t cap)
{
    if (path) {
        int r = kl_config_load(o, path, NULL, err, cap);
        if (r)
            return r;
    }
    /* The command line again, over the file: flags win. It parsed once
     * already, so this cannot fail (and prints nothing). */
    int help = o->help;
    if (kl_cli_parse(o->argc, o->argv, o) != 0) {
        snprintf(err, cap, "the command line no longer parses");
        return KL_EINVAL;
    }
    o->help = help;
    return 0;
}
