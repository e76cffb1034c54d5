/* Permission checks on the files a configuration trusts. */
#include "file_check.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_files.h"
#include "log.h"

static const char *kind_name(enum file_kind kind)
{
    switch (kind) {
    case FILE_CONFIG:
        return "configuration file";
    case FILE_JWKS:
        return "JWKS file";
    case FILE_SCHEMA:
        return "schema file";
    case FILE_CERT:
        return "TLS certificate";
    case FILE_CA:
        return "CA bundle";
    case FILE_KEY:
        return "TLS private key";
    case FILE_LOG_DIR:
        return "access log directory";
    }
    return "file";
}

/* One problem: "PATH: warning: WHAT (mode 0644, owner uid 1000); TODO". */
static size_t add(struct file_problem *out, size_t n, bool severe, const char *path,
                  const struct file_facts *facts, const char *what, const char *todo_fmt, ...)
    __attribute__((format(printf, 7, 8)));

static size_t add(struct file_problem *out, size_t n, bool severe, const char *path,
                  const struct file_facts *facts, const char *what, const char *todo_fmt, ...)
{
    struct file_problem *p = &out[n];
    size_t used;
    int len;
    va_list ap;

    if (n >= FILE_CHECK_MAX_PROBLEMS) return n;
    p->severe = severe;
    len = snprintf(p->line, sizeof(p->line), "%s: warning: %s (mode %04o, owner uid %u); ", path,
                   what, (unsigned)(facts->mode & 07777), (unsigned)facts->owner);
    used = len < 0 ? 0 : (size_t)len < sizeof(p->line) ? (size_t)len : sizeof(p->line) - 1;
    va_start(ap, todo_fmt);
    vsnprintf(p->line + used, sizeof(p->line) - used, todo_fmt, ap);
    va_end(ap);
    return n + 1;
}

/* "its group", "others", "its group and others": who besides the owner may
 * do what `group_bit`/`other_bit` allow. NULL when nobody. */
static const char *who(mode_t mode, mode_t group_bit, mode_t other_bit)
{
    if ((mode & group_bit) && (mode & other_bit)) return "its group and every other user";
    if (mode & group_bit) return "its group";
    if (mode & other_bit) return "every other user";
    return NULL;
}

static size_t check_writers(const char *path, enum file_kind kind, const struct file_facts *facts,
                            struct file_problem *out, size_t n)
{
    const char *writers = who(facts->mode, S_IWGRP, S_IWOTH);
    char what[160];

    if (!writers) return n;
    snprintf(what, sizeof(what), "%s is writable by %s", kind_name(kind), writers);
    return add(out, n, kind == FILE_KEY, path, facts, what,
               "only root should be able to change it: chmod go-w %s", path);
}

static size_t check_owner(const char *path, enum file_kind kind, const struct file_facts *facts,
                          uid_t run_uid, struct file_problem *out, size_t n)
{
    char what[160];

    if (facts->owner == 0 || facts->owner == run_uid) return n;
    snprintf(what, sizeof(what),
             "%s is owned by neither root nor the user ringgate runs as, uid %u", kind_name(kind),
             (unsigned)run_uid);
    return add(out, n, kind == FILE_KEY, path, facts, what,
               "its owner can change it: chown root %s", path);
}

static size_t check_key_readers(const char *path, const struct file_facts *facts,
                                struct file_problem *out, size_t n)
{
    if (!(facts->mode & S_IROTH)) return n;
    return add(out, n, true, path, facts, "TLS private key is readable by every user",
               "chmod o-rwx %s (root:ringgate and mode 0640 is enough for ringgate), and "
               "consider the key disclosed",
               path);
}

static size_t check_config_secret(const char *path, const struct file_facts *facts,
                                  struct file_problem *out, size_t n)
{
    if (!facts->holds_secret || !(facts->mode & S_IROTH)) return n;
    return add(out, n, false, path, facts,
               "configuration file holds a JWT secret and is readable by every user",
               "chmod o-rwx %s, or keep the key in a jwks_file only ringgate can read", path);
}

