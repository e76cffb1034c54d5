/* The configuration file -> one immutable struct config.
 *
 * libyaml composes the whole file into a node graph; we walk it with one
 * small table of "key -> handler" per mapping (nginx's ngx_command_t idea:
 * a handler gets the field it fills through an offset). Every problem is
 * collected with its position and loading goes on, so one `ringgate -t`
 * shows them all, sorted in file order. Relative paths are relative to the
 * directory of the configuration file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, strndup */
#endif
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "buf.h"
#include "http1.h"
#include "jwt.h"
#include "schema.h"
#include "tls.h"
#include "units.h"

#define MAX_FILE_BYTES (16u << 20)

#define MAX_KEEPALIVE 65535
#define DEFAULT_ACCESS_LOG "/var/log/ringgate/access.log"

struct diag {
    size_t line, col; /* 0-based, as libyaml counts */
    size_t seq;       /* order of discovery: keeps the sort stable */
    char *msg;
};

struct loader {
    const char *file;
    const char *text;
    char *base_dir; /* relative paths in the file are relative to this */
    yaml_document_t doc;
    struct config *cfg;
    struct diag *diags;
    size_t n_diags, cap_diags;
    size_t lost_diags;             /* not stored for lack of memory, still counted */
    yaml_node_t **route_upstreams; /* per route: its `upstream:` value, resolved last */
    yaml_node_t **route_jwts;      /* per route: its `jwt:` value, resolved last */
    yaml_node_t **route_limits;    /* per route: its `rate_limit:` value, resolved last */
    yaml_node_t **route_schemas;   /* per route: its `schema:` value, resolved last */
    yaml_node_t *first_redis_policy; /* `backend: redis`, checked against `redis:` last */
};

/* ---- reporting ---- */

static void report_mark(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report_mark(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    if (ld->n_diags == ld->cap_diags) {
        size_t cap = ld->cap_diags ? ld->cap_diags * 2 : 16;
        struct diag *d = realloc(ld->diags, cap * sizeof *d);
        if (!d) {
            ld->lost_diags++;
            return;
        }
        ld->diags = d;
        ld->cap_diags = cap;
    }
    struct diag *d = &ld->diags[ld->n_diags];
    d->msg = strdup(msg);
    if (!d->msg) {
        ld->lost_diags++;
        return;
    }
    d->line = mark.line;
    d->col = mark.column;
    d->seq = ld->n_diags++;
}

#define report(ld, node, ...) report_mark(ld, (node)->start_mark, __VA_ARGS__)

static int diag_order(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;

    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void export_diags(struct loader *ld, struct config_errors *errors)
{
    if (ld->n_diags) qsort(ld->diags, ld->n_diags, sizeof *ld->diags, diag_order);
    errors->count = ld->n_diags + ld->lost_diags;
    for (size_t i = 0; i < ld->n_diags && i < CONFIG_MAX_ERRORS; i++) {
        const struct diag *d = &ld->diags[i];
        snprintf(errors->lines[i], sizeof errors->lines[i], "%s:%zu:%zu: %s", ld->file, d->line + 1,
                 d->col + 1, d->msg);
    }
}

/* ---- node access and type checks ---- */

static yaml_node_t *node_at(struct loader *ld, int index)
{
    return yaml_document_get_node(&ld->doc, index);
}

static const char *scalar_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty value (`key:`), `~` or `null`, written without quotes. */
static bool is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = scalar_text(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *kind_name(yaml_node_type_t type)
{
    switch (type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        return "a scalar";
    default:
        return "nothing";
    }
}

static bool expect_kind(struct loader *ld, const char *key, yaml_node_t *n, yaml_node_type_t type)
{
    if (n->type == type) return true;
    report(ld, n, "'%s' must be %s, not %s", key, kind_name(type),
           is_null(n) ? "empty" : kind_name(n->type));
    return false;
}

/* A non-empty scalar without NUL bytes, or NULL (reported). */
static const char *expect_string(struct loader *ld, const char *key, yaml_node_t *n)
{
    if (!expect_kind(ld, key, n, YAML_SCALAR_NODE)) return NULL;
    if (is_null(n)) {
        report(ld, n, "'%s' needs a value", key);
        return NULL;
    }
    if (strlen(scalar_text(n)) != n->data.scalar.length) {
        report(ld, n, "'%s' must not contain a NUL byte", key);
        return NULL;
    }
    return scalar_text(n);
}

static bool expect_uint(struct loader *ld, const char *key, yaml_node_t *n, uint64_t max,
                        uint64_t *out)
{
    const char *s = expect_string(ld, key, n);
    uint64_t v = 0;

    if (!s) return false;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) {
            report(ld, n, "'%s' must be an integer, not '%.80s'", key, s);
            return false;
        }
        uint64_t digit = (uint64_t)(*p - '0');
        bool overflow = v > (UINT64_MAX - digit) / 10;
        v = v * 10 + digit;
        if (overflow || v > max) {
            report(ld, n, "'%s' must be between 0 and %llu", key, (unsigned long long)max);
            return false;
        }
    }
    *out = v;
    return true;
}

static const yaml_node_pair_t *pairs_begin(const yaml_node_t *map)
{
    return map->data.mapping.pairs.start;
}

static const yaml_node_pair_t *pairs_end(const yaml_node_t *map)
{
    return map->data.mapping.pairs.top;
}

static size_t items_count(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item_at(struct loader *ld, const yaml_node_t *seq, size_t i)
{
    return node_at(ld, seq->data.sequence.items.start[i]);
}

/* The value of `key` in a mapping (the first one if repeated), or NULL. */
static yaml_node_t *find_value(struct loader *ld, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (const yaml_node_pair_t *p = pairs_begin(map); p < pairs_end(map); p++) {
        yaml_node_t *k = node_at(ld, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return node_at(ld, p->value);
    }
    return NULL;
}

static char *copy_string(struct loader *ld, yaml_node_t *at, const char *s)
{
    char *copy = strdup(s);

    if (!copy) report(ld, at, "out of memory");
    return copy;
}

static void *alloc_array(struct loader *ld, yaml_node_t *at, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p) report(ld, at, "out of memory");
    return p;
}

/* ---- the table-driven mapping walk ---- */

typedef void parse_fn(struct loader *ld, const char *key, yaml_node_t *value, void *field);

struct key_rule {
    const char *key;
    parse_fn *parse; /* NULL: the key belongs to a feature this build lacks */
    size_t offset;   /* of the field handed to parse, in the section's struct */
    bool required;
};

/* clang-format off */
#define KEY(k, fn, type, member)      {k, fn, offsetof(type, member), false}
#define REQUIRED(k, fn, type, member) {k, fn, offsetof(type, member), true}
#define WHOLE(k, fn)                  {k, fn, 0, false} /* fn gets the whole struct */
#define WHOLE_REQUIRED(k, fn)         {k, fn, 0, true}
/* Accepting and ignoring these would be worse than refusing them: a gateway
 * that ignores `jwt: main` lets unauthenticated traffic through. */
#define RESERVED(k)                   {k, NULL, 0, false}
#define END_RULES                     {NULL, NULL, 0, false}
/* clang-format on */

static const struct key_rule *find_rule(const struct key_rule *rules, const char *key)
{
    for (; rules->key; rules++)
        if (strcmp(rules->key, key) == 0) return rules;
    return NULL;
}

/* Checks that `node` is a mapping and hands each key to its rule. `name` is
 * how the node is called in type errors ("limits", "listeners[2]"); `what`
 * names the kind of section in key errors ("listener"). Returns false when
 * the node is not a mapping. */
static bool parse_section(struct loader *ld, const char *name, yaml_node_t *node, const char *what,
                          const struct key_rule *rules, void *target)
{
    uint64_t seen = 0;

    if (!expect_kind(ld, name, node, YAML_MAPPING_NODE)) return false;
    for (const yaml_node_pair_t *p = pairs_begin(node); p < pairs_end(node); p++) {
        yaml_node_t *k = node_at(ld, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            report(ld, k, "keys must be scalars, not %s", kind_name(k->type));
            continue;
        }
        const char *key = scalar_text(k);
        const struct key_rule *rule = find_rule(rules, key);
        if (!rule) {
            report(ld, k, "unknown %s key '%.80s'", what, key);
            continue;
        }
        uint64_t bit = 1ull << (rule - rules);
        if (seen & bit) {
            report(ld, k, "duplicate key '%s'", key);
            continue;
        }
        seen |= bit;
        if (!rule->parse) {
            report(ld, k, "'%s' is not supported by this build yet", key);
            continue;
        }
        rule->parse(ld, key, node_at(ld, p->value), (char *)target + rule->offset);
    }
    for (const struct key_rule *r = rules; r->key; r++)
        if (r->required && !(seen & (1ull << (r - rules))))
            report(ld, node, "missing required %s key '%s'", what, r->key);
    return true;
}

/* ---- generic field handlers (field: the member named by the rule) ---- */

/* Names appear in metrics labels, logs and references between sections. */
static void set_name(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    char **out = field;

    if (!s) return;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("_-.", *p)) {
            report(ld, value, "invalid name '%.80s': use letters, digits, '_', '-' and '.'", s);
            return;
        }
    }
    *out = copy_string(ld, value, s);
}

