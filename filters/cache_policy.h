/* The rules of a shared HTTP cache (RFC 9111), over parsed heads: what may
 * be stored, for how long it is fresh, how old it is, when it may be served
 * stale, which variant a request selects (Vary), the conditional requests a
 * cache answers or sends (RFC 9110 13), single byte ranges (RFC 9110 14)
 * and the Cache-Status header (RFC 9211). Pure functions: no I/O, no
 * allocation, no clock (times are seconds since the epoch, passed in).
 *
 * Functions that write text take (out, cap) and return the length the
 * whole text needs, as snprintf does: the text is complete only when the
 * returned length is below cap (out is then NUL-terminated). */
#ifndef RINGGATE_CACHE_POLICY_H
#define RINGGATE_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

#define CACHE_ABSENT (-1)                   /* a delta-seconds directive not given */
#define CACHE_DELTA_MAX INT64_C(2147483648) /* 2^31: larger values saturate (9111 1.2.2) */
#define CACHE_HEURISTIC_MAX 86400           /* cap of a heuristic freshness lifetime */
#define CACHE_STATUS_NAME "ringgate"        /* our name in Cache-Status */

/* Cache-Control directives of a request or a response (RFC 9111 5.2).
 * Deltas are seconds, CACHE_ABSENT when not given. An invalid or
 * conflicting max-age or s-maxage reads as 0 (stale, 9111 4.2.1); a
 * max-stale without a value as CACHE_DELTA_MAX. The field-named forms
 * no-cache="x" and private="x" count as plain no-cache and private. */
struct cache_control {
    int64_t max_age, s_maxage, stale_while_revalidate, stale_if_error;
    int64_t max_stale, min_fresh; /* requests only */
    bool no_store, no_cache, is_private, is_public;
    bool must_revalidate, proxy_revalidate, immutable;
    bool only_if_cached; /* requests only */
};

void cache_control_init(struct cache_control *cc);
/* Adds the directives of one Cache-Control field value. */
void cache_control_parse(struct cache_control *cc, struct http_str value);
/* Init, then every Cache-Control line of the header list. */
void cache_control_of(struct cache_control *cc, const struct http_header *h, size_t n);

/* Why a response is not stored (CACHE_STORABLE when it is). */
enum cache_storable {
    CACHE_STORABLE = 0,
    CACHE_NOT_METHOD,        /* only GET responses are stored */
    CACHE_NOT_STATUS,        /* not final, 206, 304, or not a status we understand */
    CACHE_NOT_NO_STORE,      /* no-store in the request or the response */
    CACHE_NOT_PRIVATE,       /* private */
    CACHE_NOT_AUTHORIZATION, /* Authorization without public, s-maxage or must-revalidate */
    CACHE_NOT_VARY_STAR,     /* Vary: * */
    CACHE_NOT_SET_COOKIE,    /* Set-Cookie: never stored, see cache_storable() */
    CACHE_NOT_FRESHNESS,     /* no explicit freshness, status not heuristically cacheable */
    CACHE_NOT_USEFUL,        /* stale on arrival, and no validator to revalidate it with */
    CACHE_NOT_TOO_LARGE,     /* the store: larger than max_object */
    CACHE_NOT_NO_MEMORY,     /* the store: no room, even after eviction */
    CACHE_NOT_FILL,          /* the store: the fill was no longer in progress */
};

/* A short name of the reason, for Cache-Status detail and logs. */
const char *cache_storable_name(enum cache_storable why);

/* Whether a shared cache may store this response to this request (RFC
 * 9111 3, 3.5). Responses carrying Set-Cookie are never stored, whatever
 * Cache-Control says: serving one client's cookie to another is the worst
 * failure a shared cache can have, and origins that mark such responses
 * public usually do so by mistake (nginx and Varnish do the same). */
enum cache_storable cache_storable(enum http_method method, const struct http_header *req,
                                   size_t n_req, const struct cache_control *req_cc, int status,
                                   const struct http_header *resp, size_t n_resp,
                                   const struct cache_control *resp_cc);

