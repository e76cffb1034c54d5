/* The rules of a shared HTTP cache (see cache_policy.h). */
#include "cache_policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define STRONG_LM_MARGIN 60 /* seconds before Date a Last-Modified is strong (9110 8.8.2.2) */

/* ---- text ---------------------------------------------------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool str_eq_nocase(struct http_str a, struct http_str b)
{
    if (a.len != b.len) return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower(a.p[i]) != lower(b.p[i])) return false;
    return true;
}

static struct http_str trim(const char *p, const char *end)
{
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    return (struct http_str){p, (size_t)(end - p)};
}

static struct http_str str_of(const char *literal)
{
    return (struct http_str){literal, strlen(literal)};
}

/* The members of a comma-separated list (RFC 9110 5.6.1), commas inside
 * quoted strings included in their member; empty members are skipped. */
struct list {
    const char *p, *end;
};

static struct list list_of(struct http_str value)
{
    return (struct list){value.p, value.p + value.len};
}

static bool list_next(struct list *l, struct http_str *member)
{
    while (l->p < l->end) {
        const char *start = l->p;
        bool quoted = false;

        for (; l->p < l->end && (quoted || *l->p != ','); l->p++) {
            if (quoted && *l->p == '\\' && l->p + 1 < l->end)
                l->p++;
            else if (*l->p == '"')
                quoted = !quoted;
        }
        *member = trim(start, l->p);
        if (l->p < l->end) l->p++;
        if (member->len) return true;
    }
    return false;
}

/* Decimal digits only, saturating at `max`; -1 when not a number. */
static int64_t parse_number(struct http_str s, int64_t max)
{
    int64_t n = 0;

    if (s.len == 0) return -1;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i])) return -1;
        n = n > max / 10 ? max : n * 10 + (s.p[i] - '0');
        if (n > max) n = max;
    }
    return n;
}

/* An output buffer written as snprintf writes: the length counts on past
 * the capacity, so that the caller learns the size needed. */
struct text {
    char *out;
    size_t cap, len;
};

static void put(struct text *t, const char *p, size_t n)
{
    if (t->len < t->cap) memcpy(t->out + t->len, p, n < t->cap - t->len ? n : t->cap - t->len);
    t->len += n;
}

static void put_str(struct text *t, struct http_str s)
{
    put(t, s.p, s.len);
}

static void put_cstr(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_lower(struct text *t, struct http_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = lower(s.p[i]);

        put(t, &c, 1);
    }
}

static size_t text_end(struct text *t)
{
    if (t->cap) t->out[t->len < t->cap ? t->len : t->cap - 1] = '\0';
    return t->len;
}

/* ---- Cache-Control ------------------------------------------------------- */

void cache_control_init(struct cache_control *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->max_age = cc->s_maxage = CACHE_ABSENT;
    cc->stale_while_revalidate = cc->stale_if_error = CACHE_ABSENT;
    cc->max_stale = cc->min_fresh = CACHE_ABSENT;
}

/* delta-seconds, in either token or quoted form (RFC 9111 5.2); -1 when invalid. */
static int64_t parse_delta(struct http_str v)
{
    if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
        v = (struct http_str){v.p + 1, v.len - 2};
    return parse_number(v, CACHE_DELTA_MAX);
}

/* max-age and s-maxage: invalid, or repeated with another value, reads as
 * stale (RFC 9111 4.2.1). */
static void set_freshness(int64_t *field, struct http_str value)
{
    int64_t v = parse_delta(value);

    if (v < 0 || (*field != CACHE_ABSENT && *field != v))
        *field = 0;
    else
        *field = v;
}

/* The other deltas: the first valid occurrence counts. */
static void set_first(int64_t *field, struct http_str value)
{
    int64_t v = parse_delta(value);

    if (*field == CACHE_ABSENT && v >= 0) *field = v;
}

