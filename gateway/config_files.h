/* The files a configuration names: TLS certificates, keys and CA bundles,
 * JWKS and schema files, with paths resolved as the loader resolves them
 * (relative to the configuration file's directory). The snapshot keeps the
 * loaded contents, not the paths, so they are read again from the YAML. */
#ifndef RINGGATE_CONFIG_FILES_H
#define RINGGATE_CONFIG_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "file_check.h"

struct named_file {
    char *path;
    enum file_kind kind;
};

struct config_files {
    struct named_file *files; /* in file order, each (path, kind) once */
    size_t count;
    bool holds_secret; /* a jwt_providers[].secret is written in the file */
};

/* Reads `config_path` (an already validated configuration; the rest is
 * ignored) into *out. 0, or -1 when the file cannot be read or parsed. */
int config_files_list(const char *config_path, struct config_files *out);

/* Same, from text in memory. */
int config_files_list_string(const char *config_path, const char *text, size_t len,
                             struct config_files *out);

void config_files_free(struct config_files *list);

#endif