/* True for the status codes heuristically cacheable (RFC 9110 15.1), 206
 * excepted: the cache stores whole objects only. */
bool cache_status_heuristic(int status);

/* What the cache keeps of a response to judge its freshness later. */
struct cache_meta {
    int64_t response_time;                          /* when the response head arrived */
    int64_t date;                                   /* its Date, or response_time */
    int64_t corrected_initial_age;                  /* RFC 9111 4.2.3, as of response_time */
    int64_t lifetime;                               /* freshness lifetime (4.2.1) */
    int64_t last_modified;                          /* CACHE_ABSENT when none or invalid */
    int64_t stale_while_revalidate, stale_if_error; /* the response's, or CACHE_ABSENT */
    bool heuristic;                                 /* lifetime is a heuristic one (4.2.2) */
    bool no_cache;                                  /* every use needs revalidation */
    bool no_stale;                                  /* must-revalidate / proxy-revalidate */
    bool s_maxage;  /* s-maxage given: stale only where the response allows */
    bool immutable; /* RFC 8246: no revalidation while fresh */
};

/* Fills *m from a response head received at response_time for a request
 * sent at request_time. */
void cache_meta_init(struct cache_meta *m, int status, const struct http_header *h, size_t n,
                     int64_t request_time, int64_t response_time);

/* False for a response stale on arrival that has neither a validator
 * (ETag, Last-Modified) to revalidate it with nor a stale-if-error of its
 * own: storing it could never save an origin request (CACHE_NOT_USEFUL). */
bool cache_worth_storing(const struct cache_meta *m, bool has_validator);

/* current_age (RFC 9111 4.2.3) at `now`. */
int64_t cache_current_age(const struct cache_meta *m, int64_t now);

/* Route defaults for serving stale, used where the response says nothing;
 * CACHE_ABSENT (or 0) disables. */
struct cache_defaults {
    int64_t stale_while_revalidate, stale_if_error;
};

enum cache_use {
    CACHE_USE_FRESH,      /* serve it */
    CACHE_USE_STALE,      /* serve it stale and refresh it in the background */
    CACHE_USE_REVALIDATE, /* ask the origin first (conditional request) */
};

struct cache_decision {
    enum cache_use use;
    int64_t age;         /* current age, for the Age header */
    int64_t ttl;         /* lifetime - age: negative once stale */
    bool serve_on_error; /* if the origin fails (or its circuit is open), serve it */
};

/* How a stored response may satisfy a request with directives *req at
 * `now` (RFC 9111 4, 4.2.4, 5.2.1; RFC 5861). Stale is never served when
 * the response says no-cache, must-revalidate or proxy-revalidate; with
 * s-maxage (which implies proxy-revalidate) only within the response's
 * own stale-while-revalidate / stale-if-error, route defaults do not apply. */
void cache_decide(const struct cache_meta *m, const struct cache_control *req,
                  const struct cache_defaults *defaults, int64_t now, struct cache_decision *d);

/* Vary (RFC 9111 4.1). The response's Vary lines as canonical text: field
 * names lowercased, joined with ','. Returns its length as snprintf does
 * (0: no Vary), or -1 for Vary: *. */
int cache_vary_names(const struct http_header *h, size_t n, char *out, size_t cap);

/* The variant key of a request under canonical Vary names: for each name,
 * the values of all its lines, list members trimmed and joined with ','.
 * An absent field differs from an empty one. Two requests select the same
 * variant iff their keys are equal. Length as snprintf. */
size_t cache_vary_key(struct http_str names, const struct http_header *req, size_t n, char *out,
                      size_t cap);

/* Entity-tag comparison (RFC 9110 8.8.3.2); false when either is invalid. */
bool cache_etag_strong_equal(struct http_str a, struct http_str b);
bool cache_etag_weak_equal(struct http_str a, struct http_str b);

/* A client's conditional GET or HEAD against a stored response with ETag
 * `etag` (len 0: none) and Last-Modified `last_modified` (for a response
 * without one, pass its Date: RFC 9111 4.3.2). True when the answer is 304.
 * If-None-Match (weak comparison, lists, *) takes precedence over
 * If-Modified-Since; an invalid If-Modified-Since is ignored. */
