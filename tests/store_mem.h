/*
 * store_mem.h - an in-memory store backend (store.h) for unit tests; see
 * store_mem.c. Not part of credd.
 */
#ifndef STORE_MEM_H
#define STORE_MEM_H

#include <stdatomic.h>
#include <stdint.h>

#define STORE_MEM_ROWS 64

struct store;

/*
 * A new empty store; seq (borrowed, outlives the store) numbers each
 * successful write. Close with store_close(). 0 or -ENOMEM.
 */
int store_mem_open(atomic_uint_fast64_t *seq, struct store **out);
/*
 * The same with a (no-op) cluster lock, so that credd takes it for a
 * cluster store (storeq_is_cluster): flows are claimed in the record.
 */
int store_mem_open_cluster(atomic_uint_fast64_t *seq, struct store **out);
/* Successful writes (put_if) and deletions (del_if) so far. */
unsigned store_mem_puts(const struct store *st);
unsigned store_mem_dels(const struct store *st);
/* The sequence number of the last successful write; 0: none. */
uint64_t store_mem_last_put(const struct store *st);
/* Is a row stored for (tenant, user)? */
int store_mem_has(struct store *st, const char *tenant, const char *user);

#endif
