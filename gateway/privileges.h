/* Least privilege: started as root (to bind ports below 1024), the process
 * becomes the configured user before it serves anything. */
#ifndef RINGGATE_PRIVILEGES_H
#define RINGGATE_PRIVILEGES_H

#include <stddef.h>

/* user NULL: keeps the current identity, except that root is refused
 * (-1): workers run as root only with `user: root` (uid 0), on purpose.
 * Otherwise, when root: supplementary groups, gid and uid of `user`, all
 * threads, no way back; not root: nothing to do (already unprivileged).
 * -1 with err on failure. */
int privileges_drop(const char *user, char *err, size_t err_size);

#endif
