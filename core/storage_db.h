/* A tiny SQL layer with two backends (SQLite, PostgreSQL) behind one call:
 * statements are written once with $1..$N placeholders (SQLite sees ?1..?N)
 * and rows come back as text (NULL for SQL NULL). Used only from the storage
 * thread (and the `llmux keys` CLI), never from a worker loop. */
#ifndef LLMUX_STORAGE_DB_H
#define LLMUX_STORAGE_DB_H
#include <stddef.h>
#include <stdint.h>

enum { LLMUX_DB_NULL, LLMUX_DB_INT, LLMUX_DB_DOUBLE, LLMUX_DB_TEXT };

typedef struct {
    int type;
    int64_t i;
    double d;
    const char *s;
} llmux_db_val;

#define DB_NULLV ((llmux_db_val){LLMUX_DB_NULL, 0, 0, NULL})
#define DB_INT(v) ((llmux_db_val){LLMUX_DB_INT, (int64_t)(v), 0, NULL})
#define DB_DBL(v) ((llmux_db_val){LLMUX_DB_DOUBLE, 0, (double)(v), NULL})
#define DB_TEXT(v) ((llmux_db_val){(v) ? LLMUX_DB_TEXT : LLMUX_DB_NULL, 0, 0, (v)})

/* Returns non-zero to stop reading rows. */
typedef int (*llmux_db_row_cb)(void *ud, int ncols, const char *const *vals);

typedef struct llmux_db llmux_db;

/* kind: "sqlite" (target = path) or "postgres" (target = conninfo). */
llmux_db *llmux_db_open(int is_postgres, const char *target, char *err, size_t errlen);
void llmux_db_close(llmux_db *db);
const char *llmux_db_kind(const llmux_db *db);
/* Runs one statement; rows (if any) go to cb. Returns 0 or -1 (err set).
 * PostgreSQL: a lost connection is reset once and the statement retried
 * when it is not inside a transaction. */
int llmux_db_exec(llmux_db *db, const char *sql, const llmux_db_val *params, int nparams,
                  llmux_db_row_cb cb, void *ud, char *err, size_t errlen);
/* Versioned schema: applies every missing migration, each in a transaction. */
int llmux_db_migrate(llmux_db *db, char *err, size_t errlen);
#endif