static void set_bool(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    bool *out = field;

    if (!s) return;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        *out = false;
    else
        report(ld, value, "'%s' must be a bool (true or false), not '%.80s'", key, s);
}

static bool parse_duration_at(struct loader *ld, const char *key, yaml_node_t *value, uint64_t *ms)
{
    const char *s = expect_string(ld, key, value);

    if (!s) return false;
    if (duration_parse(s, ms) == 0) return true;
    report(ld, value, "'%s': invalid duration '%.80s' (expected e.g. 250ms, 2s, 5m, 1h)", key, s);
    return false;
}

static bool parse_size_at(struct loader *ld, const char *key, yaml_node_t *value, uint64_t *bytes)
{
    const char *s = expect_string(ld, key, value);

    if (!s) return false;
    if (size_parse(s, bytes) == 0) return true;
    report(ld, value, "'%s': invalid size '%.80s' (expected e.g. 512, 64KiB, 8MiB, 1GiB)", key, s);
    return false;
}

static void set_duration(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t ms;

    if (parse_duration_at(ld, key, value, &ms)) *(uint64_t *)field = ms;
}

static void set_timeout(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t ms;

    if (!parse_duration_at(ld, key, value, &ms)) return;
    if (ms == 0)
        report(ld, value, "'%s' must be greater than 0", key);
    else
        *(uint64_t *)field = ms;
}

static void set_size(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t bytes;

    if (parse_size_at(ld, key, value, &bytes)) *(uint64_t *)field = bytes;
}

static void set_nonzero_size(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t bytes;

    if (!parse_size_at(ld, key, value, &bytes)) return;
    if (bytes == 0)
        report(ld, value, "'%s' must be greater than 0", key);
    else
        *(uint64_t *)field = bytes;
}

/* ---- addresses and paths ---- */

static bool is_any_address(const struct sockaddr_any *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

static unsigned port_of(const struct sockaddr_any *a)
{
    if (a->ss.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

/* Two listening addresses that SO_REUSEPORT would let share traffic. "[::]"
 * may be dual-stack and then covers every IPv4 address too. */
static bool addresses_overlap(const struct sockaddr_any *a, const struct sockaddr_any *b)
{
    if (!a->len || !b->len || port_of(a) != port_of(b)) return false;
    if (a->ss.ss_family != b->ss.ss_family)
        return is_any_address(a->ss.ss_family == AF_INET6 ? a : b);
    if (is_any_address(a) || is_any_address(b)) return true;
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static int parse_port(const char *s, char *port, size_t port_size)
{
    unsigned long v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 5 || strspn(s, "0123456789") != n) return -1;
    v = strtoul(s, NULL, 10);
    if (v < 1 || v > 65535) return -1;
    snprintf(port, port_size, "%lu", v);
    return 0;
}

bool config_numeric_hosts_only;

int config_parse_address(const char *text, struct sockaddr_any *addr, char *err, size_t err_size)
{
    char host[256], port[8];
    const char *port_text, *colon;
    size_t host_len;
    bool bracketed = text[0] == '[';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int rc;

    if (bracketed) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, err_size, "invalid address '%.80s' (expected [v6]:port)", text);
            return -1;
        }
        host_len = (size_t)(close - text - 1);
        port_text = close + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        colon = strrchr(text, ':');
        if (!colon) {
            snprintf(err, err_size, "invalid address '%.80s' (expected host:port)", text);
            return -1;
        }
        host_len = (size_t)(colon - text);
        if (memchr(text, ':', host_len)) {
            snprintf(err, err_size, "invalid address '%.80s': write IPv6 addresses as [v6]:port",
                     text);
            return -1;
        }
        port_text = colon + 1;
        if (config_numeric_hosts_only)
            hints.ai_flags |= AI_NUMERICHOST;
    }
    if (host_len == 0 || host_len >= sizeof host) {
        snprintf(err, err_size, "invalid address '%.80s': %s host", text,
                 host_len ? "too long a" : "missing");
        return -1;
    }
    memcpy(host, text + (bracketed ? 1 : 0), host_len);
    host[host_len] = '\0';
    if (parse_port(port_text, port, sizeof port) < 0) {
        snprintf(err, err_size, "invalid port in '%.80s' (expected 1-65535)", text);
        return -1;
    }

    memset(addr, 0, sizeof *addr);
    if (!bracketed && strcmp(host, "*") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&addr->ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((uint16_t)atoi(port));
        addr->len = sizeof *sin;
        return 0;
    }
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "cannot resolve '%.80s': %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    memcpy(&addr->ss, res->ai_addr, res->ai_addrlen);
    addr->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Reports a bad address at `value`; true when it parsed. */
static bool parse_address_at(struct loader *ld, yaml_node_t *value, const char *text,
                             struct sockaddr_any *addr)
{
    char err[256];

    if (config_parse_address(text, addr, err, sizeof err) == 0) return true;
    report(ld, value, "%s", err);
    return false;
}

/* `path` as written, made relative to the configuration file's directory. */
static char *path_from_config(struct loader *ld, yaml_node_t *at, const char *path)
{
    char *out;

    if (path[0] == '/') return copy_string(ld, at, path);
    if (asprintf(&out, "%s/%s", ld->base_dir, path) < 0) {
        report(ld, at, "out of memory");
        return NULL;
    }
    return out;
}

char *config_base_dir(const char *config_path)
{
    const char *slash = strrchr(config_path, '/');
    char *dir, *real;

    if (!slash)
        dir = strdup(".");
    else if (slash == config_path)
        dir = strdup("/");
    else
        dir = strndup(config_path, (size_t)(slash - config_path));
    if (!dir) return NULL;
    /* Absolute, so that paths stay right whatever the process's cwd later. */
    real = realpath(dir, NULL);
    if (real) {
        free(dir);
        return real;
    }
    return dir;
}

/* ---- top-level scalars ---- */

static void parse_workers(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;
    unsigned *workers = field;

    if (expect_uint(ld, key, value, MAX_WORKERS, &n)) *workers = (unsigned)n;
}

static void parse_access_log(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    char **log = field;

    if (!s) return;
    free(*log);
    *log = NULL;
    if (strcmp(s, "off") == 0) return;
    if (strcmp(s, "-") == 0)
        *log = copy_string(ld, value, s);
    else
        *log = path_from_config(ld, value, s);
}

static void set_user(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);

    if (s) *(char **)field = copy_string(ld, value, s);
}

/* ---- limits ---- */

static void set_connection_cap(struct loader *ld, const char *key, yaml_node_t *value,
                               void *field)
{
    expect_uint(ld, key, value, 1u << 30, (uint64_t *)field);
}

/* Below one pooled block it would save nothing; above 16 MiB one response
 * would hold more than a buffer is for. */
static void set_response_buffer(struct loader *ld, const char *key, yaml_node_t *value,
                                void *field)
{
    uint64_t bytes;

    if (!parse_size_at(ld, key, value, &bytes))
        return;
    if (bytes < BUF_BLOCK || bytes > 16 * 1024 * 1024)
        report(ld, value, "'%s' must be between 16KiB and 16MiB", key);
    else
        *(uint64_t *)field = bytes;
}

static const struct key_rule limits_rules[] = {
    KEY("max_header_bytes", set_nonzero_size, struct limits_conf, max_header_bytes),
    KEY("max_body_bytes", set_size, struct limits_conf, max_body_bytes),
    KEY("header_timeout", set_timeout, struct limits_conf, header_timeout),
    KEY("idle_timeout", set_timeout, struct limits_conf, idle_timeout),
    KEY("tunnel_idle_timeout", set_timeout, struct limits_conf, tunnel_idle_timeout),
    KEY("max_connections", set_connection_cap, struct limits_conf, max_connections),
    KEY("max_connections_per_ip", set_connection_cap, struct limits_conf, max_connections_per_ip),
    KEY("max_memory", set_size, struct limits_conf, max_memory),
    KEY("response_buffer", set_response_buffer, struct limits_conf, response_buffer),
    END_RULES,
};

static void parse_limits(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "limits", limits_rules, field);
}

/* ---- admin ---- */

static void parse_admin_listen(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    cfg->admin_listen = copy_string(ld, value, s);
    cfg->has_admin = parse_address_at(ld, value, s, &cfg->admin);
}

static const struct key_rule admin_rules[] = {
    WHOLE_REQUIRED("listen", parse_admin_listen),
    END_RULES,
};

static void parse_admin(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "admin", admin_rules, field);
}

/* ---- sequences of named sections ---- */

/* Reports the second of two items with the same name, at its `name:`. */
static void check_unique_names(struct loader *ld, yaml_node_t *seq, const char *what,
                               const void *items, size_t stride, size_t name_offset, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = *(char *const *)((const char *)items + i * stride + name_offset);
        if (!name) continue;
        for (size_t j = 0; j < i; j++) {
            const char *earlier = *(char *const *)((const char *)items + j * stride + name_offset);
            if (!earlier || strcmp(name, earlier) != 0) continue;
            yaml_node_t *item = item_at(ld, seq, i);
            yaml_node_t *at = find_value(ld, item, "name");
            report(ld, at ? at : item, "duplicate %s name '%s' (first at line %zu)", what, name,
                   item_at(ld, seq, j)->start_mark.line + 1);
            break;
        }
    }
}

