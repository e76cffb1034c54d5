/* libFuzzer target: the configuration loader on arbitrary text. Every
 * input is answered (a snapshot or error lines), never a crash or leak;
 * error lines always carry FILE:LINE:COL. The lister of the files a
 * configuration names (for the permission checks) reads the same text:
 * whatever it finds is a path under the configuration's directory or an
 * absolute one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config_errors errors;
    struct config_files files;
    struct config *cfg;

    if (config_files_list_string("/fuzz/fuzz.yaml", (const char *)data, size, &files) == 0) {
        for (size_t i = 0; i < files.count; i++)
            if (files.files[i].path[0] != '/' || files.files[i].kind > FILE_LOG_DIR)
                abort();
        config_files_free(&files);
    } else if (files.count != 0 || files.files != NULL) {
        abort();
    }
    config_numeric_hosts_only = true;
    memset(&errors, 0, sizeof(errors));
    cfg = config_load_string("fuzz.yaml", (const char *)data, size, &errors);
    if (cfg) {
        config_free(cfg);
        return 0;
    }
    if (errors.count == 0)
        abort(); /* refused without saying why */
    for (size_t i = 0; i < errors.count && i < CONFIG_MAX_ERRORS; i++)
        if (strncmp(errors.lines[i], "fuzz.yaml:", 10) != 0)
            abort();
    return 0;
}
