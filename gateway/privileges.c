/* Dropping root. */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

int privileges_drop(const char *user, char *err, size_t err_size)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    if (!user) { /* workers as root only when asked for */
        snprintf(err, err_size, "started as root without 'user': set 'user: ringgate' (the "
                                "packages create that user), or 'user: root' to serve as root");
        return -1;
    }
    pw = getpwnam(user);
    if (!pw) {
        snprintf(err, err_size, "user '%s': no such user", user);
        return -1;
    }
    if (pw->pw_uid == 0) { /* `user: root`: asked for, not an oversight */
        log_info("running as root, as 'user: %s' asks", user);
        return 0;
    }
    /* glibc applies these to every thread of the process. */
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, err_size, "becoming user '%s': %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) { /* must not be possible any more */
        snprintf(err, err_size, "becoming user '%s': root could be regained", user);
        return -1;
    }
    prctl(PR_SET_DUMPABLE, 1); /* cores and /proc stay usable after the change */
    log_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw->pw_uid,
             (unsigned)pw->pw_gid);
    return 0;
}
