/*
 * memtrim.h - hands the free pages that refresh traffic leaves inside
 * the heap back to the kernel, now and then.
 *
 * Refreshes allocate and free a few KiB each (the IdP's reply, its
 * parse, the record written) between the small objects that stay (cache
 * entries, packed tokens, timers). glibc keeps those holes: about 0.4 KB
 * per user after 10k users' first refreshes. Every 30 s, after enough
 * churn (memtrim_note), malloc_trim(0) returns the free pages inside
 * them to the kernel (MADV_DONTNEED); it walks free chunks only (a few
 * ms at 100k users), so an idle or small node never pays for it.
 */
#ifndef CREDD_MEMTRIM_H
#define CREDD_MEMTRIM_H

#include <stdint.h>

struct event_loop;
struct memtrim;

/* Start the 30 s timer. NULL on ENOMEM: nothing is ever trimmed. */
struct memtrim *memtrim_new(struct event_loop *ev);
/* n more changes (tokens cached, records evicted); t may be NULL. */
void memtrim_note(struct memtrim *t, uint64_t n);
/* Stop the timer; NULL is fine. */
void memtrim_free(struct memtrim *t);

#endif