static bool set_flag(struct cache_control *cc, struct http_str name)
{
    static const struct {
        const char *name;
        size_t offset;
    } flags[] = {
        {"no-store", offsetof(struct cache_control, no_store)},
        {"no-cache", offsetof(struct cache_control, no_cache)},
        {"private", offsetof(struct cache_control, is_private)},
        {"public", offsetof(struct cache_control, is_public)},
        {"must-revalidate", offsetof(struct cache_control, must_revalidate)},
        {"proxy-revalidate", offsetof(struct cache_control, proxy_revalidate)},
        {"immutable", offsetof(struct cache_control, immutable)},
        {"only-if-cached", offsetof(struct cache_control, only_if_cached)},
    };

    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (http1_str_is(name, flags[i].name)) {
            *(bool *)((char *)cc + flags[i].offset) = true;
            return true;
        }
    }
    return false;
}

static void apply_directive(struct cache_control *cc, struct http_str name, bool has_value,
                            struct http_str value)
{
    if (set_flag(cc, name)) return; /* field-named forms count as the plain ones */
    if (http1_str_is(name, "max-age"))
        set_freshness(&cc->max_age, value);
    else if (http1_str_is(name, "s-maxage"))
        set_freshness(&cc->s_maxage, value);
    else if (http1_str_is(name, "stale-while-revalidate"))
        set_first(&cc->stale_while_revalidate, value);
    else if (http1_str_is(name, "stale-if-error"))
        set_first(&cc->stale_if_error, value);
    else if (http1_str_is(name, "min-fresh"))
        set_first(&cc->min_fresh, value);
    else if (http1_str_is(name, "max-stale") && !has_value && cc->max_stale == CACHE_ABSENT)
        cc->max_stale = CACHE_DELTA_MAX;
    else if (http1_str_is(name, "max-stale"))
        set_first(&cc->max_stale, value);
}

void cache_control_parse(struct cache_control *cc, struct http_str value)
{
    struct list l = list_of(value);
    struct http_str d;

    while (list_next(&l, &d)) {
        const char *eq = memchr(d.p, '=', d.len);
        const char *end = d.p + d.len;

        if (eq)
            apply_directive(cc, trim(d.p, eq), true, trim(eq + 1, end));
        else
            apply_directive(cc, d, false, (struct http_str){end, 0});
    }
}

void cache_control_of(struct cache_control *cc, const struct http_header *h, size_t n)
{
    cache_control_init(cc);
    for (size_t i = 0; i < n; i++)
        if (http1_str_is(h[i].name, "cache-control")) cache_control_parse(cc, h[i].value);
}

/* ---- storing ------------------------------------------------------------- */

const char *cache_storable_name(enum cache_storable why)
{
    static const char *const names[] = {
        "storable",      "method",    "status",      "no-store",     "private",
        "authorization", "vary-star", "set-cookie",  "no-freshness", "not-useful",
        "too-large",     "no-memory", "not-filling",
    };

    return (size_t)why < sizeof names / sizeof names[0] ? names[why] : "unknown";
}