static char *default_name(struct loader *ld, yaml_node_t *at, const char *kind, size_t index)
{
    char *name;

    if (asprintf(&name, "%s%zu", kind, index) < 0) {
        report(ld, at, "out of memory");
        return NULL;
    }
    return name;
}

/* Checks the sequence and allocates one zeroed struct per item. */
static void *alloc_items(struct loader *ld, const char *key, yaml_node_t *seq, size_t size,
                         size_t *n)
{
    void *items;

    *n = 0;
    if (!expect_kind(ld, key, seq, YAML_SEQUENCE_NODE)) return NULL;
    items = alloc_array(ld, seq, items_count(seq), size);
    if (items) *n = items_count(seq);
    return items;
}

/* ---- listeners ---- */

static void parse_listen(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct listener_conf *l = field;
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    l->listen = copy_string(ld, value, s);
    parse_address_at(ld, value, s, &l->addr);
}

static void set_listener_cap(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;

    if (expect_uint(ld, key, value, 1u << 30, &n)) *(unsigned *)field = (unsigned)n;
}

/* Whole seconds, as TCP_DEFER_ACCEPT takes them (a part of one counts as
 * one); at most a minute. */
static void set_deferred_accept(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t ms;

    if (!parse_duration_at(ld, key, value, &ms)) return;
    if (ms > 60000)
        report(ld, value, "'%s' is at most 60s", key);
    else
        *(unsigned *)field = (unsigned)((ms + 999) / 1000);
}

/* ---- listeners[].tls ---- */

#define TLS_MAX_CERTIFICATES 32
#define TLS_MAX_ALPN 4

struct tls_section {
    struct tls_certificate_files files[TLS_MAX_CERTIFICATES];
    size_t n_files;
    uint16_t min_version;
    const char *alpn[TLS_MAX_ALPN];
    size_t n_alpn;
    bool broken; /* an error was reported: no context is built */
};

static char *tls_path(struct loader *ld, const char *key, yaml_node_t *value,
                      struct tls_section *t)
{
    const char *s = expect_string(ld, key, value);
    char *path = s ? path_from_config(ld, value, s) : NULL;

    if (!path) t->broken = true;
    return path;
}

static void set_cert_file(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct tls_section *t = (struct tls_section *)((char *)field - offsetof(struct tls_section, files));
    struct tls_certificate_files *f = &t->files[t->n_files];

    f->cert_file = tls_path(ld, key, value, t);
}

static void set_key_file(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct tls_section *t = (struct tls_section *)((char *)field - offsetof(struct tls_section, files));
    struct tls_certificate_files *f = &t->files[t->n_files];

    f->key_file = tls_path(ld, key, value, t);
}

static const struct key_rule certificate_rules[] = {
    {"cert", set_cert_file, offsetof(struct tls_section, files), true},
    {"key", set_key_file, offsetof(struct tls_section, files), true},
    END_RULES,
};

static void parse_certificates(struct loader *ld, const char *key, yaml_node_t *value,
                               void *field)
{
    struct tls_section *t = field;
    char name[48];

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) {
        t->broken = true;
        return;
    }
    if (items_count(value) == 0 || items_count(value) > TLS_MAX_CERTIFICATES) {
        report(ld, value, "'%s' needs 1 to %d certificates", key, TLS_MAX_CERTIFICATES);
        t->broken = true;
        return;
    }
    for (size_t i = 0; i < items_count(value); i++) {
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        if (!parse_section(ld, name, item_at(ld, value, i), "certificate", certificate_rules, t) ||
            !t->files[t->n_files].cert_file || !t->files[t->n_files].key_file)
            t->broken = true;
        t->n_files++;
    }
}

static void parse_min_version(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    struct tls_section *t = field;

    if (!s) {
        t->broken = true;
    } else if (strcmp(s, "1.2") == 0) {
        t->min_version = TLS_VERSION_1_2;
    } else if (strcmp(s, "1.3") == 0) {
        t->min_version = TLS_VERSION_1_3;
    } else {
        report(ld, value, "'%s' must be \"1.2\" or \"1.3\", not '%.40s'", key, s);
        t->broken = true;
    }
}

static void parse_alpn(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct tls_section *t = field;

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) {
        t->broken = true;
        return;
    }
    for (size_t i = 0; i < items_count(value); i++) {
        yaml_node_t *item = item_at(ld, value, i);
        const char *s = expect_string(ld, key, item);

        if (!s || t->n_alpn == TLS_MAX_ALPN) {
            t->broken = true;
        } else if (strcmp(s, "http/1.1") != 0) {
            report(ld, item, "ALPN protocol '%.40s' is not supported (this build speaks "
                             "http/1.1; h2 comes with HTTP/2)", s);
            t->broken = true;
        } else {
            t->alpn[t->n_alpn++] = s;
        }
    }
}

static const struct key_rule tls_rules[] = {
    WHOLE_REQUIRED("certificates", parse_certificates),
    WHOLE("min_version", parse_min_version),
    WHOLE("alpn", parse_alpn),
    END_RULES,
};

/* Certificates and keys are loaded and checked here (readable, matching,
 * not expired), so `ringgate -t` and a reload catch every problem. */
static void parse_tls(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    static const char *default_alpn[] = {"http/1.1"};
    struct listener_conf *l = field;
    struct tls_section t;
    struct tls_context_params params;
    char err[512];

    memset(&t, 0, sizeof t);
    t.min_version = TLS_VERSION_1_2;
    if (parse_section(ld, key, value, "tls", tls_rules, &t) && !t.broken && t.n_files) {
        memset(&params, 0, sizeof params);
        params.certificates = t.files;
        params.certificate_count = t.n_files;
        params.min_version = t.min_version;
        params.alpn = t.n_alpn ? t.alpn : default_alpn;
        params.alpn_count = t.n_alpn ? t.n_alpn : 1;
        l->tls = tls_context_new(&params, err, sizeof err);
        if (!l->tls)
            report(ld, find_value(ld, value, "certificates"), "%s", err);
    }
    for (size_t i = 0; i < t.n_files; i++) {
        free((char *)t.files[i].cert_file);
        free((char *)t.files[i].key_file);
    }
}

static const struct key_rule listener_rules[] = {
    KEY("name", set_name, struct listener_conf, name),
    WHOLE_REQUIRED("listen", parse_listen),
    KEY("max_tunnels", set_listener_cap, struct listener_conf, max_tunnels),
    KEY("max_connections", set_listener_cap, struct listener_conf, max_connections),
    KEY("deferred_accept", set_deferred_accept, struct listener_conf, deferred_accept_s),
    WHOLE("tls", parse_tls),
    END_RULES,
};

static void check_listener_addresses(struct loader *ld, yaml_node_t *seq)
{
    const struct config *cfg = ld->cfg;

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!addresses_overlap(&cfg->listeners[i].addr, &cfg->listeners[j].addr)) continue;
            yaml_node_t *at = find_value(ld, item_at(ld, seq, i), "listen");
            report(ld, at, "listener address '%s' overlaps listener '%s' ('%s')",
                   cfg->listeners[i].listen, cfg->listeners[j].name, cfg->listeners[j].listen);
            break;
        }
    }
}

static void parse_listeners(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;
    char name[32];

    cfg->listeners = alloc_items(ld, key, value, sizeof *cfg->listeners, &cfg->n_listeners);
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_conf *l = &cfg->listeners[i];
        yaml_node_t *item = item_at(ld, value, i);
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        if (!parse_section(ld, name, item, "listener", listener_rules, l)) continue;
        if (!l->name) l->name = default_name(ld, item, "listener", i);
    }
    check_unique_names(ld, value, "listener", cfg->listeners, sizeof *cfg->listeners,
                       offsetof(struct listener_conf, name), cfg->n_listeners);
    check_listener_addresses(ld, value);
}

/* ip | jwt.<claim> | header:<Name> | route */
static void parse_request_key(struct loader *ld, const char *key, yaml_node_t *value,
                              const char *what, enum request_key_kind *kind, char **arg)
{
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    if (!strcmp(s, "ip")) {
        *kind = RL_KEY_IP;
    } else if (!strcmp(s, "route")) {
        *kind = RL_KEY_ROUTE;
    } else if (!strncmp(s, "jwt.", 4) && s[4]) {
        *kind = RL_KEY_JWT_CLAIM;
        *arg = copy_string(ld, value, s + 4);
    } else if (!strncmp(s, "header:", 7) && s[7] && !strpbrk(s + 7, " :\t")) {
        *kind = RL_KEY_HEADER;
        *arg = copy_string(ld, value, s + 7);
    } else {
        report(ld, value, "unknown %s key '%.80s' (expected ip, jwt.<claim>, header:<Name> or "
                          "route)", what, s);
    }
}

static void upstream_hash_key(struct loader *ld, const char *key, yaml_node_t *value,
                              void *field)
{
    struct upstream_conf *u = field;

    parse_request_key(ld, key, value, "hash", &u->hash_key, &u->hash_key_arg);
}

/* ---- upstreams ---- */

struct endpoint_item {
    yaml_node_t *address;
    unsigned weight;
};

static void endpoint_address(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    (void)ld;
    (void)key;
    ((struct endpoint_item *)field)->address = value;
}

static void endpoint_weight(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;

    if (!expect_uint(ld, key, value, 1000, &n)) return;
    if (n == 0)
        report(ld, value, "'%s' must be between 1 and 1000", key);
    else
        ((struct endpoint_item *)field)->weight = (unsigned)n;
}

