/* A hashed timer wheel: one deadline per connection, O(1) to arm, move or
 * disarm, checked once per loop turn. Resolution TIMER_TICK_MS. */
#ifndef RINGGATE_TIMER_H
#define RINGGATE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_TICK_MS 16
#define TIMER_SLOTS 1024 /* one turn of the wheel: about 16 s */

struct timer {
    struct timer *prev, *next;
    uint64_t deadline; /* ms, monotonic */
};

struct timer_wheel {
    struct timer slots[TIMER_SLOTS]; /* list heads */
    uint64_t tick;                   /* next tick to look at */
};

void timer_wheel_init(struct timer_wheel *wheel, uint64_t now_ms);

/* (Re)arms t to fire at `deadline` ms. */
void timer_arm(struct timer_wheel *wheel, struct timer *t, uint64_t deadline);

void timer_disarm(struct timer *t);

static inline bool timer_armed(const struct timer *t)
{
    return t->next != 0;
}

/* Calls fire(t) for every timer due at now_ms, disarmed before the call
 * (fire may re-arm it). */
void timer_wheel_run(struct timer_wheel *wheel, uint64_t now_ms, void (*fire)(struct timer *t));

/* Monotonic milliseconds, and microseconds. */
uint64_t clock_ms(void);
uint64_t clock_us(void);

#endif
