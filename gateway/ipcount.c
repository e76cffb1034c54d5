/* Per-address connection counts. */
#include "ipcount.h"

#include <pthread.h>
#include <string.h>

#include "balance.h"

#define SHARDS 64
#define SLOTS 4096 /* per shard, a power of two: 262 144 addresses */

struct slot {
    uint8_t addr[16];
    uint32_t count; /* 0: free */
};

static struct shard {
    pthread_mutex_t lock;
    uint32_t used;
    struct slot slots[SLOTS];
} shards[SHARDS];

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}

/* Linear probing; deletion shifts the run back, so no tombstones. */
static struct slot *find(struct shard *s, const uint8_t addr[16], uint64_t h, bool *found)
{
    size_t i = (size_t)(h >> 8) & (SLOTS - 1);

    for (size_t probes = 0; probes < SLOTS; probes++, i = (i + 1) & (SLOTS - 1)) {
        struct slot *sl = &s->slots[i];
        if (!sl->count) {
            *found = false;
            return sl;
        }
        if (memcmp(sl->addr, addr, 16) == 0) {
            *found = true;
            return sl;
        }
    }
    *found = false;
    return NULL;
}

static void erase(struct shard *s, struct slot *sl)
{
    size_t i = (size_t)(sl - s->slots), j = i;

    for (;;) {
        j = (j + 1) & (SLOTS - 1);
        struct slot *next = &s->slots[j];
        if (!next->count)
            break;
        size_t home = (size_t)(balance_hash(next->addr, 16) >> 8) & (SLOTS - 1);
        /* Move next back into the hole unless its home lies in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            s->slots[i] = *next;
            i = j;
        }
    }
    memset(&s->slots[i], 0, sizeof(s->slots[i]));
    s->used--;
}

bool ipcount_acquire(const uint8_t addr[16], unsigned cap)
{
    uint64_t h = balance_hash(addr, 16);
    struct shard *s = &shards[h % SHARDS];
    struct slot *sl;
    bool found, ok = true;

    pthread_once(&once, init);
    pthread_mutex_lock(&s->lock);
    sl = find(s, addr, h, &found);
    if (found && sl->count >= cap) {
        ok = false;
    } else if (found) {
        sl->count++;
    } else if (sl && s->used < SLOTS * 3 / 4) {
        memcpy(sl->addr, addr, 16);
        sl->count = 1;
        s->used++;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void ipcount_release(const uint8_t addr[16])
{
    uint64_t h = balance_hash(addr, 16);
    struct shard *s = &shards[h % SHARDS];
    struct slot *sl;
    bool found;

    pthread_once(&once, init);
    pthread_mutex_lock(&s->lock);
    sl = find(s, addr, h, &found);
    if (found && --sl->count == 0)
        erase(s, sl);
    pthread_mutex_unlock(&s->lock);
}
