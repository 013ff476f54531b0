/*
 * tokpack.h - access tokens held compactly in memory, given back byte
 * for byte on demand.
 *
 * A JWT (header.payload.signature, canonical base64url without padding)
 * is stored decoded: the header interned in a small refcounted table,
 * the payload raw-deflated against a per-key preset dictionary (the
 * first payload packed under that key), the signature as raw bytes.
 * Anything else is stored as it came. Packing checks its own work
 * (unpack and compare) and stores the token raw on any difference, so
 * unpack(pack(x)) == x for every input.
 *
 * A struct tokpack is single-threaded: it owns one deflate and one
 * inflate stream that every call reuses. Use one per event loop and
 * never share it or its blobs between threads.
 *
 * Must never: hand back bytes other than the ones packed, leave token
 * bytes (the signature makes a token usable) in freed memory, or log.
 */
#ifndef CREDD_TOKPACK_H
#define CREDD_TOKPACK_H

#include <stddef.h>
#include <sys/types.h>

#define TOKPACK_HDR_MAX 64  /* interned headers; then headers go inline */
#define TOKPACK_DICT_MAX 64 /* dictionary keys; then no dictionary */

struct tokpack; /* interned headers, dictionaries, zlib streams */
struct tokblob; /* one packed token (opaque, one allocation) */

/* A new, empty context. NULL on ENOMEM (errno set). */
struct tokpack *tokpack_new(void);
/*
 * Wipe and free the context: dictionaries, interned headers, streams.
 * Every blob must have been freed first (tokpack_blob_free). NULL is
 * ignored.
 */
void tokpack_free(struct tokpack *tp);

/*
 * Pack tok[0..len) into a new blob owned by the caller. dict_key names
 * the dictionary (the caller passes the scope; NULL: none); it is copied
 * when a dictionary is made for it. tok is only read. Returns NULL with
 * errno ENOMEM, EMSGSIZE (len near 4 GiB) or EINVAL (NULL tp or tok).
 */
struct tokblob *tokpack_pack(struct tokpack *tp, const char *dict_key,
    const char *tok, size_t len);
/* The unpacked length of b. */
size_t tokpack_len(const struct tokblob *b);
/*
 * Write the token of b into out[0..outsz) (no NUL added); out is also
 * the scratch space, so nothing else holds the token afterwards. b must
 * come from tp. Returns tokpack_len(b), or -EMSGSIZE (outsz too small),
 * -EBADMSG (corrupt blob; out is wiped) or -EINVAL (NULL tp, b or out).
 * Allocates nothing; errno is left alone.
 */
ssize_t tokpack_unpack(struct tokpack *tp, const struct tokblob *b, char *out,
    size_t outsz);
/*
 * Bytes b accounts for, for statistics: its own allocation plus its
 * share of an interned header (the header's allocation divided by the
 * number of blobs using it, rounded up), so that the sum over all live
 * blobs is the memory they take. The share changes as blobs come and
 * go. Dictionaries (at most TOKPACK_DICT_MAX, kept for the life of tp)
 * are not counted.
 */
size_t tokpack_blob_bytes(const struct tokblob *b);
/*
 * Wipe and free b, dropping its reference on tp's interned header; tp
 * must be the context that packed b. NULL b is ignored.
 */
void tokpack_blob_free(struct tokpack *tp, struct tokblob *b);

/*
 * base64url without padding of src[0..n) into dst, which must have room
 * for (4 * n + 2) / 3 bytes (no NUL added). Returns that length.
 * Constant time in the data (no secret-dependent branches or lookups).
 * src may be the last n bytes of dst's range (in-place widening);
 * otherwise the ranges must not overlap.
 */
size_t tokpack_b64encode(char *dst, const unsigned char *src, size_t n);

#endif