bool cache_status_heuristic(int status)
{
    static const int statuses[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (status == statuses[i]) return true;
    return false;
}

static bool has_field(const struct http_header *h, size_t n, const char *name)
{
    return http1_find_header(h, n, name) != NULL;
}

static bool vary_star(const struct http_header *h, size_t n)
{
    struct http_str m;

    for (size_t i = 0; i < n; i++) {
        struct list l = list_of(h[i].value);

        if (!http1_str_is(h[i].name, "vary")) continue;
        while (list_next(&l, &m))
            if (m.len == 1 && m.p[0] == '*') return true;
    }
    return false;
}

enum cache_storable cache_storable(enum http_method method, const struct http_header *req,
                                   size_t n_req, const struct cache_control *req_cc, int status,
                                   const struct http_header *resp, size_t n_resp,
                                   const struct cache_control *cc)
{
    bool explicit_freshness = cc->max_age != CACHE_ABSENT || cc->s_maxage != CACHE_ABSENT ||
                              has_field(resp, n_resp, "expires") || cc->is_public;

    if (method != HTTP_GET) return CACHE_NOT_METHOD;
    if (status < 200 || status > 599 || status == 206 || status == 304) return CACHE_NOT_STATUS;
    if (req_cc->no_store || cc->no_store) return CACHE_NOT_NO_STORE;
    if (cc->is_private) return CACHE_NOT_PRIVATE;
    if (has_field(req, n_req, "authorization") && !cc->is_public && cc->s_maxage == CACHE_ABSENT &&
        !cc->must_revalidate)
        return CACHE_NOT_AUTHORIZATION;
    if (vary_star(resp, n_resp)) return CACHE_NOT_VARY_STAR;
    if (has_field(resp, n_resp, "set-cookie")) return CACHE_NOT_SET_COOKIE;
    if (!explicit_freshness && !cache_status_heuristic(status)) return CACHE_NOT_FRESHNESS;
    return CACHE_STORABLE;
}

bool cache_worth_storing(const struct cache_meta *m, bool has_validator)
{
    return has_validator || m->lifetime > m->corrected_initial_age ||
           m->stale_if_error != CACHE_ABSENT;
}

/* ---- freshness and age --------------------------------------------------- */

static int64_t clamp_delta(int64_t v)
{
    return v < 0 ? 0 : v > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : v;
}

static bool header_date(const struct http_header *h, size_t n, const char *name, int64_t *t)
{
    const struct http_header *f = http1_find_header(h, n, name);

    return f && http_date_parse(f->value.p, f->value.len, t) == 0;
}

/* Age: the first member; an invalid one is ignored (RFC 9111 5.1). */
static int64_t age_value(const struct http_header *h, size_t n)
{
    const struct http_header *f = http1_find_header(h, n, "age");
    struct list l;
    struct http_str first;
    int64_t v;

    if (!f) return 0;
    l = list_of(f->value);
    if (!list_next(&l, &first)) return 0;
    v = parse_number(first, CACHE_DELTA_MAX);
    return v < 0 ? 0 : v;
}

static int64_t lifetime_of(struct cache_meta *m, int status, const struct cache_control *cc,
                           const struct http_header *h, size_t n)
{
    const struct http_header *expires = http1_find_header(h, n, "expires");
    int64_t t;

    if (cc->s_maxage != CACHE_ABSENT) return cc->s_maxage;
    if (cc->max_age != CACHE_ABSENT) return cc->max_age;
    if (expires) /* an invalid Expires, "0" say, is in the past (9111 5.3) */
        return http_date_parse(expires->value.p, expires->value.len, &t) == 0
                   ? clamp_delta(t - m->date)
                   : 0;
    if (!cache_status_heuristic(status) && !cc->is_public) return 0;
    m->heuristic = true;
    if (m->last_modified == CACHE_ABSENT || m->last_modified >= m->date) return 0;
    t = (m->date - m->last_modified) / 10;
    return t > CACHE_HEURISTIC_MAX ? CACHE_HEURISTIC_MAX : t;
}

void cache_meta_init(struct cache_meta *m, int status, const struct http_header *h, size_t n,
                     int64_t request_time, int64_t response_time)
{
    struct cache_control cc;
    int64_t apparent_age, corrected_age_value;

    cache_control_of(&cc, h, n);
    memset(m, 0, sizeof *m);
    m->response_time = response_time;
    if (!header_date(h, n, "date", &m->date)) m->date = response_time;
    if (!header_date(h, n, "last-modified", &m->last_modified)) m->last_modified = CACHE_ABSENT;
    apparent_age = clamp_delta(response_time - m->date);
    corrected_age_value = age_value(h, n) + clamp_delta(response_time - request_time);
    m->corrected_initial_age =
        clamp_delta(apparent_age > corrected_age_value ? apparent_age : corrected_age_value);
    m->lifetime = lifetime_of(m, status, &cc, h, n);
    m->stale_while_revalidate = cc.stale_while_revalidate;
    m->stale_if_error = cc.stale_if_error;
    m->no_cache = cc.no_cache;
    m->no_stale = cc.must_revalidate || cc.proxy_revalidate;
    m->s_maxage = cc.s_maxage != CACHE_ABSENT;
    m->immutable = cc.immutable;
}

int64_t cache_current_age(const struct cache_meta *m, int64_t now)
{
    return m->corrected_initial_age + clamp_delta(now - m->response_time);
}

/* A stale window: the response's own, else the route's (not under s-maxage). */
static int64_t window(int64_t own, int64_t route, bool s_maxage)
{
    if (own != CACHE_ABSENT) return own;
    return s_maxage || route <= 0 ? CACHE_ABSENT : route;
}

static bool within(int64_t staleness, int64_t window)
{
    return window != CACHE_ABSENT && staleness <= window;
}

/* The request's own limits (RFC 9111 5.2.1), all but max-stale. */
static bool request_accepts(const struct cache_meta *m, const struct cache_control *req,
                            int64_t age, int64_t ttl)
{
    if (!req) return true;
    if (req->no_cache && !(m->immutable && ttl > 0)) return false;
    if (req->max_age != CACHE_ABSENT && age > req->max_age) return false;
    return req->min_fresh == CACHE_ABSENT || ttl >= req->min_fresh;
}

void cache_decide(const struct cache_meta *m, const struct cache_control *req,
                  const struct cache_defaults *defaults, int64_t now, struct cache_decision *d)
{
    struct cache_defaults none = {CACHE_ABSENT, CACHE_ABSENT};
    const struct cache_defaults *def = defaults ? defaults : &none;
    bool stale_ok = !m->no_cache && !m->no_stale;
    int64_t staleness;

    d->age = cache_current_age(m, now);
    d->ttl = m->lifetime - d->age;
    staleness = -d->ttl;
    d->serve_on_error =
        stale_ok && within(staleness, window(m->stale_if_error, def->stale_if_error, m->s_maxage));
    if (m->no_cache || !request_accepts(m, req, d->age, d->ttl))
        d->use = CACHE_USE_REVALIDATE;
    else if (d->ttl > 0)
        d->use = CACHE_USE_FRESH;
    else if (stale_ok && !m->s_maxage && req && within(staleness, req->max_stale))
        d->use = CACHE_USE_FRESH; /* the client accepts this much staleness */
    else if (stale_ok && within(staleness, window(m->stale_while_revalidate,
                                                  def->stale_while_revalidate, m->s_maxage)))
        d->use = CACHE_USE_STALE;
    else
        d->use = CACHE_USE_REVALIDATE;
}

/* ---- Vary ---------------------------------------------------------------- */

int cache_vary_names(const struct http_header *h, size_t n, char *out, size_t cap)
{
    struct text t = {out, cap, 0};
    struct http_str m;

    for (size_t i = 0; i < n; i++) {
        struct list l = list_of(h[i].value);

        if (!http1_str_is(h[i].name, "vary")) continue;
        while (list_next(&l, &m)) {
            if (m.len == 1 && m.p[0] == '*') return -1;
            if (t.len) put(&t, ",", 1);
            put_lower(&t, m);
        }
    }
    return (int)text_end(&t);
}

static void put_field_values(struct text *t, struct http_str name, const struct http_header *req,
                             size_t n)
{
    bool present = false, first = true;
    struct http_str m;

    for (size_t i = 0; i < n; i++) {
        struct list l = list_of(req[i].value);

        if (!str_eq_nocase(req[i].name, name)) continue;
        if (!present) put(t, ":", 1);
        present = true;
        while (list_next(&l, &m)) {
            if (!first) put(t, ",", 1);
            put_str(t, m);
            first = false;
        }
    }
}

size_t cache_vary_key(struct http_str names, const struct http_header *req, size_t n, char *out,
                      size_t cap)
{
    struct text t = {out, cap, 0};
    struct list l = list_of(names);
    struct http_str name;

    while (list_next(&l, &name)) {
        put_str(&t, name);
        put_field_values(&t, name, req, n);
        put(&t, "\n", 1);
    }
    return text_end(&t);
}

/* ---- validators and conditional requests -------------------------------- */

static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* entity-tag = [ W/ ] DQUOTE *etagc DQUOTE */
static bool parse_etag(struct http_str s, bool *weak, struct http_str *opaque)
{
    *weak = s.len >= 2 && s.p[0] == 'W' && s.p[1] == '/';
    if (*weak) s = (struct http_str){s.p + 2, s.len - 2};
    if (s.len < 2 || s.p[0] != '"' || s.p[s.len - 1] != '"') return false;
    for (size_t i = 1; i + 1 < s.len; i++)
        if (!is_etagc((unsigned char)s.p[i])) return false;
    *opaque = s;
    return true;
}

static bool etag_equal(struct http_str a, struct http_str b, bool strong)
{
    struct http_str oa, ob;
    bool wa, wb;

    if (!parse_etag(a, &wa, &oa) || !parse_etag(b, &wb, &ob)) return false;
    if (strong && (wa || wb)) return false;
    return oa.len == ob.len && memcmp(oa.p, ob.p, oa.len) == 0;
}

bool cache_etag_strong_equal(struct http_str a, struct http_str b)
{
    return etag_equal(a, b, true);
}

bool cache_etag_weak_equal(struct http_str a, struct http_str b)
{
    return etag_equal(a, b, false);
}

static bool none_match_hits(const struct http_header *h, struct http_str etag)
{
    struct list l = list_of(h->value);
    struct http_str m;

    while (list_next(&l, &m))
        if ((m.len == 1 && m.p[0] == '*') || cache_etag_weak_equal(m, etag)) return true;
    return false;
}

bool cache_not_modified(enum http_method method, const struct http_header *req, size_t n,
                        struct http_str etag, int64_t last_modified)
{
    bool has_none_match = false;
    int64_t since;

    if (method != HTTP_GET && method != HTTP_HEAD) return false;
    for (size_t i = 0; i < n; i++) {
        if (!http1_str_is(req[i].name, "if-none-match")) continue;
        has_none_match = true;
        if (none_match_hits(&req[i], etag)) return true;
    }
    if (has_none_match || last_modified == CACHE_ABSENT) return false;
    return header_date(req, n, "if-modified-since", &since) && last_modified <= since;
}

bool cache_if_range_holds(struct http_str value, struct http_str etag, int64_t last_modified,
                          int64_t date)
{
    int64_t t;

    if (value.len && (value.p[0] == '"' || value.p[0] == 'W'))
        return cache_etag_strong_equal(value, etag);
    if (http_date_parse(value.p, value.len, &t) != 0) return false;
    return last_modified != CACHE_ABSENT && t == last_modified &&
           date - last_modified >= STRONG_LM_MARGIN;
}

size_t cache_revalidation_headers(struct http_str etag, int64_t last_modified, char date_buf[30],
                                  struct http_header out[2])
{
    size_t n = 0;

    if (etag.len) out[n++] = (struct http_header){str_of("If-None-Match"), etag};
    if (last_modified != CACHE_ABSENT) {
        struct http_str date = {date_buf, http_date_format(date_buf, last_modified)};

        out[n++] = (struct http_header){str_of("If-Modified-Since"), date};
    }
    return n;
}

/* ---- stored heads -------------------------------------------------------- */

static bool named_by_connection(struct http_str name, const struct http_header *h, size_t n)
{
    struct http_str m;

    for (size_t i = 0; i < n; i++) {
        struct list l = list_of(h[i].value);

        if (!http1_str_is(h[i].name, "connection")) continue;
        while (list_next(&l, &m))
            if (str_eq_nocase(m, name)) return true;
    }
    return false;
}

/* A field the cache may keep (RFC 9111 3.1), less those it writes itself. */
static bool keeps_field(struct http_str name, const struct http_header *h, size_t n)
{
    return !http1_is_hop_by_hop(name) && !http1_str_is(name, "age") &&
           !http1_str_is(name, "content-length") && !named_by_connection(name, h, n);
}

static void put_field(struct text *t, struct http_str name, struct http_str value)
{
    put_str(t, name);
    put(t, ": ", 2);
    put_str(t, value);
    put(t, "\r\n", 2);
}

static void put_status_line(struct text *t, int status, struct http_str reason)
{
    char code[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};

    put_cstr(t, "HTTP/1.1 ");
    put(t, code, sizeof code);
    put_str(t, reason);
    put(t, "\r\n", 2);
}

size_t cache_head_build(int status, struct http_str reason, const struct http_header *h, size_t n,
                        int64_t response_time, char *out, size_t cap)
{
    struct text t = {out, cap, 0};
    size_t kept = 0;
    char date[30];

    put_status_line(&t, status, reason);
    for (size_t i = 0; i < n; i++) {
        if (!keeps_field(h[i].name, h, n)) continue;
        put_field(&t, h[i].name, h[i].value);
        kept++;
    }
    if (!has_field(h, n, "date") && kept < HTTP_MAX_HEADERS)
        put_field(&t, str_of("Date"),
                  (struct http_str){date, http_date_format(date, response_time)});
    put(&t, "\r\n", 2);
    return text_end(&t);
}

/* The head's lines after the status line, one at a time, without CRLF. */
static bool next_line(const char **p, const char *end, struct http_str *line)
{
    const char *eol = *p;

    while (eol < end && !(*eol == '\r' && eol + 1 < end && eol[1] == '\n'))
        eol++;
    if (eol == *p) return false; /* the empty line ending the head */
    *line = (struct http_str){*p, (size_t)(eol - *p)};
    *p = eol < end ? eol + 2 : end;
    return true;
}

static struct http_str line_name(struct http_str line)
{
    const char *colon = memchr(line.p, ':', line.len);

    return (struct http_str){line.p, colon ? (size_t)(colon - line.p) : line.len};
}

static bool replaced_by(struct http_str name, const struct http_header *h, size_t n)
{
    if (http1_str_is(name, "date")) return true; /* the 304's, or the time it came */
    for (size_t i = 0; i < n; i++)
        if (str_eq_nocase(h[i].name, name) && keeps_field(h[i].name, h, n)) return true;
    return false;
}

size_t cache_head_merge(const char *stored, size_t stored_len, const struct http_header *h,
                        size_t n, int64_t response_time, char *out, size_t cap)
{
    struct text t = {out, cap, 0};
    const char *p = stored, *end = stored + stored_len;
    struct http_str line;
    size_t fields = 0;
    char date[30];

    if (next_line(&p, end, &line)) {
        put(&t, line.p, line.len);
        put(&t, "\r\n", 2);
    }
    while (next_line(&p, end, &line)) {
        if (replaced_by(line_name(line), h, n)) continue;
        put(&t, line.p, line.len);
        put(&t, "\r\n", 2);
        fields++;
    }
    for (size_t i = 0; i < n; i++) {
        if (!keeps_field(h[i].name, h, n)) continue;
        put_field(&t, h[i].name, h[i].value);
        fields++;
    }
    if (!has_field(h, n, "date") && fields < HTTP_MAX_HEADERS)
        put_field(&t, str_of("Date"),
                  (struct http_str){date, http_date_format(date, response_time)});
    put(&t, "\r\n", 2);
    return text_end(&t);
}

struct http_str cache_head_field(const char *head, size_t len, const char *name)
{
    const char *p = head, *end = head + len;
    struct http_str line, want = str_of(name);

    if (!next_line(&p, end, &line)) return (struct http_str){NULL, 0};
    while (next_line(&p, end, &line)) {
        struct http_str n = line_name(line);

        if (n.len < line.len && str_eq_nocase(n, want))
            return trim(line.p + n.len + 1, line.p + line.len);
    }
    return (struct http_str){NULL, 0};
}

/* ---- Range --------------------------------------------------------------- */

/* Digits from *p, saturating; false when there are none. */
static bool take_position(const char **p, const char *end, uint64_t *v)
{
    const char *start = *p;

    *v = 0;
    for (; *p < end && is_digit(**p); (*p)++) {
        uint64_t d = (uint64_t)(**p - '0');

        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    return *p > start;
}

static enum cache_range suffix_range(const char *p, const char *end, uint64_t length,
                                     uint64_t *first, uint64_t *last)
{
    uint64_t suffix;

    if (!take_position(&p, end, &suffix) || p != end) return CACHE_RANGE_NONE;
    if (suffix == 0 || length == 0) return CACHE_RANGE_UNSATISFIABLE;
    *first = suffix >= length ? 0 : length - suffix;
    *last = length - 1;
    return CACHE_RANGE_PARTIAL;
}

enum cache_range cache_range_parse(struct http_str value, uint64_t length, uint64_t *first,
                                   uint64_t *last)
{
    struct http_str spec;
    const char *p, *end;
    bool has_last;

    if (value.len < 6 || !http1_str_is((struct http_str){value.p, 6}, "bytes=") ||
        memchr(value.p, ',', value.len))
        return CACHE_RANGE_NONE;
    spec = trim(value.p + 6, value.p + value.len);
    p = spec.p;
    end = spec.p + spec.len;
    if (p < end && *p == '-') return suffix_range(p + 1, end, length, first, last);
    if (!take_position(&p, end, first) || p == end || *p++ != '-') return CACHE_RANGE_NONE;
    has_last = take_position(&p, end, last);
    if (p != end || (has_last && *last < *first)) return CACHE_RANGE_NONE;
    if (*first >= length) return CACHE_RANGE_UNSATISFIABLE;
    if (!has_last || *last >= length) *last = length - 1;
    return CACHE_RANGE_PARTIAL;
}

size_t cache_content_range(enum cache_range r, uint64_t first, uint64_t last, uint64_t length,
                           char *out, size_t cap)
{
    int n = r == CACHE_RANGE_PARTIAL
                ? snprintf(out, cap, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, length)
                : snprintf(out, cap, "bytes */%" PRIu64, length);

    return n < 0 ? 0 : (size_t)n;
}

/* ---- Cache-Status -------------------------------------------------------- */

static bool is_sf_token(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
    for (; *s; s++)
        if (!(lower(*s) >= 'a' && lower(*s) <= 'z') && !is_digit(*s) && !strchr("-._:/", *s))
            return false;
    return true;
}

size_t cache_status_format(const struct cache_status *s, char *out, size_t cap)
{
    static const char *const fwd[] = {NULL,        "bypass", "method",  "uri-miss",
                                      "vary-miss", "miss",   "request", "stale"};
    struct text t = {out, cap, 0};
    char num[32];

    put_cstr(&t, CACHE_STATUS_NAME);
    if (s->fwd == CACHE_FWD_NONE || (size_t)s->fwd >= sizeof fwd / sizeof fwd[0]) {
        put_cstr(&t, "; hit");
    } else {
        put_cstr(&t, "; fwd=");
        put_cstr(&t, fwd[s->fwd]);
    }
    if (s->fwd_status > 0 && s->fwd_status < 1000)
        put(&t, num, (size_t)snprintf(num, sizeof num, "; fwd-status=%d", s->fwd_status));
    if (s->has_ttl) put(&t, num, (size_t)snprintf(num, sizeof num, "; ttl=%" PRId64, s->ttl));
    if (s->stored) put_cstr(&t, "; stored");
    if (s->collapsed) put_cstr(&t, "; collapsed");
    if (is_sf_token(s->detail)) {
        put_cstr(&t, "; detail=");
        put_cstr(&t, s->detail);
    }
    return text_end(&t);
}