static const struct key_rule endpoint_rules[] = {
    WHOLE_REQUIRED("address", endpoint_address),
    WHOLE("weight", endpoint_weight),
    END_RULES,
};

static void parse_endpoints(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct upstream_conf *u = field;
    char name[32];

    u->endpoints = alloc_items(ld, key, value, sizeof *u->endpoints, &u->n_endpoints);
    if (u->endpoints && u->n_endpoints == 0)
        report(ld, value, "'%s' must list at least one endpoint", key);
    for (size_t i = 0; i < u->n_endpoints; i++) {
        struct endpoint_conf *e = &u->endpoints[i];
        yaml_node_t *item = item_at(ld, value, i);
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        e->weight = 1;
        if (item->type == YAML_MAPPING_NODE) { /* {address: host:port, weight: N} */
            struct endpoint_item it = {.weight = 1};
            parse_section(ld, name, item, "endpoint", endpoint_rules, &it);
            e->weight = it.weight;
            item = it.address;
            if (!item) continue;
        }
        const char *s = expect_string(ld, name, item);
        if (!s) continue;
        e->text = copy_string(ld, item, s);
        if (strncmp(s, "*:", 2) == 0)
            report(ld, item, "endpoint '%.80s' needs a host, not '*'", s);
        else
            parse_address_at(ld, item, s, &e->addr);
    }
}

static void parse_balance(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    enum balance *balance = field;

    if (!s) return;
    if (strcmp(s, "round_robin") == 0)
        *balance = BALANCE_ROUND_ROBIN;
    else if (strcmp(s, "least_request") == 0)
        *balance = BALANCE_LEAST_REQUEST;
    else if (strcmp(s, "hash") == 0)
        *balance = BALANCE_HASH;
    else
        report(ld, value, "unknown balance '%.80s' (expected round_robin, least_request or hash)",
               s);
}

static void parse_keepalive(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;
    unsigned *keepalive = field;

    if (expect_uint(ld, key, value, MAX_KEEPALIVE, &n)) *keepalive = (unsigned)n;
}

static void set_count(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;

    if (expect_uint(ld, key, value, 1u << 30, &n)) *(unsigned *)field = (unsigned)n;
}

static void set_positive_count(struct loader *ld, const char *key, yaml_node_t *value,
                               void *field)
{
    uint64_t n;

    if (!expect_uint(ld, key, value, 1u << 30, &n)) return;
    if (n == 0)
        report(ld, value, "'%s' must be at least 1", key);
    else
        *(unsigned *)field = (unsigned)n;
}

static const struct key_rule circuit_rules[] = {
    KEY("failures", set_count, struct circuit_conf, failures),
    KEY("open_for", set_timeout, struct circuit_conf, open_for),
    KEY("half_open_requests", set_positive_count, struct circuit_conf, half_open_requests),
    KEY("max_connections", set_count, struct circuit_conf, max_connections),
    KEY("max_pending", set_count, struct circuit_conf, max_pending),
    END_RULES,
};

static void parse_circuit(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "circuit_breaker", circuit_rules, field);
}

static void parse_retry_on(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    static const struct {
        const char *name;
        unsigned bit;
    } reasons[] = {
        {"connect_failure", RETRY_CONNECT_FAILURE}, {"refused_stream", RETRY_REFUSED_STREAM},
        {"timeout", RETRY_TIMEOUT}, {"502", RETRY_502}, {"503", RETRY_503}, {"504", RETRY_504},
    };
    unsigned *on = field;

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) return;
    *on = 0;
    for (size_t i = 0; i < items_count(value); i++) {
        yaml_node_t *item = item_at(ld, value, i);
        const char *s = expect_string(ld, key, item);
        size_t r = 0;

        if (!s) continue;
        while (r < sizeof(reasons) / sizeof(reasons[0]) && strcmp(reasons[r].name, s) != 0)
            r++;
        if (r == sizeof(reasons) / sizeof(reasons[0]))
            report(ld, item, "unknown retry condition '%.80s' (expected connect_failure, "
                             "refused_stream, timeout, 502, 503 or 504)", s);
        else
            *on |= reasons[r].bit;
    }
}

static const struct key_rule retry_rules[] = {
    KEY("attempts", set_count, struct retry_conf, attempts),
    KEY("on", parse_retry_on, struct retry_conf, on),
    END_RULES,
};

static void parse_retries(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "retries", retry_rules, field);
}

static void set_health_path(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);
    char **path = field;

    if (!s) return;
    if (s[0] != '/' || strpbrk(s, " \r\n\t")) {
        report(ld, value, "'%s' must be a path starting with '/', without spaces", key);
        return;
    }
    free(*path);
    *path = copy_string(ld, value, s);
}

static const struct key_rule health_rules[] = {
    KEY("path", set_health_path, struct health_conf, path),
    KEY("interval", set_timeout, struct health_conf, interval),
    KEY("timeout", set_timeout, struct health_conf, timeout),
    KEY("healthy", set_positive_count, struct health_conf, healthy),
    KEY("unhealthy", set_positive_count, struct health_conf, unhealthy),
    END_RULES,
};

static void parse_health(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct health_conf *h = field;

    if (parse_section(ld, key, value, "health_check", health_rules, field)) h->enabled = true;
}

static bool valid_host(const char *h)
{
    size_t n = strlen(h);

    if (h[0] == '[')
        return n > 2 && h[n - 1] == ']' && strspn(h + 1, "0123456789abcdef:.") == n - 2;
    return strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-._") == n;
}

static void set_sni(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    if (!valid_host(s))
        report(ld, value, "'%s' must be a host name, not '%.80s'", key, s);
    else
        *(char **)field = copy_string(ld, value, s);
}

static void set_ca(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);

    if (s) *(char **)field = path_from_config(ld, value, s);
}

/* The client side of TLS to the endpoints; the CA file is read here. */
static void build_upstream_tls(struct loader *ld, yaml_node_t *item, struct upstream_conf *u)
{
    static const char *alpn[] = {"http/1.1"};
    struct tls_client_params p = {.ca_file = u->tls_ca, .verify = u->tls_verify,
                                  .alpn = alpn, .alpn_count = 1};
    char err[512];

    if (!u->tls_enabled) {
        if (u->sni || u->tls_ca || !u->tls_verify)
            report(ld, item, "'sni', 'verify' and 'ca' need 'tls: true'");
        return;
    }
    u->tls = tls_client_context_new(&p, err, sizeof err);
    if (!u->tls) report(ld, find_value(ld, item, "tls"), "upstream TLS: %s", err);
}

static void build_upstream_ring(struct loader *ld, yaml_node_t *item, struct upstream_conf *u)
{
    const char *names[1024];
    unsigned weights[1024];

    if (u->balance != BALANCE_HASH || !u->endpoints) return;
    if (u->n_endpoints > 1024) {
        report(ld, item, "balance hash takes at most 1024 endpoints");
        return;
    }
    for (size_t i = 0; i < u->n_endpoints; i++) {
        names[i] = u->endpoints[i].text ? u->endpoints[i].text : "";
        weights[i] = u->endpoints[i].weight;
    }
    if (hash_ring_build(&u->ring, names, weights, u->n_endpoints) < 0)
        report(ld, item, "out of memory");
}

static const struct key_rule upstream_rules[] = {
    REQUIRED("name", set_name, struct upstream_conf, name),
    WHOLE_REQUIRED("endpoints", parse_endpoints),
    KEY("balance", parse_balance, struct upstream_conf, balance),
    KEY("connect_timeout", set_timeout, struct upstream_conf, connect_timeout),
    KEY("timeout", set_timeout, struct upstream_conf, timeout),
    KEY("keepalive", parse_keepalive, struct upstream_conf, keepalive),
    KEY("health_check", parse_health, struct upstream_conf, health),
    WHOLE("hash_key", upstream_hash_key),
    KEY("tls", set_bool, struct upstream_conf, tls_enabled),
    KEY("sni", set_sni, struct upstream_conf, sni),
    KEY("verify", set_bool, struct upstream_conf, tls_verify),
    KEY("ca", set_ca, struct upstream_conf, tls_ca),
    KEY("circuit_breaker", parse_circuit, struct upstream_conf, circuit),
    KEY("retries", parse_retries, struct upstream_conf, retries),
    END_RULES,
};

static void set_upstream_defaults(struct upstream_conf *u, size_t index)
{
    u->balance = BALANCE_ROUND_ROBIN;
    u->connect_timeout = 1000;
    u->timeout = 30 * 1000;
    u->keepalive = 64;
    u->index = (unsigned)index;
    u->tls_verify = true;
    u->retries = (struct retry_conf){.attempts = 1, .on = RETRY_CONNECT_FAILURE};
    u->circuit = (struct circuit_conf){.failures = 5, .open_for = 10 * 1000,
                                       .half_open_requests = 1, .max_connections = 1024,
                                       .max_pending = 256};
    u->health = (struct health_conf){.interval = 2000, .timeout = 1000, .healthy = 2,
                                     .unhealthy = 3};
}

