/* Whole request bodies, for the schema filter: on a route that names a
 * schema, the body is collected (up to limits.max_body_bytes), decoded if
 * chunked, and validated before anything goes upstream. Nothing is
 * connected to the origin while the client uploads. A valid body is then
 * forwarded with a Content-Length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "log.h"
#include "reply.h"
#include "schema.h"

/* application/json, or any type/subtype+json; parameters allowed. */
static bool is_json(const struct http_request *req)
{
    const struct http_header *h =
        http1_find_header(req->headers, req->n_headers, "content-type");
    const char *p, *end, *semi;

    if (!h)
        return false;
    p = h->value.p;
    end = p + h->value.len;
    semi = memchr(p, ';', (size_t)(end - p));
    if (semi)
        end = semi;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if ((size_t)(end - p) == 16 && strncasecmp(p, "application/json", 16) == 0)
        return true;
    return end - p > 5 && strncasecmp(end - 5, "+json", 5) == 0 && memchr(p, '/', (size_t)(end - p));
}

static void refuse(struct conn *c, int status, const char *code, const char *message,
                   const char *members)
{
    c->x->keep_alive = false; /* the rest of the body may still be on its way */
    buf_free(&c->x->held_head, &c->w->pool);
    conn_respond_error_json(c, status, code, message, members, NULL);
}

/* Bodies whose arena fits this are validated in a per-worker arena kept
 * between requests: no malloc, no fresh pages. Larger ones get their own
 * (a kept arena that size would hold tens of MiB per worker for good). */
#define KEPT_ARENA_MAX (4u << 20)

static int validate(struct worker *w, const struct schema *s, const char *body, size_t len,
                    struct schema_result *res)
{
    size_t need = schema_arena_size(s, len);

    if (need > KEPT_ARENA_MAX)
        return schema_validate(s, body, len, res);
    if (w->schema_arena_size < need) {
        void *bigger = realloc(w->schema_arena, need);
        if (!bigger)
            return schema_validate(s, body, len, res);
        w->schema_arena = bigger;
        w->schema_arena_size = need;
    }
    return schema_validate_in(s, body, len, w->schema_arena, w->schema_arena_size, res);
}

static void validate_and_forward(struct conn *c)
{
    const struct schema_conf *schema = c->x->route->schema;
    struct schema_result res;
    char members[1400], ipath[600], spath[600], length[48];
    int rc = validate(c->w, schema->compiled, buf_head(&c->in), c->x->body_len, &res);

    if (rc == SCHEMA_BAD_JSON) {
        metrics_schema_rejected(c->w->metrics, schema->metrics_id);
        snprintf(members, sizeof(members), ",\"offset\":%zu", res.offset);
        refuse(c, 400, "invalid_json", res.message, members);
        return;
    }
    if (rc != SCHEMA_VALID) {
        metrics_schema_rejected(c->w->metrics, schema->metrics_id);
        if (json_string_escape(ipath, sizeof(ipath), res.instance_path) == (size_t)-1)
            ipath[0] = '\0';
        if (json_string_escape(spath, sizeof(spath), res.schema_path) == (size_t)-1)
            spath[0] = '\0';
        snprintf(members, sizeof(members), ",\"instance_path\":\"%s\",\"schema_path\":\"%s\"",
                 ipath, spath);
        refuse(c, 400, "schema_violation", res.message, members);
        return;
    }
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", c->x->body_len);
    if (!buf_append(&c->x->held_head, &c->w->pool, length, strlen(length), 128 * 1024)) {
        refuse(c, 431, NULL, "request head too large to forward", NULL);
        return;
    }
    memset(&c->x->req_body, 0, sizeof(c->x->req_body));
    c->x->req_body.in = HTTP_BODY_LENGTH;
    c->x->req_body.remaining = c->x->body_len;
    c->x->req_body.done = c->x->body_len == 0;
    proxy_start_held(c);
}

/* Decodes what has arrived of a chunked body, in place: c->in holds the
 * decoded bytes first, then what is not decoded yet. */
static int decode_chunks(struct conn *c)
{
    char *region = buf_head(&c->in) + c->x->body_len;
    size_t avail = buf_len(&c->in) - c->x->body_len, consumed = avail, data = 0;
    int rc = chunked_decode(&c->x->req_body.dec, region, &consumed, &data);

    if (rc == HTTP_ERROR)
        return rc;
    /* Bytes after the last chunk (a pipelined request) follow the body. */
    memmove(region + data, region + consumed, avail - consumed);
    c->in.end -= consumed - data;
    c->x->body_len += data;
    return rc;
}

void body_on_client_data(struct conn *c)
{
    const struct limits_conf *lim = &c->x->cfg->limits;
    bool complete;

    if (c->x->req_body.in == HTTP_BODY_CHUNKED) {
        int rc = decode_chunks(c);
        if (rc == HTTP_ERROR) {
            refuse(c, 400, NULL, "malformed chunked request body", NULL);
            return;
        }
        complete = rc == CHUNKED_DONE;
    } else {
        c->x->body_len = buf_len(&c->in) < c->x->req_body.remaining ? buf_len(&c->in)
                                                               : (size_t)c->x->req_body.remaining;
        complete = c->x->body_len == c->x->req_body.remaining;
    }
    if (c->x->body_len > lim->max_body_bytes) {
        refuse(c, 413, NULL, "request body is larger than limits.max_body_bytes", NULL);
        return;
    }
    if (complete) {
        validate_and_forward(c);
        return;
    }
    timer_arm(&c->w->timers, &c->timer, c->w->now + lim->idle_timeout);
    conn_arm_recv(c);
}

bool body_collect_start(struct conn *c, const struct http_request *req)
{
    if (!c->x->route->schema || req->body == HTTP_BODY_NONE)
        return false;
    if (!is_json(req)) {
        refuse(c, 415, NULL, "this route validates JSON bodies: use Content-Type "
                             "application/json", NULL);
        return true;
    }
    c->x->key_hash = proxy_key_hash(c, req);
    if (!proxy_build_head(c, req, &c->x->held_head, true)) {
        refuse(c, 431, NULL, "request head too large to forward", NULL);
        return true;
    }
    c->state = CS_BODY;
    c->x->body_len = 0;
    conn_send_continue(c);
    body_on_client_data(c);
    return true;
}