/* Anyone may replace or remove the log file in a world-writable directory
 * without the sticky bit. */
static size_t check_log_dir(const char *path, const struct file_facts *facts,
                            struct file_problem *out, size_t n)
{
    if (!(facts->mode & S_IWOTH) || (facts->mode & S_ISVTX)) return n;
    return add(out, n, false, path, facts,
               "access log directory is writable by every user and has no sticky bit",
               "any user can replace the log: chmod o-w %s (or chmod +t %s)", path, path);
}

size_t file_check(const char *path, enum file_kind kind, const struct file_facts *facts,
                  uid_t run_uid, struct file_problem out[FILE_CHECK_MAX_PROBLEMS])
{
    size_t n = 0;

    if (kind == FILE_LOG_DIR) return check_log_dir(path, facts, out, n);
    if (kind == FILE_KEY) n = check_key_readers(path, facts, out, n);
    n = check_writers(path, kind, facts, out, n);
    n = check_owner(path, kind, facts, run_uid, out, n);
    if (kind == FILE_CONFIG) n = check_config_secret(path, facts, out, n);
    return n;
}

bool file_check_root(const char *config_path, uid_t euid, const char *user,
                     struct file_problem *out)
{
    if (euid != 0 || user) return false;
    out->severe = false;
    snprintf(out->line, sizeof(out->line),
             "%s: warning: the workers will run as root: 'user' is not set; set 'user: "
             "ringgate' (the packages create that user), or 'user: root' to mean it",
             config_path);
    return true;
}

/* The uid the workers will have: `user`'s when started as root, else ours. */
static uid_t run_uid_of(const char *user)
{
    uid_t euid = geteuid();
    struct passwd *pw;

    if (euid != 0 || !user) return euid;
    pw = getpwnam(user);
    return pw ? pw->pw_uid : euid;
}

static size_t check_path(const char *path, enum file_kind kind, bool holds_secret, uid_t run_uid,
                         file_report_fn report, void *ctx)
{
    struct file_problem problems[FILE_CHECK_MAX_PROBLEMS];
    struct file_facts facts;
    struct stat st;
    size_t n;

    if (stat(path, &st) < 0) return 0;
    facts = (struct file_facts){st.st_mode, st.st_uid, holds_secret};
    n = file_check(path, kind, &facts, run_uid, problems);
    for (size_t i = 0; i < n; i++)
        report(&problems[i], ctx);
    return n;
}

/* The directory of the access log, when there is a log file. */
static size_t check_log_dir_of(const char *log, uid_t run_uid, file_report_fn report, void *ctx)
{
    const char *slash;
    char dir[4096];

    if (!log || strcmp(log, "-") == 0 || !(slash = strrchr(log, '/'))) return 0;
    if ((size_t)(slash - log) >= sizeof(dir)) return 0;
    memcpy(dir, log, (size_t)(slash - log));
    dir[slash - log] = '\0';
    return check_path(slash == log ? "/" : dir, FILE_LOG_DIR, false, run_uid, report, ctx);
}

size_t file_check_config(const struct config *cfg, file_report_fn report, void *ctx)
{
    struct file_problem root;
    struct config_files named;
    uid_t run_uid = run_uid_of(cfg->user);
    bool listed = config_files_list(cfg->path, &named) == 0;
    size_t n = 0;

    if (file_check_root(cfg->path, geteuid(), cfg->user, &root)) {
        report(&root, ctx);
        n++;
    }
    n += check_path(cfg->path, FILE_CONFIG, listed && named.holds_secret, run_uid, report, ctx);
    for (size_t i = 0; listed && i < named.count; i++)
        n += check_path(named.files[i].path, named.files[i].kind, false, run_uid, report, ctx);
    n += check_log_dir_of(cfg->access_log, run_uid, report, ctx);
    if (listed) config_files_free(&named);
    return n;
}

void file_problem_log(const struct file_problem *problem, void *ctx)
{
    (void)ctx;
    log_write(problem->severe ? LOG_ERROR : LOG_WARN, "%s", problem->line);
}