static void parse_upstreams(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;
    char name[32];

    cfg->upstreams = alloc_items(ld, key, value, sizeof *cfg->upstreams, &cfg->n_upstreams);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        set_upstream_defaults(&cfg->upstreams[i], i);
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        parse_section(ld, name, item_at(ld, value, i), "upstream", upstream_rules,
                      &cfg->upstreams[i]);
        if (cfg->upstreams[i].health.enabled && !cfg->upstreams[i].health.path)
            cfg->upstreams[i].health.path = copy_string(ld, value, "/healthz");
        build_upstream_tls(ld, item_at(ld, value, i), &cfg->upstreams[i]);
        build_upstream_ring(ld, item_at(ld, value, i), &cfg->upstreams[i]);
    }
    check_unique_names(ld, value, "upstream", cfg->upstreams, sizeof *cfg->upstreams,
                       offsetof(struct upstream_conf, name), cfg->n_upstreams);
}

/* ---- jwt_providers ---- */

#define JWT_MAX_PAIRS 32
#define JWT_MAX_AUDIENCES 16

/* What a provider's keys turn into before jwt_provider_new checks them. */
struct jwt_section {
    struct jwt_conf *conf;
    const char *issuer;
    const char *audiences[JWT_MAX_AUDIENCES];
    size_t n_audiences;
    char *jwks_file;
    const char *secret;
    uint64_t clock_skew; /* ms */
    struct jwt_pair required[JWT_MAX_PAIRS], forward[JWT_MAX_PAIRS];
    size_t n_required, n_forward;
    yaml_node_t *keys_at; /* where key errors are reported */
    bool broken;
};

static void jwt_set_name(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    set_name(ld, key, value, &j->conf->name);
}

static void jwt_set_string(struct loader *ld, const char *key, yaml_node_t *value,
                           const char **out, bool *broken)
{
    *out = expect_string(ld, key, value);
    if (!*out) *broken = true;
}

static void jwt_issuer(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    jwt_set_string(ld, key, value, &j->issuer, &j->broken);
}

static void jwt_secret(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    jwt_set_string(ld, key, value, &j->secret, &j->broken);
    j->keys_at = value;
}

static void jwt_jwks_file(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;
    const char *s = expect_string(ld, key, value);

    j->keys_at = value;
    if (!s || !(j->jwks_file = path_from_config(ld, value, s))) j->broken = true;
}

static void jwt_audiences(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) {
        j->broken = true;
        return;
    }
    for (size_t i = 0; i < items_count(value); i++) {
        const char *s = expect_string(ld, key, item_at(ld, value, i));
        if (!s || j->n_audiences == JWT_MAX_AUDIENCES)
            j->broken = true;
        else
            j->audiences[j->n_audiences++] = s;
    }
}

static void jwt_clock_skew(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    if (!parse_duration_at(ld, key, value, &j->clock_skew)) j->broken = true;
}

/* A mapping of claim names to strings (null allowed when `null_ok`). */
static void jwt_pairs(struct loader *ld, const char *key, yaml_node_t *value,
                      struct jwt_pair *pairs, size_t *n, bool null_ok, bool *broken)
{
    if (!expect_kind(ld, key, value, YAML_MAPPING_NODE)) {
        *broken = true;
        return;
    }
    for (const yaml_node_pair_t *p = pairs_begin(value); p < pairs_end(value); p++) {
        yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
        const char *name = expect_string(ld, key, k);
        const char *val = null_ok && is_null(v) ? NULL : expect_string(ld, key, v);

        if (!name || (!val && !(null_ok && is_null(v))) || *n == JWT_MAX_PAIRS) {
            *broken = true;
            continue;
        }
        pairs[*n].name = name;
        pairs[*n].value = val;
        (*n)++;
    }
}

static void jwt_forward(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    jwt_pairs(ld, key, value, j->forward, &j->n_forward, false, &j->broken);
    if (!j->keys_at) j->keys_at = value;
}

static void jwt_required(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;

    jwt_pairs(ld, key, value, j->required, &j->n_required, true, &j->broken);
}

static void jwt_token_source(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct jwt_section *j = field;
    const char *s = expect_string(ld, key, value);
    char **out = !strcmp(key, "token_header") ? &j->conf->token_header
                 : !strcmp(key, "token_query") ? &j->conf->token_query
                                               : &j->conf->token_cookie;

    if (s) *out = copy_string(ld, value, s);
}

static const struct key_rule jwt_rules[] = {
    WHOLE_REQUIRED("name", jwt_set_name),
    WHOLE("issuer", jwt_issuer),
    WHOLE("audiences", jwt_audiences),
    WHOLE("jwks_file", jwt_jwks_file),
    WHOLE("secret", jwt_secret),
    WHOLE("clock_skew", jwt_clock_skew),
    WHOLE("forward_claims", jwt_forward),
    WHOLE("required_claims", jwt_required),
    WHOLE("token_header", jwt_token_source),
    WHOLE("token_query", jwt_token_source),
    WHOLE("token_cookie", jwt_token_source),
    END_RULES,
};

/* Keys are read and checked here: a bad JWKS or secret fails the load. */
static void build_jwt_provider(struct loader *ld, yaml_node_t *item, struct jwt_section *j)
{
    struct jwt_provider_params p;
    char err[512];

    if (!j->jwks_file == !j->secret) {
        report(ld, item, "a jwt provider needs exactly one of 'jwks_file' and 'secret'");
        return;
    }
    memset(&p, 0, sizeof p);
    p.name = j->conf->name;
    p.issuer = j->issuer;
    p.audiences = j->audiences;
    p.audience_count = j->n_audiences;
    p.jwks_file = j->jwks_file;
    p.secret = j->secret;
    p.clock_skew = (int64_t)(j->clock_skew / 1000);
    p.required_claims = j->required;
    p.required_count = j->n_required;
    p.forward_claims = j->forward;
    p.forward_count = j->n_forward;
    j->conf->provider = jwt_provider_new(&p, err, sizeof err);
    if (!j->conf->provider) report(ld, j->keys_at ? j->keys_at : item, "%s", err);
}

static void parse_jwt_providers(struct loader *ld, const char *key, yaml_node_t *value,
                                void *field)
{
    struct config *cfg = field;
    char name[48];

    cfg->jwt_providers = alloc_items(ld, key, value, sizeof *cfg->jwt_providers,
                                     &cfg->n_jwt_providers);
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        struct jwt_section j;
        yaml_node_t *item = item_at(ld, value, i);

        memset(&j, 0, sizeof j);
        j.conf = &cfg->jwt_providers[i];
        j.clock_skew = 30 * 1000;
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        if (parse_section(ld, name, item, "jwt provider", jwt_rules, &j) && !j.broken &&
            j.conf->name)
            build_jwt_provider(ld, item, &j);
        free(j.jwks_file);
    }
    check_unique_names(ld, value, "jwt provider", cfg->jwt_providers, sizeof *cfg->jwt_providers,
                       offsetof(struct jwt_conf, name), cfg->n_jwt_providers);
}

/* ---- schemas ---- */

struct schema_section {
    struct schema_conf *conf;
    yaml_node_t *file_at;
    char *file;
    bool assert_format;
};

static void schema_set_name(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    set_name(ld, key, value, &((struct schema_section *)field)->conf->name);
}

static void schema_set_file(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct schema_section *s = field;
    const char *path = expect_string(ld, key, value);

    s->file_at = value;
    if (path) s->file = path_from_config(ld, value, path);
}

static void schema_set_format(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    set_bool(ld, key, value, &((struct schema_section *)field)->assert_format);
}

static const struct key_rule schema_rules[] = {
    WHOLE_REQUIRED("name", schema_set_name),
    WHOLE_REQUIRED("file", schema_set_file),
    WHOLE("assert_format", schema_set_format),
    END_RULES,
};

