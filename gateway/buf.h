/* Byte buffers for connections, and the per-worker pool they come from, so
 * that a request on a warm worker costs no malloc. An idle keep-alive
 * connection gives its buffer back and holds none. */
#ifndef RINGGATE_BUF_H
#define RINGGATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define BUF_BLOCK (16 * 1024) /* pooled buffer size */

struct buf {
    char *data;   /* NULL until first use */
    size_t start; /* first unread byte */
    size_t end;   /* one past the last byte */
    size_t cap;
};

struct buf_pool {
    void **free; /* LIFO stack of BUF_BLOCK-sized blocks */
    size_t count;
    size_t max;
    size_t bytes; /* allocated for buffers of this pool, cached blocks included */
};

void buf_pool_init(struct buf_pool *pool, size_t max_cached);
void buf_pool_destroy(struct buf_pool *pool);

/* Bytes held by buffers in use (the cached blocks are not). */
static inline size_t buf_pool_in_use(const struct buf_pool *pool)
{
    return pool->bytes - pool->count * BUF_BLOCK;
}

/* Gives the cached blocks back to the allocator (memory is short). */
void buf_pool_trim(struct buf_pool *pool);

static inline size_t buf_len(const struct buf *b)
{
    return b->end - b->start;
}

static inline char *buf_head(const struct buf *b)
{
    return b->data + b->start;
}

/* Room for `want` more bytes at the end (compacting or growing, up to
 * `limit` total capacity). Returns the free space, or 0 when the buffer
 * is at its limit (or out of memory). */
size_t buf_reserve(struct buf *b, struct buf_pool *pool, size_t want, size_t limit);

static inline char *buf_tail(const struct buf *b)
{
    return b->data + b->end;
}

static inline size_t buf_room(const struct buf *b)
{
    return b->cap - b->end;
}

void buf_consume(struct buf *b, size_t n);

bool buf_append_slow(struct buf *b, struct buf_pool *pool, const void *p, size_t n, size_t limit);

/* Appends n bytes; false when they do not fit under `limit`. Heads are
 * built a few bytes at a time: the common case (room already there) is
 * inline. */
static inline bool buf_append(struct buf *b, struct buf_pool *pool, const void *p, size_t n,
                              size_t limit)
{
    if (b->data && buf_room(b) >= n) {
        memcpy(b->data + b->end, p, n);
        b->end += n;
        return true;
    }
    return buf_append_slow(b, pool, p, n, limit);
}

/* Returns the memory to the pool when the buffer is empty. */
void buf_release(struct buf *b, struct buf_pool *pool);

/* Drops the contents and returns the memory (closing a connection). */
void buf_free(struct buf *b, struct buf_pool *pool);

#endif
