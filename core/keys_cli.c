/* `llmux keys create|list ...`: key management from the command line, straight
 * on the configured database (a running llmux picks changes up on its next
 * key refresh, within about a second). The key is printed once. */
#include "accounts.h"
#include "config.h"
#include "storage.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void keys_usage(FILE *f)
{
    fprintf(f, "usage: llmux keys create --label LABEL [--name NAME] [--limit USD] [--rate N/SECONDS]\n"
               "                         [--expires EPOCH_SECONDS] [--config FILE]\n"
               "       llmux keys list [--config FILE]\n");
}

int llmux_keys_main(int argc, char **argv)
{
    if (argc < 1) { keys_usage(stderr); return 2; }
    const char *cmd = argv[0], *config = NULL, *label = NULL, *name = NULL, *limit = NULL, *rate = NULL, *expires = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "llmux keys: '%s' needs a value\n", a); return 2; }
        if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--limit")) limit = v;
        else if (!strcmp(a, "--rate")) rate = v;
        else if (!strcmp(a, "--expires")) expires = v;
        else { fprintf(stderr, "llmux keys: unknown option '%s'\n", a); keys_usage(stderr); return 2; }
    }
    char err[1024];
    llmux_config *cfg = llmux_config_load(config, err, sizeof err);
    if (!cfg) { fprintf(stderr, "llmux keys: %s\n", err); return 1; }
    if (!cfg->storage_mode) { fprintf(stderr, "llmux keys: storage is off in this config\n"); llmux_config_unref(cfg); return 1; }
    llmux_db *db = llmux_db_open(cfg->storage_mode == 2, cfg->storage_path, err, sizeof err);
    int rc = 1;
    if (!db || llmux_db_migrate(db, err, sizeof err) < 0) {
        fprintf(stderr, "llmux keys: %s\n", err);
        goto out;
    }
    if (!strcmp(cmd, "create")) {
        if (!label) { fprintf(stderr, "llmux keys create: --label is required\n"); rc = 2; goto out; }
        llmux_key_row row = {0};
        char key[80];
        if (llmux_key_generate(key) < 0) { fprintf(stderr, "llmux keys: no randomness\n"); goto out; }
        llmux_key_hash(key, strlen(key), row.hash);
        row.name = (char *)(name ? name : label);
        row.label = (char *)label;
        if (limit) {
            char *end;
            row.limit_usd = strtod(limit, &end);
            if (*end || row.limit_usd < 0) { fprintf(stderr, "llmux keys: --limit wants USD, e.g. 5 or 0.25\n"); rc = 2; goto out; }
            row.has_limit = 1;
        }
        if (rate) {
            long long n = 0, s = 0;
            if (sscanf(rate, "%lld/%lld", &n, &s) != 2 || n < 1 || s < 1) {
                fprintf(stderr, "llmux keys: --rate wants REQUESTS/SECONDS, e.g. 60/60\n");
                rc = 2;
                goto out;
            }
            row.rl_requests = n;
            row.rl_interval_s = s;
        }
        if (expires) row.expires_at = strtoll(expires, NULL, 10);
        row.created_at = row.updated_at = time(NULL);
        if (llmux_storage_put_key(db, &row, err, sizeof err) < 0) { fprintf(stderr, "llmux keys: %s\n", err); goto out; }
        printf("%s\n", key); /* the only time the key is shown */
        fprintf(stderr, "created key %s (hash %s) in %s storage\n", label, row.hash, llmux_db_kind(db));
        memset(key, 0, sizeof key);
        rc = 0;
    } else if (!strcmp(cmd, "list")) {
        llmux_key_row *rows = NULL;
        size_t n = 0;
        if (llmux_storage_load_keys(db, &rows, &n, err, sizeof err) < 0) { fprintf(stderr, "llmux keys: %s\n", err); goto out; }
        for (size_t i = 0; i < n; i++) {
            printf("%s  %-20s usage=%.6f limit=%s%s\n", rows[i].hash, rows[i].label, rows[i].usage_usd,
                   rows[i].has_limit ? "" : "none", rows[i].disabled ? " disabled" : "");
            llmux_key_row_clear(&rows[i]);
        }
        free(rows);
        rc = 0;
    } else {
        keys_usage(stderr);
        rc = 2;
    }
out:
    llmux_db_close(db);
    llmux_config_unref(cfg);
    return rc;
}
