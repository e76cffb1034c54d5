/* Permission checks on the files a configuration trusts, in the manner of
 * sshd's StrictModes and nginx's warnings: a configuration, key, JWKS,
 * schema or certificate file that another local user can change, a private
 * key that every user can read, an access log directory where anyone can
 * swap the file. Problems are warnings (the start, the reload and `-t` go
 * on); the caller decides where the lines go.
 *
 * Each line reads "FILE: warning: <what> (mode 0644, owner uid 1000); <what
 * to do>". */
#ifndef RINGGATE_FILE_CHECK_H
#define RINGGATE_FILE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

enum file_kind {
    FILE_CONFIG,  /* the configuration file */
    FILE_JWKS,    /* a JWT provider's key set */
    FILE_SCHEMA,  /* a JSON Schema */
    FILE_CERT,    /* a TLS certificate (chain) */
    FILE_CA,      /* a CA bundle that upstream certificates are checked against */
    FILE_KEY,     /* a TLS private key */
    FILE_LOG_DIR, /* the directory the access log is written in */
};

/* What stat() says, and what the file holds. */
struct file_facts {
    mode_t mode;       /* st_mode: type and permission bits */
    uid_t owner;       /* st_uid */
    bool holds_secret; /* FILE_CONFIG: a JWT `secret` is written in it */
};

#define FILE_CHECK_MAX_PROBLEMS 4 /* per file */

struct file_problem {
    bool severe; /* a private key others can read or change: log as an error */
    char line[640];
};

/* Pure: the problems of one file, given its facts and the uid the workers
 * run as (root and that uid may own trusted files). Fills out[] and returns
 * how many (at most FILE_CHECK_MAX_PROBLEMS). */
size_t file_check(const char *path, enum file_kind kind, const struct file_facts *facts,
                  uid_t run_uid, struct file_problem out[FILE_CHECK_MAX_PROBLEMS]);

/* Pure: the warning that the workers will run as root, when started as root
 * (euid 0) without `user`. false when there is nothing to say. */
bool file_check_root(const char *config_path, uid_t euid, const char *user,
                     struct file_problem *out);

typedef void (*file_report_fn)(const struct file_problem *problem, void *ctx);

/* A file_report_fn for start-up and reloads: the line in the error log, at
 * error level when severe (`journalctl -p err` shows it), else warning. */
void file_problem_log(const struct file_problem *problem, void *ctx);

/* Checks the files `cfg` names as they are now (the configuration file
 * itself, TLS certificates, keys and CA bundles, JWKS and schema files, the
 * access log's directory) and whether the workers will run as root; calls
 * `report` once per problem. Files that cannot be stat()ed are skipped (the
 * loader has said what is wrong with them). Returns the number of problems. */
size_t file_check_config(const struct config *cfg, file_report_fn report, void *ctx);

#endif
