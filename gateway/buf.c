/* Connection buffers and the per-worker pool of BUF_BLOCK blocks. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_pool_init(struct buf_pool *pool, size_t max_cached)
{
    pool->free = calloc(max_cached, sizeof(void *));
    pool->count = 0;
    pool->bytes = 0;
    pool->max = pool->free ? max_cached : 0;
}

void buf_pool_trim(struct buf_pool *pool)
{
    for (size_t i = 0; i < pool->count; i++)
        free(pool->free[i]);
    pool->bytes -= pool->count * BUF_BLOCK;
    pool->count = 0;
}

void buf_pool_destroy(struct buf_pool *pool)
{
    buf_pool_trim(pool);
    free(pool->free);
    pool->free = NULL;
    pool->max = 0;
}

static char *alloc_counted(struct buf_pool *pool, size_t size)
{
    char *p = malloc(size);

    if (p)
        pool->bytes += size;
    return p;
}

static char *block_get(struct buf_pool *pool)
{
    if (pool->count)
        return pool->free[--pool->count];
    return alloc_counted(pool, BUF_BLOCK);
}

static void block_put(struct buf_pool *pool, char *block, size_t cap)
{
    if (cap == BUF_BLOCK && pool->count < pool->max) {
        pool->free[pool->count++] = block;
    } else {
        free(block);
        pool->bytes -= cap;
    }
}

static bool buf_grow(struct buf *b, struct buf_pool *pool, size_t need, size_t limit)
{
    size_t cap = b->cap ? b->cap : BUF_BLOCK;
    char *bigger;

    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    if (cap < need)
        return false;
    if (!b->data) {
        bigger = cap == BUF_BLOCK ? block_get(pool) : alloc_counted(pool, cap);
    } else {
        bigger = alloc_counted(pool, cap);
        if (bigger) {
            memcpy(bigger, b->data + b->start, buf_len(b));
            block_put(pool, b->data, b->cap);
            b->end -= b->start;
            b->start = 0;
        }
    }
    if (!bigger)
        return false;
    b->data = bigger;
    b->cap = cap;
    return true;
}

size_t buf_reserve(struct buf *b, struct buf_pool *pool, size_t want, size_t limit)
{
    if (limit < BUF_BLOCK)
        limit = BUF_BLOCK;
    if (b->data && b->start && buf_room(b) < want) {
        memmove(b->data, b->data + b->start, buf_len(b));
        b->end -= b->start;
        b->start = 0;
    }
    if (buf_room(b) < want && !buf_grow(b, pool, buf_len(b) + want, limit) && !b->data)
        return 0;
    return buf_room(b);
}

void buf_consume(struct buf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

bool buf_append_slow(struct buf *b, struct buf_pool *pool, const void *p, size_t n, size_t limit)
{
    if (buf_reserve(b, pool, n, limit) < n)
        return false;
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return true;
}

void buf_release(struct buf *b, struct buf_pool *pool)
{
    if (!b->data || buf_len(b))
        return;
    block_put(pool, b->data, b->cap);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void buf_free(struct buf *b, struct buf_pool *pool)
{
    b->start = b->end = 0;
    buf_release(b, pool);
}
