/* gateway/file_check.c: the permission rules, on facts made up here (no
 * chmod needed), and gateway/config_files.c: which files a configuration
 * names. */
#include "config_files.h"
#include "file_check.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "test.h"

#define RUN_UID 998 /* the user ringgate runs as */

static struct file_problem problems[FILE_CHECK_MAX_PROBLEMS];

static size_t check(enum file_kind kind, mode_t perm, uid_t owner, bool secret)
{
    struct file_facts facts = {(kind == FILE_LOG_DIR ? S_IFDIR : S_IFREG) | perm, owner, secret};

    memset(problems, 0, sizeof(problems));
    return file_check("/etc/ringgate/x", kind, &facts, RUN_UID, problems);
}

static bool has(size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(problems[i].line, text)) return true;
    return false;
}

static void test_safe_files_say_nothing(void)
{
    CHECK_INT(check(FILE_CONFIG, 0644, 0, false), 0);
    CHECK_INT(check(FILE_CONFIG, 0600, RUN_UID, true), 0);
    CHECK_INT(check(FILE_CONFIG, 0640, 0, true), 0); /* a secret, readable by the group only */
    CHECK_INT(check(FILE_JWKS, 0444, 0, false), 0);
    CHECK_INT(check(FILE_SCHEMA, 0644, RUN_UID, false), 0);
    CHECK_INT(check(FILE_CERT, 0644, 0, false), 0);
    CHECK_INT(check(FILE_CA, 0644, 0, false), 0);
    CHECK_INT(check(FILE_KEY, 0640, 0, false), 0); /* root:ringgate 0640, as packaged */
    CHECK_INT(check(FILE_KEY, 0400, RUN_UID, false), 0);
    CHECK_INT(check(FILE_LOG_DIR, 0750, RUN_UID, false), 0);
    CHECK_INT(check(FILE_LOG_DIR, 01777, 0, false), 0);   /* like /tmp */
    CHECK_INT(check(FILE_LOG_DIR, 0775, 1234, false), 0); /* only world-writable counts */
}

static void test_the_line_format(void)
{
    CHECK_INT(check(FILE_CONFIG, 0666, 0, false), 1);
    CHECK_STR(problems[0].line,
              "/etc/ringgate/x: warning: configuration file is writable by its group and every "
              "other user (mode 0666, owner uid 0); only root should be able to change it: "
              "chmod go-w /etc/ringgate/x");
    CHECK(!problems[0].severe);
}

static void test_writable_by_group_or_others(void)
{
    static const enum file_kind kinds[] = {FILE_CONFIG, FILE_JWKS, FILE_SCHEMA, FILE_CERT, FILE_CA};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        CHECK_INT(check(kinds[i], 0664, 0, false), 1);
        CHECK(has(1, "is writable by its group (mode 0664"));
        CHECK_INT(check(kinds[i], 0646, 0, false), 1);
        CHECK(has(1, "is writable by every other user (mode 0646"));
        CHECK(!problems[0].severe);
    }
    CHECK_INT(check(FILE_JWKS, 0620, 0, false), 1);
    CHECK(has(1, "JWKS file is writable"));
    CHECK_INT(check(FILE_SCHEMA, 0602, 0, false), 1);
    CHECK(has(1, "schema file is writable"));
    CHECK_INT(check(FILE_CA, 0660, 0, false), 1);
    CHECK(has(1, "CA bundle is writable"));
}

static void test_owned_by_someone_else(void)
{
    CHECK_INT(check(FILE_CERT, 0644, 1000, false), 1);
    CHECK(has(1, "TLS certificate is owned by neither root nor the user ringgate runs as, "
                 "uid 998 (mode 0644, owner uid 1000); its owner can change it: chown root"));
    CHECK_INT(check(FILE_CONFIG, 0666, 1000, false), 2); /* both problems, one line each */
    CHECK(has(2, "writable") && has(2, "owned by neither"));
}

static void test_private_keys_are_loud(void)
{
    size_t n = check(FILE_KEY, 0644, 0, false);

    CHECK_INT(n, 1);
    CHECK(
        has(n, "TLS private key is readable by every user (mode 0644, owner uid 0); chmod o-rwx"));
    CHECK(problems[0].severe);
    n = check(FILE_KEY, 0660, 0, false);
    CHECK_INT(n, 1);
    CHECK(has(n, "TLS private key is writable by its group") && problems[0].severe);
    n = check(FILE_KEY, 0666, 4242, false);
    CHECK_INT(n, 3); /* readable, writable, owned by another user */
    for (size_t i = 0; i < n; i++)
        CHECK(problems[i].severe);
    CHECK_INT(check(FILE_KEY, 0604, 0, false), 1); /* o+r alone */
}

