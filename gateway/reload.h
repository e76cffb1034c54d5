/* Configuration reloads (SIGHUP), on the main thread: a new snapshot is
 * loaded and checked whole, the sockets of new listeners opened, and only
 * then published to the workers, which switch at their next loop turn.
 * Old snapshots are freed once no worker uses them. */
#ifndef RINGGATE_RELOAD_H
#define RINGGATE_RELOAD_H

#include "config.h"
#include "worker.h"

/* Loads `path` and publishes it in place of *current. On failure logs
 * every error (FILE:LINE:COL), counts it, and keeps *current. */
void reload_config(const char *path, struct config **current, struct worker *workers,
                   unsigned n_workers);

/* Frees the snapshots every worker has let go of. Called periodically. */
void reload_collect(struct worker *workers, unsigned n_workers);

/* At exit, after the workers have stopped. */
void reload_free_all(struct worker *workers, unsigned n_workers);

#endif
