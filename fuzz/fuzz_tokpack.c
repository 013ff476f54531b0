/*
 * fuzz_tokpack.c - libFuzzer target for tokpack.c: whatever bytes are
 * packed must unpack to exactly those bytes, and every blob must free
 * cleanly (ASan checks the wiping frees and the header refcounts).
 *
 * Input: byte 0 holds flags, byte 1 a key number, the rest are tokens
 * separated by '\n' (at most 16).
 *   bits 0-1: dictionary key: none, "storage", "graph", "k<byte 1>" (so
 *             the long-lived context runs past TOKPACK_DICT_MAX keys);
 *   bit 2:    use a fresh context for this input (its first JWT payload
 *             becomes the dictionary) instead of the long-lived one;
 *   bit 3:    tokens are built: every three pieces are base64url-encoded
 *             and joined with '.', so the JWT path sees arbitrary header,
 *             payload and signature bytes.
 * Each token is packed twice (the second shares the header), all blobs
 * are unpacked after all were packed, then freed. A difference aborts.
 *
 * Must never: keep state between inputs besides the long-lived context
 * (its dictionaries and zlib streams, which the module keeps by design).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "tokpack.h"

#define FUZZ_TOKENS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tokpack *longlived;

struct piece {
	const uint8_t *p;
	size_t len;
};

/* Split data at '\n' into at most max pieces (the last takes the rest). */
static size_t
split(const uint8_t *data, size_t size, struct piece *pc, size_t max)
{
	size_t n = 0;
	const uint8_t *nl;

	while (n < max) {
		nl = n + 1 < max ? memchr(data, '\n', size) : NULL;
		pc[n].p = data;
		pc[n].len = nl != NULL ? (size_t)(nl - data) : size;
		n++;
		if (nl == NULL)
			break;
		size -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	return n;
}

/* b64(a).b64(b).b64(c) in a new buffer; its length in *len. */
static char *
build_jwt(const struct piece pc[3], size_t *len)
{
	size_t cap = 4, i;
	char *t, *q;

	for (i = 0; i < 3; i++)
		cap += pc[i].len / 3 * 4 + 4;
	t = malloc(cap);
	if (t == NULL)
		abort();
	q = t;
	for (i = 0; i < 3; i++) {
		if (i > 0)
			*q++ = '.';
		sodium_bin2base64(q, (size_t)(t + cap - q), pc[i].p, pc[i].len,
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		q += strlen(q);
	}
	*len = (size_t)(q - t);
	return t;
}

static struct tokblob *
pack(struct tokpack *tp, const char *key, const char *tok, size_t len)
{
	struct tokblob *b;

	b = tokpack_pack(tp, key, tok, len);
	if (b == NULL || tokpack_len(b) != len)
		abort();
	return b;
}

static void
check(struct tokpack *tp, const struct tokblob *b, const char *tok, size_t len)
{
	char *out;

	out = malloc(len + 1);
	if (out == NULL)
		abort();
	if (tokpack_unpack(tp, b, out, len) != (ssize_t)len ||
	    memcmp(out, tok, len) != 0)
		abort();
	if (len > 0 && tokpack_unpack(tp, b, out, len - 1) != -EMSGSIZE)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct piece pc[FUZZ_TOKENS * 3];
	struct tokblob *b[FUZZ_TOKENS * 2];
	char *tok[FUZZ_TOKENS], keybuf[8];
	size_t len[FUZZ_TOKENS], n, np, i;
	const char *key = NULL;
	struct tokpack *tp;
	uint8_t flags;

	if (size < 2)
		return 0;
	if (longlived == NULL && (longlived = tokpack_new()) == NULL)
		abort();
	flags = data[0];
	switch (flags & 3) {
	case 1:
		key = "storage";
		break;
	case 2:
		key = "graph";
		break;
	case 3:
		snprintf(keybuf, sizeof(keybuf), "k%u", data[1]);
		key = keybuf;
		break;
	}
	tp = (flags & 4) ? tokpack_new() : longlived;
	if (tp == NULL)
		abort();
	if (flags & 8) {
		np = split(data + 2, size - 2, pc, FUZZ_TOKENS * 3);
		for (n = 0; n < np / 3; n++)
			tok[n] = build_jwt(&pc[3 * n], &len[n]);
	} else {
		n = split(data + 2, size - 2, pc, FUZZ_TOKENS);
		for (i = 0; i < n; i++) {
			len[i] = pc[i].len;
			tok[i] = malloc(len[i] + 1);
			if (tok[i] == NULL)
				abort();
			memcpy(tok[i], pc[i].p, len[i]);
		}
	}
	for (i = 0; i < n; i++) {
		b[2 * i] = pack(tp, key, tok[i], len[i]);
		b[2 * i + 1] = pack(tp, key, tok[i], len[i]);
	}
	for (i = 0; i < 2 * n; i++)
		check(tp, b[i], tok[i / 2], len[i / 2]);
	for (i = 0; i < 2 * n; i++) /* odd ones first, then even */
		tokpack_blob_free(tp, b[(i * 2 + (i < n ? 1 : 0)) % (2 * n)]);
	for (i = 0; i < n; i++)
		free(tok[i]);
	if (tp != longlived)
		tokpack_free(tp);
	return 0;
}