static char *read_whole_file(const char *path, size_t *len, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= (long)MAX_FILE_BYTES &&
        fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) &&
        fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = '\0';
        *len = (size_t)size;
    } else {
        snprintf(err, err_size, "%s: cannot read (or larger than 16 MiB)", path);
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* The schema is read and compiled here: an invalid schema, or one using a
 * keyword this validator does not implement, fails the load. */
static void compile_schema(struct loader *ld, struct schema_section *s)
{
    struct schema_options opts = {.assert_format = s->assert_format};
    struct schema_error err;
    char msg[600], *dir, *slash;
    size_t len;
    char *text = read_whole_file(s->file, &len, msg, sizeof msg);

    if (!text) {
        report(ld, s->file_at, "schema '%s': %s", s->conf->name, msg);
        return;
    }
    dir = strdup(s->file);
    slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = '\0';
    s->conf->compiled = schema_compile_opts(text, len, s->file, dir ? dir : ".", &opts, &err);
    if (!s->conf->compiled) report(ld, s->file_at, "schema '%s': %s", s->conf->name, err.message);
    free(dir);
    free(text);
}

static void parse_schemas(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;
    char name[48];

    cfg->schemas = alloc_items(ld, key, value, sizeof *cfg->schemas, &cfg->n_schemas);
    for (size_t i = 0; i < cfg->n_schemas; i++) {
        struct schema_section s = {.conf = &cfg->schemas[i]};

        snprintf(name, sizeof name, "%s[%zu]", key, i);
        if (parse_section(ld, name, item_at(ld, value, i), "schema", schema_rules, &s) &&
            s.file && s.conf->name)
            compile_schema(ld, &s);
        free(s.file);
    }
    check_unique_names(ld, value, "schema", cfg->schemas, sizeof *cfg->schemas,
                       offsetof(struct schema_conf, name), cfg->n_schemas);
}

/* ---- redis ---- */

/* host:port (resolved now: hiredis would resolve names on a worker) or
 * unix:/path. */
static void redis_address(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct redis_conf *r = field;
    const char *s = expect_string(ld, key, value);
    struct sockaddr_any addr;
    char host[INET6_ADDRSTRLEN];

    if (!s) return;
    r->address = copy_string(ld, value, s);
    if (!strncmp(s, "unix:", 5)) {
        if (s[5] != '/')
            report(ld, value, "'%s': a socket path must be absolute (unix:/run/redis.sock)", key);
        else
            r->unix_path = copy_string(ld, value, s + 5);
        return;
    }
    if (!parse_address_at(ld, value, s, &addr)) return;
    if (addr.ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr.ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        r->port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr.ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        r->port = ntohs(in6->sin6_port);
    }
    r->host = copy_string(ld, value, host);
}

static const struct key_rule redis_rules[] = {
    WHOLE_REQUIRED("address", redis_address),
    KEY("timeout", set_timeout, struct redis_conf, timeout),
    KEY("connect_timeout", set_timeout, struct redis_conf, connect_timeout),
    END_RULES,
};

static void parse_redis(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;

    cfg->redis.timeout = 50;
    cfg->redis.connect_timeout = 1000;
    cfg->has_redis = parse_section(ld, key, value, "redis", redis_rules, &cfg->redis);
}

static void check_redis_policies(struct loader *ld)
{
    struct config *cfg = ld->cfg;

    if (ld->first_redis_policy && !cfg->has_redis)
        report(ld, ld->first_redis_policy,
               "backend 'redis' needs a 'redis:' section with the server's address");
    for (size_t i = 0; i < cfg->n_routes; i++)
        for (size_t j = 0; j < cfg->routes[i].n_rate_limits; j++)
            if (cfg->routes[i].rate_limits[j]->backend == RL_BACKEND_REDIS)
                cfg->routes[i].redis_limited = true;
}

/* ---- rate_limits ---- */

static void rl_key(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct ratelimit_conf *r = field;

    parse_request_key(ld, key, value, "rate-limit", &r->key, &r->key_arg);
}


static void rl_rate(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    const char *s = expect_string(ld, key, value);

    if (s && rate_parse(s, (double *)field) < 0)
        report(ld, value, "'%s': invalid rate '%.80s' (expected e.g. 100/s, 6000/m, 50000/h)",
               key, s);
}

static void rl_burst(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    uint64_t n;

    if (!expect_uint(ld, key, value, 1000000000, &n)) return;
    if (n == 0)
        report(ld, value, "'%s' must be at least 1", key);
    else
        *(uint64_t *)field = n;
}

static void rl_backend(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct ratelimit_conf *r = field;
    const char *s = expect_string(ld, key, value);

    if (!s || !strcmp(s, "local")) return;
    if (!strcmp(s, "redis")) {
        r->backend = RL_BACKEND_REDIS;
        if (!ld->first_redis_policy) ld->first_redis_policy = value;
    } else {
        report(ld, value, "unknown backend '%.80s' (expected local or redis)", s);
    }
}

static void rl_on_redis_error(struct loader *ld, const char *key, yaml_node_t *value,
                              void *field)
{
    struct ratelimit_conf *r = field;
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    if (!strcmp(s, "local"))
        r->on_redis_error = RL_FALLBACK_LOCAL;
    else if (!strcmp(s, "allow"))
        r->on_redis_error = RL_FALLBACK_ALLOW;
    else if (!strcmp(s, "deny"))
        r->on_redis_error = RL_FALLBACK_DENY;
    else
        report(ld, value, "unknown on_redis_error '%.80s' (expected local, allow or deny)", s);
}

static const struct key_rule ratelimit_rules[] = {
    REQUIRED("name", set_name, struct ratelimit_conf, name),
    WHOLE_REQUIRED("key", rl_key),
    REQUIRED("rate", rl_rate, struct ratelimit_conf, rate),
    KEY("burst", rl_burst, struct ratelimit_conf, burst),
    WHOLE("backend", rl_backend),
    WHOLE("on_redis_error", rl_on_redis_error),
    END_RULES,
};

static void parse_rate_limits(struct loader *ld, const char *key, yaml_node_t *value,
                              void *field)
{
    struct config *cfg = field;
    char name[48];

    cfg->rate_limits = alloc_items(ld, key, value, sizeof *cfg->rate_limits, &cfg->n_rate_limits);
    for (size_t i = 0; i < cfg->n_rate_limits; i++) {
        struct ratelimit_conf *r = &cfg->rate_limits[i];
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        parse_section(ld, name, item_at(ld, value, i), "rate limit", ratelimit_rules, r);
        if (!r->burst) /* one second's worth, at least one */
            r->burst = r->rate >= 1 ? (uint64_t)r->rate : 1;
        if (r->rate > 0 && bucket_params_init(&r->bucket, r->rate, r->burst) < 0)
            report(ld, item_at(ld, value, i), "rate limit: rate must be between 1/h and %g/s",
                   (double)BUCKET_RATE_MAX);
    }
    check_unique_names(ld, value, "rate limit", cfg->rate_limits, sizeof *cfg->rate_limits,
                       offsetof(struct ratelimit_conf, name), cfg->n_rate_limits);
}

/* `rate_limit: name` or `rate_limit: [name, ...]`; checked once all
 * policies are known (resolve_rate_limits). */
static void check_rate_limit_ref(struct loader *ld, const char *key, yaml_node_t *value,
                                 void *field)
{
    (void)field;
    if (value->type == YAML_SEQUENCE_NODE) {
        if (items_count(value) > ROUTE_MAX_RATE_LIMITS)
            report(ld, value, "'%s' takes at most %d policies", key, ROUTE_MAX_RATE_LIMITS);
        for (size_t i = 0; i < items_count(value); i++)
            expect_string(ld, key, item_at(ld, value, i));
    } else {
        expect_string(ld, key, value);
    }
}

static void resolve_rate_limit(struct loader *ld, struct route_conf *r, yaml_node_t *ref)
{
    const struct config *cfg = ld->cfg;
    const char *name;

    if (ref->type != YAML_SCALAR_NODE || is_null(ref) || r->n_rate_limits == ROUTE_MAX_RATE_LIMITS)
        return;
    name = scalar_text(ref);
    for (size_t j = 0; j < cfg->n_rate_limits; j++) {
        const struct ratelimit_conf *p = &cfg->rate_limits[j];
        if (!p->name || strcmp(p->name, name)) continue;
        if (p->key == RL_KEY_JWT_CLAIM && !r->jwt)
            report(ld, ref, "rate limit '%s' is keyed by a JWT claim: the route needs 'jwt'",
                   name);
        r->rate_limits[r->n_rate_limits++] = p;
        return;
    }
    report(ld, ref, "unknown rate limit '%.80s'", name);
}

static void resolve_rate_limits(struct loader *ld, struct route_conf *r, yaml_node_t *value)
{
    if (value->type == YAML_SEQUENCE_NODE)
        for (size_t i = 0; i < items_count(value); i++)
            resolve_rate_limit(ld, r, item_at(ld, value, i));
    else
        resolve_rate_limit(ld, r, value);
}

/* ---- routes: match ---- */


static void parse_host(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct route_conf *r = field;
    const char *s = expect_string(ld, key, value);
    char *host;

    if (!s || strcmp(s, "*") == 0) return; /* "*": any host, as when absent */
    host = copy_string(ld, value, s);
    if (!host) return;
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->host_wildcard = strncmp(host, "*.", 2) == 0;
    if (r->host_wildcard) memmove(host, host + 1, strlen(host)); /* keep ".suffix" */
    if (strchr(host, ':') && host[0] != '[')
        report(ld, value, "host '%.80s' must not include a port", s);
    else if (strchr(host, '*'))
        report(ld, value, "host '%.80s': '*' is only allowed as the first label (*.example.com)",
               s);
    else if (!valid_host(r->host_wildcard ? host + 1 : host) || !strcmp(host, "."))
        report(ld, value, "invalid host '%.80s'", s);
    r->host = host;
}

static void parse_prefix(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct route_conf *r = field;
    const char *s = expect_string(ld, key, value);

    if (!s) return;
    if (s[0] != '/') {
        report(ld, value, "'%s' must start with '/', not '%.80s'", key, s);
        return;
    }
    free(r->prefix);
    r->prefix = copy_string(ld, value, s);
}

static const struct {
    const char *name;
    enum http_method method;
} known_methods[] = {
    {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
    {"PUT", HTTP_PUT},         {"DELETE", HTTP_DELETE}, {"PATCH", HTTP_PATCH},
    {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE},   {"CONNECT", HTTP_CONNECT},
};

static void parse_methods(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct route_conf *r = field;
    char name[32];

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) return;
    if (items_count(value) == 0) report(ld, value, "'%s' must list at least one method", key);
    for (size_t i = 0; i < items_count(value); i++) {
        yaml_node_t *item = item_at(ld, value, i);
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        const char *s = expect_string(ld, name, item);
        size_t m = 0;
        if (!s) continue;
        while (m < sizeof known_methods / sizeof known_methods[0] &&
               strcmp(known_methods[m].name, s) != 0)
            m++;
        if (m == sizeof known_methods / sizeof known_methods[0])
            report(ld, item,
                   "unknown method '%.80s' (methods are upper case: GET, HEAD, POST, PUT, "
                   "DELETE, PATCH, OPTIONS, TRACE, CONNECT)",
                   s);
        else
            r->methods |= METHOD_BIT(known_methods[m].method);
    }
}

static const struct key_rule match_rules[] = {
    WHOLE("host", parse_host),
    WHOLE("prefix", parse_prefix),
    WHOLE("methods", parse_methods),
    END_RULES,
};

static void parse_match(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "match", match_rules, field);
}