static void test_config_with_a_secret(void)
{
    CHECK_INT(check(FILE_CONFIG, 0644, 0, true), 1);
    CHECK(has(1, "configuration file holds a JWT secret and is readable by every user"));
    CHECK_INT(check(FILE_CONFIG, 0644, 0, false), 0);
    CHECK_INT(check(FILE_JWKS, 0644, 0, true), 0); /* only the configuration's own flag */
}

static void test_log_directory(void)
{
    CHECK_INT(check(FILE_LOG_DIR, 0777, 0, false), 1);
    CHECK(has(1, "access log directory is writable by every user and has no sticky bit "
                 "(mode 0777, owner uid 0); any user can replace the log"));
    CHECK_INT(check(FILE_LOG_DIR, 0773, 0, false), 1);
    CHECK_INT(check(FILE_LOG_DIR, 01773, 0, false), 0);
}

static void test_root_without_user(void)
{
    struct file_problem p;

    CHECK(file_check_root("/etc/ringgate/ringgate.yaml", 0, NULL, &p));
    CHECK(strstr(p.line, "/etc/ringgate/ringgate.yaml: warning: the workers will run as root: "
                         "'user' is not set") == p.line);
    CHECK(!file_check_root("/c.yaml", 0, "ringgate", &p));
    CHECK(!file_check_root("/c.yaml", 0, "root", &p)); /* asked for */
    CHECK(!file_check_root("/c.yaml", 1000, NULL, &p));
}

static const char yaml[] = "listeners:\n"
                           "  - name: a\n"
                           "    listen: 127.0.0.1:1\n"
                           "    tls:\n"
                           "      certificates:\n"
                           "        - {cert: tls/a.pem, key: /abs/a.key}\n"
                           "        - cert: tls/a.pem\n" /* again: listed once */
                           "          key: tls/b.key\n"
                           "  - name: b\n"
                           "    listen: 127.0.0.1:2\n"
                           "upstreams:\n"
                           "  - {name: u, endpoints: [127.0.0.1:3], tls: true, ca: ca.pem}\n"
                           "  - {name: v, endpoints: [127.0.0.1:4]}\n"
                           "jwt_providers:\n"
                           "  - {name: j, jwks_file: keys/jwks.json}\n"
                           "  - {name: k, secret: c2VjcmV0}\n"
                           "schemas:\n"
                           "  - {name: s, file: /schemas/order.json}\n";

static void test_files_named_by_a_configuration(void)
{
    struct config_files list;
    static const struct named_file want[] = {
        {"/etc/tls/a.pem", FILE_CERT},      {"/abs/a.key", FILE_KEY},
        {"/etc/tls/b.key", FILE_KEY},       {"/etc/ca.pem", FILE_CA},
        {"/etc/keys/jwks.json", FILE_JWKS}, {"/schemas/order.json", FILE_SCHEMA},
    };

    /* Relative paths are relative to the configuration's directory. */
    CHECK_INT(config_files_list_string("/etc/x.yaml", yaml, sizeof(yaml) - 1, &list), 0);
    CHECK(list.holds_secret);
    CHECK_INT(list.count, 6);
    for (size_t i = 0; i < list.count && i < 6; i++) {
        CHECK_STR(list.files[i].path, want[i].path);
        CHECK_INT(list.files[i].kind, want[i].kind);
    }
    config_files_free(&list);
    CHECK_INT(config_files_list_string("/x.yaml", "workers: 1\n", 11, &list), 0);
    CHECK_INT(list.count, 0);
    CHECK(!list.holds_secret);
    config_files_free(&list);
    CHECK_INT(config_files_list_string("/x.yaml", "a: [", 4, &list), -1);
    CHECK_INT(list.count, 0);
}

int main(void)
{
    RUN(test_safe_files_say_nothing);
    RUN(test_the_line_format);
    RUN(test_writable_by_group_or_others);
    RUN(test_owned_by_someone_else);
    RUN(test_private_keys_are_loud);
    RUN(test_config_with_a_secret);
    RUN(test_log_directory);
    RUN(test_root_without_user);
    RUN(test_files_named_by_a_configuration);
    return TEST_REPORT();
}