bool cache_not_modified(enum http_method method, const struct http_header *req, size_t n,
                        struct http_str etag, int64_t last_modified);

/* If-Range (RFC 9110 13.1.5): whether the Range applies to the stored
 * response (strong comparison; a date only against a strong Last-Modified,
 * one at least 60 seconds before the Date, RFC 9110 8.8.2.2). */
bool cache_if_range_holds(struct http_str value, struct http_str etag, int64_t last_modified,
                          int64_t date);

/* The validators to revalidate a stored response with: If-None-Match from
 * its ETag, If-Modified-Since from its Last-Modified (formatted into
 * date_buf). Returns how many headers were written to out. */
size_t cache_revalidation_headers(struct http_str etag, int64_t last_modified, char date_buf[30],
                                  struct http_header out[2]);

/* The head the cache stores: "HTTP/1.1 status reason" CRLF, the fields
 * that may be stored CRLF-terminated, and a final CRLF. Left out:
 * hop-by-hop fields and those named by Connection, Age (the cache sends its
 * own), Content-Length and Transfer-Encoding (the sender frames the stored
 * body). A Date is added when there is none (RFC 9110 6.6.1) and the head
 * has room for it (at most HTTP_MAX_HEADERS fields, so that it parses
 * back). Length as snprintf. */
size_t cache_head_build(int status, struct http_str reason, const struct http_header *h, size_t n,
                        int64_t response_time, char *out, size_t cap);

/* The stored head refreshed by a 304 received at response_time (RFC 9111
 * 3.2, 4.3.4): the fields of the 304 that may be stored replace every
 * stored line of the same name; the status line is kept. The Date is the
 * 304's, or response_time when it has none (so that the age restarts) if
 * there is room, as in cache_head_build(). Length as snprintf. */
size_t cache_head_merge(const char *stored, size_t stored_len, const struct http_header *h,
                        size_t n, int64_t response_time, char *out, size_t cap);

/* The value of the first field `name` in a head built by cache_head_build
 * (len 0, p NULL when absent). */
struct http_str cache_head_field(const char *head, size_t len, const char *name);

enum cache_range {
    CACHE_RANGE_NONE,          /* serve the whole object (200) */
    CACHE_RANGE_PARTIAL,       /* serve [first, last] (206) */
    CACHE_RANGE_UNSATISFIABLE, /* 416 */
};

/* A Range value against an object of `length` bytes: a single bytes range
 * (a-b, a-, -suffix). Invalid syntax, other units and several ranges give
 * NONE (RFC 9110 14.2 lets a server ignore Range). */
enum cache_range cache_range_parse(struct http_str value, uint64_t length, uint64_t *first,
                                   uint64_t *last);

/* The Content-Range value: "bytes first-last/length", or "bytes *\/length"
 * for UNSATISFIABLE. Length as snprintf (at most 68). */
size_t cache_content_range(enum cache_range r, uint64_t first, uint64_t last, uint64_t length,
                           char *out, size_t cap);

/* RFC 9211 forward reasons; CACHE_FWD_NONE is a hit. */
enum cache_fwd {
    CACHE_FWD_NONE,
    CACHE_FWD_BYPASS,
    CACHE_FWD_METHOD,
    CACHE_FWD_URI_MISS,
    CACHE_FWD_VARY_MISS,
    CACHE_FWD_MISS,
    CACHE_FWD_REQUEST,
    CACHE_FWD_STALE,
};

struct cache_status {
    enum cache_fwd fwd;
    int fwd_status; /* the origin's status; 0 omits it */
    bool has_ttl;
    int64_t ttl;
    bool stored, collapsed;
    const char *detail; /* an sf-token (a letter, then letters, digits, -._:/), or NULL */
};

/* The Cache-Status member, e.g. "ringgate; hit; ttl=42" or
 * "ringgate; fwd=stale; fwd-status=304; ttl=60". Length as snprintf. */
size_t cache_status_format(const struct cache_status *s, char *out, size_t cap);

#endif