/* ---- routes: targets ---- */

static void parse_static_root(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct route_conf *r = field;
    const char *s = expect_string(ld, key, value);
    char *joined, *real;
    struct stat st;

    if (!s || !(joined = path_from_config(ld, value, s))) return;
    real = realpath(joined, NULL);
    if (!real)
        report(ld, value, "static root '%s': %s", joined, strerror(errno));
    else if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        report(ld, value, "static root '%s' is not a directory", joined);
        free(real);
        real = NULL;
    }
    free(joined);
    if (!real) return;
    r->static_root_fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->static_root_fd < 0) {
        report(ld, value, "static root '%s': %s", real, strerror(errno));
        free(real);
        return;
    }
    /* realpath leaves a trailing '/' only on "/" itself. */
    if (strcmp(real, "/") == 0) real[0] = '\0';
    r->static_root = real;
}

static const struct key_rule static_rules[] = {
    WHOLE_REQUIRED("root", parse_static_root),
    END_RULES,
};

static void parse_static(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "static", static_rules, field);
}

/* The name is resolved once all upstreams are known (see resolve_upstreams). */
static void check_upstream_ref(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    (void)field;
    expect_string(ld, key, value);
}

/* Protocol names a route tunnels after a 101 (RFC 9110 7.8 tokens). */
static void set_upgrades(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    char ***list = field;
    size_t n;

    if (!expect_kind(ld, key, value, YAML_SEQUENCE_NODE)) return;
    n = items_count(value);
    *list = alloc_array(ld, value, n + 1, sizeof(char *));
    for (size_t i = 0; *list && i < n; i++) {
        yaml_node_t *item = item_at(ld, value, i);
        const char *s = expect_string(ld, key, item);
        if (!s) continue;
        if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~/") !=
            strlen(s))
            report(ld, item, "'%.40s' is not a protocol token", s);
        else if (!strcasecmp(s, "websocket"))
            report(ld, item, "use 'websocket: true' for WebSocket (its handshake is checked)");
        else
            (*list)[i] = copy_string(ld, item, s);
    }
}

/* ---- the cache ---- */

static const struct key_rule cache_rules[] = {
    KEY("memory", set_nonzero_size, struct cache_conf, memory),
    KEY("max_object", set_nonzero_size, struct cache_conf, max_object),
    END_RULES,
};

/* A max_object too large for memory is not an error: the store keeps
 * objects of at most a quarter of a shard's share (docs/configuration.md). */
static void parse_cache(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    parse_section(ld, key, value, "cache", cache_rules, field);
}

static const struct key_rule route_cache_rules[] = {
    KEY("stale_while_revalidate", set_duration, struct route_cache_conf, stale_while_revalidate),
    KEY("stale_if_error", set_duration, struct route_cache_conf, stale_if_error),
    END_RULES,
};

/* `cache: true`, `cache: false`, or a mapping of defaults (which turns it on). */
static void parse_route_cache(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct route_cache_conf *cache = field;

    if (value->type == YAML_MAPPING_NODE) {
        cache->enabled = parse_section(ld, key, value, "route cache", route_cache_rules, field);
        return;
    }
    if (value->type != YAML_SCALAR_NODE) {
        report(ld, value, "'%s' must be true, false or a mapping (stale_while_revalidate, "
                          "stale_if_error), not %s", key, kind_name(value->type));
        return;
    }
    set_bool(ld, key, value, &cache->enabled);
}

static const struct key_rule route_rules[] = {
    KEY("name", set_name, struct route_conf, name),
    WHOLE("match", parse_match),
    WHOLE("upstream", check_upstream_ref),
    WHOLE("jwt", check_upstream_ref), /* a name too, resolved like it */
    WHOLE("static", parse_static),
    KEY("websocket", set_bool, struct route_conf, websocket),
    KEY("upgrade", set_upgrades, struct route_conf, upgrades),
    WHOLE("rate_limit", check_rate_limit_ref),
    WHOLE("schema", check_upstream_ref), /* a name, resolved last */
    KEY("cache", parse_route_cache, struct route_conf, cache),
    END_RULES,
};

static void parse_route(struct loader *ld, const char *name, yaml_node_t *item, size_t index)
{
    struct route_conf *r = &ld->cfg->routes[index];
    yaml_node_t *upstream, *static_node;

    r->prefix = copy_string(ld, item, "/");
    if (!parse_section(ld, name, item, "route", route_rules, r)) return;
    if (!r->name) r->name = default_name(ld, item, "route", index);
    upstream = find_value(ld, item, "upstream");
    static_node = find_value(ld, item, "static");
    if (upstream && static_node)
        report(ld, item, "route has both 'upstream' and 'static': give one");
    else if (!upstream && !static_node)
        report(ld, item, "route needs 'upstream' or 'static'");
    else if (upstream && upstream->type == YAML_SCALAR_NODE && !is_null(upstream))
        ld->route_upstreams[index] = upstream;
    if (r->cache.enabled && static_node)
        report(ld, find_value(ld, item, "cache"),
               "'cache' needs an upstream: a static route's files are not cached");
    yaml_node_t *jwt = find_value(ld, item, "jwt");
    if (jwt && jwt->type == YAML_SCALAR_NODE && !is_null(jwt)) ld->route_jwts[index] = jwt;
    ld->route_limits[index] = find_value(ld, item, "rate_limit");
    yaml_node_t *schema = find_value(ld, item, "schema");
    if (schema && schema->type == YAML_SCALAR_NODE && !is_null(schema))
        ld->route_schemas[index] = schema;
}

static void parse_routes(struct loader *ld, const char *key, yaml_node_t *value, void *field)
{
    struct config *cfg = field;
    char name[32];

    cfg->routes = alloc_items(ld, key, value, sizeof *cfg->routes, &cfg->n_routes);
    ld->route_upstreams = alloc_array(ld, value, cfg->n_routes, sizeof *ld->route_upstreams);
    ld->route_jwts = alloc_array(ld, value, cfg->n_routes, sizeof *ld->route_jwts);
    ld->route_limits = alloc_array(ld, value, cfg->n_routes, sizeof *ld->route_limits);
    ld->route_schemas = alloc_array(ld, value, cfg->n_routes, sizeof *ld->route_schemas);
    if (!ld->route_upstreams || !ld->route_jwts || !ld->route_limits || !ld->route_schemas)
        return;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        parse_route(ld, name, item_at(ld, value, i), i);
    }
    check_unique_names(ld, value, "route", cfg->routes, sizeof *cfg->routes,
                       offsetof(struct route_conf, name), cfg->n_routes);
}

/* ---- the whole file ---- */

static const struct key_rule top_rules[] = {
    KEY("workers", parse_workers, struct config, workers),
    KEY("shutdown_timeout", set_duration, struct config, shutdown_timeout),
    KEY("user", set_user, struct config, user),
    KEY("limits", parse_limits, struct config, limits),
    KEY("access_log", parse_access_log, struct config, access_log),
    WHOLE("admin", parse_admin),
    WHOLE("listeners", parse_listeners),
    WHOLE("upstreams", parse_upstreams),
    WHOLE("routes", parse_routes),
    WHOLE("redis", parse_redis),
    WHOLE("jwt_providers", parse_jwt_providers),
    WHOLE("rate_limits", parse_rate_limits),
    WHOLE("schemas", parse_schemas),
    KEY("cache", parse_cache, struct config, cache),
    END_RULES,
};

static void resolve_upstreams(struct loader *ld)
{
    struct config *cfg = ld->cfg;

    for (size_t i = 0; ld->route_upstreams && i < cfg->n_routes; i++) {
        yaml_node_t *ref = ld->route_upstreams[i];
        if (!ref) continue;
        for (size_t j = 0; j < cfg->n_upstreams && !cfg->routes[i].upstream; j++)
            if (cfg->upstreams[j].name && !strcmp(cfg->upstreams[j].name, scalar_text(ref)))
                cfg->routes[i].upstream = &cfg->upstreams[j];
        if (!cfg->routes[i].upstream) report(ld, ref, "unknown upstream '%.80s'", scalar_text(ref));
    }
    for (size_t i = 0; ld->route_jwts && i < cfg->n_routes; i++) {
        yaml_node_t *ref = ld->route_jwts[i];
        if (!ref) continue;
        for (size_t j = 0; j < cfg->n_jwt_providers && !cfg->routes[i].jwt; j++)
            if (cfg->jwt_providers[j].name && !strcmp(cfg->jwt_providers[j].name, scalar_text(ref)))
                cfg->routes[i].jwt = &cfg->jwt_providers[j];
        if (!cfg->routes[i].jwt)
            report(ld, ref, "unknown jwt provider '%.80s'", scalar_text(ref));
    }
    for (size_t i = 0; ld->route_limits && i < cfg->n_routes; i++)
        if (ld->route_limits[i]) resolve_rate_limits(ld, &cfg->routes[i], ld->route_limits[i]);
    for (size_t i = 0; ld->route_schemas && i < cfg->n_routes; i++) {
        yaml_node_t *ref = ld->route_schemas[i];
        if (!ref) continue;
        for (size_t j = 0; j < cfg->n_schemas && !cfg->routes[i].schema; j++)
            if (cfg->schemas[j].name && !strcmp(cfg->schemas[j].name, scalar_text(ref)))
                cfg->routes[i].schema = &cfg->schemas[j];
        if (!cfg->routes[i].schema) report(ld, ref, "unknown schema '%.80s'", scalar_text(ref));
        else if (cfg->routes[i].static_root)
            report(ld, ref, "a static route takes no request body to validate");
    }
}

