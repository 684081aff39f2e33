/* A main() for the fuzz targets in ordinary builds (gcc, no libFuzzer): runs
 * LLVMFuzzerTestOneInput once over every file named on the command line or
 * found in a named directory, in name order. ctest uses it to replay the
 * committed corpora, crash reproducers included, in every build. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX (1u << 20)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(REPLAY_MAX);
    size_t n = 0;
    if (f == NULL || buf == NULL) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f)
            fclose(f);
        free(buf);
        return -1;
    }
    n = fread(buf, 1, REPLAY_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int select_file(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            runs++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, select_file, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: cannot list %s\n", argv[i]);
            return 1;
        }
        int failed = 0;
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
            if (!failed && run_file(path) != 0)
                failed = 1;
            else if (!failed)
                runs++;
            free(names[k]);
        }
        free(names);
        if (failed)
            return 1;
    }
    printf("replay: %zu inputs, no failure\n", runs);
    return runs > 0 ? 0 : 1;
}
