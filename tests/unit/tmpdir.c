/* Scratch directories for unit tests that use real files (tmpdir.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kollega/crypto.h"
#include "tmpdir.h"

void kl_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[400];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

unsigned char *kl_test_read_file(const char *path, size_t *len)
{
    unsigned char *b = NULL;
    long n = -1;
    FILE *fp = fopen(path, "rb");
    *len = 0;
    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (b = malloc(n > 0 ? (size_t)n : 1)) != NULL && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    if (b)
        *len = (size_t)n;
    return b;
}

int kl_test_scratch(char dir[64], char path[128], const char *tmpl, const char *file)
{
    snprintf(dir, 64, "%s", tmpl);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, 128, "%s/%s", dir, file);
    return 0;
}

int kl_test_store_setup(void **state)
{
    kl_test_files_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0 ||
        kl_test_scratch(f->dir, f->path, "/tmp/kl-store-XXXXXX", "kollega.db") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int kl_test_store_teardown(void **state)
{
    kl_test_files_t *f = *state;
    kl_test_rmdir(f->dir);
    free(f);
    return 0;
}