static void check_admin_address(struct loader *ld, yaml_node_t *root)
{
    const struct config *cfg = ld->cfg;

    if (!cfg->has_admin) return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (!addresses_overlap(&cfg->admin, &cfg->listeners[i].addr)) continue;
        report(ld, find_value(ld, find_value(ld, root, "admin"), "listen"),
               "admin address '%s' overlaps listener '%s': admin must not be public",
               cfg->admin_listen, cfg->listeners[i].name);
        return;
    }
}

static void load_root(struct loader *ld)
{
    yaml_node_t *root = yaml_document_get_root_node(&ld->doc);
    yaml_node_t *listeners;
    yaml_mark_t start = {0, 0, 0};

    if (!root) {
        report_mark(ld, start, "the configuration is empty: at least one listener is required");
        return;
    }
    if (!parse_section(ld, "configuration", root, "top-level", top_rules, ld->cfg)) return;
    resolve_upstreams(ld);
    check_redis_policies(ld);
    check_admin_address(ld, root);
    listeners = find_value(ld, root, "listeners");
    if (!listeners)
        report(ld, root, "at least one listener is required ('listeners')");
    else if (listeners->type == YAML_SEQUENCE_NODE && items_count(listeners) == 0)
        report(ld, listeners, "at least one listener is required");
}

/* Reader errors carry a byte offset only. */
static yaml_mark_t reader_error_mark(const struct loader *ld, size_t offset)
{
    yaml_mark_t mark = {offset, 0, 0};

    for (size_t i = 0; i < offset && ld->text[i]; i++) {
        if (ld->text[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else {
            mark.column++;
        }
    }
    return mark;
}

static void report_yaml_error(struct loader *ld, const yaml_parser_t *parser)
{
    yaml_mark_t mark = parser->problem_mark;

    if (parser->error == YAML_MEMORY_ERROR) {
        report_mark(ld, mark, "out of memory");
        return;
    }
    if (parser->error == YAML_READER_ERROR) mark = reader_error_mark(ld, parser->problem_offset);
    report_mark(ld, mark, "YAML: %s%s%s", parser->problem ? parser->problem : "syntax error",
                parser->context ? " " : "", parser->context ? parser->context : "");
}

/* Loads the first document into ld->doc; true when there is one to walk. */
static bool load_document(struct loader *ld, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    bool ok;

    if (!yaml_parser_initialize(&parser)) {
        report_mark(ld, (yaml_mark_t){0, 0, 0}, "out of memory");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, len);
    ok = yaml_parser_load(&parser, &ld->doc);
    if (!ok) {
        report_yaml_error(ld, &parser);
    } else if (!yaml_parser_load(&parser, &extra)) {
        report_yaml_error(ld, &parser);
    } else {
        yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second) report(ld, second, "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    return ok;
}

/* Half the memory this process may have: the machine's, or its cgroup's
 * limit (memory.max, cgroup v2) when that is lower. */
static uint64_t default_memory_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    unsigned long long cgroup;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");

    if (f) {
        if (fscanf(f, "%llu", &cgroup) == 1 && cgroup && (!total || cgroup < total))
            total = cgroup;
        fclose(f);
    }
    return total / 2;
}

static void set_defaults(struct config *cfg)
{
    cfg->workers = 0;
    cfg->shutdown_timeout = 10 * 1000;
    cfg->limits.max_header_bytes = 32 * 1024;
    cfg->limits.max_body_bytes = 8 * 1024 * 1024;
    cfg->limits.response_buffer = 256 * 1024;
    cfg->limits.header_timeout = 10 * 1000;
    cfg->limits.idle_timeout = 60 * 1000;
    cfg->limits.tunnel_idle_timeout = 3600 * 1000;
    cfg->limits.max_memory = default_memory_budget();
    cfg->cache.memory = 256ull << 20;
    cfg->cache.max_object = 8ull << 20;
    cfg->access_log = strdup(DEFAULT_ACCESS_LOG);
}

static unsigned resolve_workers(unsigned workers)
{
    long cpus;

    if (workers) return workers;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) return 1;
    return cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
}

static void free_loader(struct loader *ld)
{
    for (size_t i = 0; i < ld->n_diags; i++)
        free(ld->diags[i].msg);
    free(ld->diags);
    free(ld->route_upstreams);
    free(ld->route_jwts);
    free(ld->route_limits);
    free(ld->route_schemas);
    free(ld->base_dir);
}

struct config *config_load_string(const char *path, const char *text, size_t len,
                                  struct config_errors *errors)
{
    struct loader ld = {.file = path, .text = text};
    struct config *cfg = calloc(1, sizeof *cfg);
    yaml_mark_t start = {0, 0, 0};

    ld.cfg = cfg;
    ld.base_dir = config_base_dir(path);
    if (!cfg || !ld.base_dir) {
        report_mark(&ld, start, "out of memory");
    } else {
        set_defaults(cfg);
        cfg->path = strdup(path);
        if (!cfg->path || !cfg->access_log) report_mark(&ld, start, "out of memory");
        if (load_document(&ld, len)) {
            load_root(&ld);
            yaml_document_delete(&ld.doc);
        }
        cfg->workers = resolve_workers(cfg->workers);
    }

    export_diags(&ld, errors);
    if (errors->count) {
        config_free(cfg);
        cfg = NULL;
    }
    free_loader(&ld);
    return cfg;
}

struct config *config_load(const char *path, struct config_errors *errors)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    struct config *cfg = NULL;
    const char *problem = NULL;

    if (!f) {
        problem = strerror(errno);
    } else {
        for (;;) {
            if (len == cap) {
                char *bigger = cap < MAX_FILE_BYTES ? realloc(text, cap ? cap * 2 : 4096) : NULL;
                if (!bigger) {
                    problem = cap < MAX_FILE_BYTES ? "out of memory" : "file larger than 16MiB";
                    break;
                }
                text = bigger;
                cap = cap ? cap * 2 : 4096;
            }
            size_t got = fread(text + len, 1, cap - len, f);
            len += got;
            if (got == 0) {
                if (ferror(f)) problem = strerror(errno);
                break;
            }
        }
        fclose(f);
    }
    if (problem) {
        errors->count = 1;
        snprintf(errors->lines[0], sizeof errors->lines[0], "%s:1:1: cannot read: %s", path,
                 problem);
    } else {
        cfg = config_load_string(path, text ? text : "", len, errors);
    }
    free(text);
    return cfg;
}

void config_free(struct config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].tls)
            tls_context_free(cfg->listeners[i].tls);
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].listen);
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        struct upstream_conf *u = &cfg->upstreams[i];
        for (size_t j = 0; j < u->n_endpoints; j++)
            free(u->endpoints[j].text);
        free(u->endpoints);
        free(u->name);
        free(u->health.path);
        free(u->sni);
        free(u->tls_ca);
        free(u->hash_key_arg);
        hash_ring_free(&u->ring);
        if (u->tls)
            tls_context_free(u->tls);
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct route_conf *r = &cfg->routes[i];
        free(r->host);
        free(r->prefix);
        if (r->static_root)
            close(r->static_root_fd);
        free(r->static_root);
        free(r->name);
        for (size_t k = 0; r->upgrades && r->upgrades[k]; k++)
            free(r->upgrades[k]);
        free(r->upgrades);
    }
    for (size_t i = 0; i < cfg->n_jwt_providers; i++) {
        struct jwt_conf *j = &cfg->jwt_providers[i];
        if (j->provider)
            jwt_provider_free(j->provider);
        free(j->name);
        free(j->token_header);
        free(j->token_query);
        free(j->token_cookie);
    }
    free(cfg->jwt_providers);
    for (size_t i = 0; i < cfg->n_rate_limits; i++) {
        free(cfg->rate_limits[i].name);
        free(cfg->rate_limits[i].key_arg);
    }
    free(cfg->rate_limits);
    free(cfg->redis.address);
    free(cfg->redis.host);
    free(cfg->redis.unix_path);
    for (size_t i = 0; i < cfg->n_schemas; i++) {
        if (cfg->schemas[i].compiled)
            schema_free(cfg->schemas[i].compiled);
        free(cfg->schemas[i].name);
    }
    free(cfg->schemas);
    free(cfg->listeners);
    free(cfg->upstreams);
    free(cfg->routes);
    free(cfg->admin_listen);
    free(cfg->user);
    free(cfg->access_log);
    free(cfg->path);
    free(cfg);
}
