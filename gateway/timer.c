/* Hashed timer wheel. A timer due beyond one turn sits in its slot and is
 * skipped until the turn in which it falls due. */
#include "timer.h"

#include <stddef.h>
#include <time.h>

uint64_t clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void timer_wheel_init(struct timer_wheel *wheel, uint64_t now_ms)
{
    for (size_t i = 0; i < TIMER_SLOTS; i++)
        wheel->slots[i].prev = wheel->slots[i].next = &wheel->slots[i];
    wheel->tick = now_ms / TIMER_TICK_MS;
}

void timer_disarm(struct timer *t)
{
    if (!timer_armed(t))
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

void timer_arm(struct timer_wheel *wheel, struct timer *t, uint64_t deadline)
{
    uint64_t tick = deadline / TIMER_TICK_MS;
    struct timer *head;

    timer_disarm(t);
    if (tick < wheel->tick)
        tick = wheel->tick;
    head = &wheel->slots[tick % TIMER_SLOTS];
    t->deadline = deadline;
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
}

static void run_slot(struct timer *head, uint64_t now_ms, void (*fire)(struct timer *t))
{
    struct timer due = {&due, &due, 0};

    /* Move the due timers to a private list first: fire() may arm timers
     * into this very slot. */
    for (struct timer *t = head->next, *next; t != head; t = next) {
        next = t->next;
        if (t->deadline > now_ms)
            continue;
        timer_disarm(t);
        t->next = &due;
        t->prev = due.prev;
        due.prev->next = t;
        due.prev = t;
    }
    while (due.next != &due) {
        struct timer *t = due.next;
        timer_disarm(t);
        fire(t);
    }
}

void timer_wheel_run(struct timer_wheel *wheel, uint64_t now_ms, void (*fire)(struct timer *t))
{
    uint64_t now_tick = now_ms / TIMER_TICK_MS;

    /* Only whole ticks that have passed: every deadline in them is due. */
    if (now_tick > wheel->tick + TIMER_SLOTS)
        wheel->tick = now_tick - TIMER_SLOTS;
    for (; wheel->tick < now_tick; wheel->tick++)
        run_slot(&wheel->slots[wheel->tick % TIMER_SLOTS], now_ms, fire);
}
