/*
 * tokpack.c - compact in-memory tokens behind tokpack.h.
 *
 * A JWT is split at its two dots; each segment must be non-empty
 * canonical base64url without padding (checked here, then decoded by
 * libsodium) and at most UINT16_MAX characters. Then:
 * - the header text is interned: up to TOKPACK_HDR_MAX distinct headers,
 *   refcounted, a slot freed when its last blob goes (so rotated keys do
 *   not fill the table). With the table full the decoded header goes
 *   into the blob. The table keeps the header as text rather than
 *   decoded: it is not secret, costs ~30 bytes more per distinct header,
 *   and unpack then copies it instead of encoding it.
 * - the decoded payload is raw-deflated (level 9) against the
 *   dictionary of dict_key: the first decoded payload packed under that
 *   key, kept until tokpack_free. Past TOKPACK_DICT_MAX keys there is no
 *   dictionary. When deflate does not make it smaller it is stored as
 *   decoded.
 * - the decoded signature is stored as is.
 * Everything else is stored raw. After packing a JWT, pack unpacks it
 * and compares with the input; any difference stores the token raw.
 *
 * Unpack inflates the payload into the tail of its span of the caller's
 * buffer and widens it to base64url in place, so the token exists only
 * in the blob and in the caller's buffer. The base64url encoder is
 * constant time in the data (branch-free SWAR arithmetic, no table);
 * inflate is not, but it only sees the payload (claims, no credential).
 *
 * Limits: one deflate and one inflate stream are reused by every call,
 * so a struct tokpack is single-threaded (one per event loop). The
 * deflate state costs ~260 KiB, inflate ~40 KiB, the dictionaries up to
 * TOKPACK_DICT_MAX payloads. Header and dictionary lookups are linear
 * (at most 64 entries each) and only happen at pack time. The streams'
 * windows keep recent payload bytes (claims) until tokpack_free, which
 * wipes them through our zlib allocator.
 *
 * Blobs are secret memory (secret_mem_alloc): with credd's allocator
 * installed they live in the locked arena (secmem.h).
 *
 * Must never: return bytes other than those packed, free a blob or a
 * dictionary without wiping it, or log.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#define ZLIB_CONST
#include <zlib.h>

#include "entra/secret.h"
#include "tokpack.h"

#define TP_RAW 0x01	 /* data is the token as given */
#define TP_DEFLATED 0x02 /* payload is raw deflate, else decoded bytes */
#define TP_NODICT 0xff
#define TP_ZLEVEL 9

/* An interned header, as base64url text. */
struct tp_hdr {
	uint32_t refs;
	uint16_t len;
	uint8_t slot; /* index in tokpack.hdr */
	char text[];
};

struct tp_dict {
	char *key;
	unsigned char *data; /* a decoded payload */
	size_t len;
};

struct tokpack {
	z_stream def;
	z_stream inf;
	int def_ok;
	int inf_ok;
	struct tp_hdr *hdr[TOKPACK_HDR_MAX]; /* NULL: free slot */
	struct tp_dict dict[TOKPACK_DICT_MAX];
	unsigned ndict;
};

/*
 * JWT: data = inline header (hlen) | payload (plen) | signature (slen).
 * Raw: data = the token (len).
 */
struct tokblob {
	struct tp_hdr *hdr; /* interned header, or NULL (inline) */
	uint32_t len;	    /* token length */
	uint16_t hlen;	    /* inline decoded header bytes */
	uint16_t plen;	    /* payload bytes stored */
	uint16_t praw;	    /* payload bytes decoded */
	uint16_t slen;	    /* signature bytes */
	uint8_t flags;	    /* TP_* */
	uint8_t dict;	    /* tokpack.dict index or TP_NODICT */
	unsigned char data[];
};

struct jwt_seg {
	const char *p;
	size_t len;
};

/* base64url length of n bytes, no padding. */
static size_t
b64len(size_t n)
{
	return n / 3 * 4 + (n % 3 != 0 ? n % 3 + 1 : 0);
}

/*
 * 48 bits (first byte highest) -> eight 6-bit values, one per byte lane,
 * the first in the lowest lane: halve the fields three times (24, 12,
 * 6 bits), each step moving the first half down and the second up.
 */
static inline uint64_t
b64_spread(uint64_t u)
{
	const uint64_t m12 = UINT64_C(0x00000fff00000fff);
	const uint64_t m6 = UINT64_C(0x003f003f003f003f);
	uint64_t x;

	x = (u >> 24 & 0xffffff) | (u & 0xffffff) << 32;
	x = (x >> 12 & m12) | (x & m12) << 16;
	return (x >> 6 & m6) | (x & m6) << 8;
}

/*
 * Each byte lane of x holds 0..63; map it to A-Z a-z 0-9 - _ as
 * v + 'A' plus an offset per range. (lane + 128 - k) >> 7 is 1 exactly
 * when lane >= k and never carries into the next lane (lane <= 63), so
 * the ranges are chosen by arithmetic alone. The result is a linear
 * combination whose every lane ends in 45..122, so the order of the
 * additions cannot borrow across lanes.
 */
static inline uint64_t
b64_map(uint64_t x)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	uint64_t ge26 = ((x + ones * (128 - 26)) >> 7) & ones;
	uint64_t ge52 = ((x + ones * (128 - 52)) >> 7) & ones;
	uint64_t ge62 = ((x + ones * (128 - 62)) >> 7) & ones;
	uint64_t ge63 = ((x + ones * (128 - 63)) >> 7) & ones;

	/* 'a' = 'A'+26+6, '0' = 'z'+1-75, '-' = '9'+1-13, '_' = '-'+1+49 */
	return x + ones * 'A' + ge26 * 6 - ge52 * 75 - ge62 * 13 + ge63 * 49;
}

/* The first n (<= 8) lanes of v to d, lane 0 first. */
static inline void
store_lanes(char *d, uint64_t v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
	memcpy(d, (const char *)&v + 8 - n, n);
#else
	memcpy(d, &v, n);
#endif
}

/* 8 bytes as a big-endian number. */
static inline uint64_t
load64_be(const unsigned char *s)
{
	uint64_t v;

	memcpy(&v, s, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

size_t
tokpack_b64encode(char *dst, const unsigned char *src, size_t n)
{
	char *d = dst;
	size_t i = 0, rem;
	uint64_t u;

	/*
	 * 6 bytes -> 8 characters a step (reading 8, so while 8 are left),
	 * then 3 -> 4, then the 1 or 2 left. Every step reads its input
	 * before it writes, and output never overtakes unread input when src
	 * is the tail of dst: after i bytes 4i/3 characters are out, and the
	 * input starts ceil(n/3) characters further on.
	 */
	for (; n - i >= 8; i += 6, d += 8) {
		u = load64_be(src + i) >> 16; /* the first 6 bytes */
		store_lanes(d, b64_map(b64_spread(u)), 8);
	}
	for (; n - i >= 3; i += 3, d += 4) {
		u = (uint64_t)src[i] << 40 | (uint64_t)src[i + 1] << 32 |
		    (uint64_t)src[i + 2] << 24;
		store_lanes(d, b64_map(b64_spread(u)), 4);
	}
	rem = n - i; /* the branches below depend on the length only */
	if (rem > 0) {
		u = (uint64_t)src[i] << 40;
		if (rem == 2)
			u |= (uint64_t)src[i + 1] << 32;
		store_lanes(d, b64_map(b64_spread(u)), rem + 1);
		d += rem + 1;
	}
	return (size_t)(d - dst);
}

/* zlib allocations are wiped on free: the windows hold payload bytes. */
static voidpf
tp_zalloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return calloc(items, size);
}

static void
tp_zfree(voidpf opaque, voidpf p)
{
	(void)opaque;
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

struct tokpack *
tokpack_new(void)
{
	static const Bytef one[1];
	struct tokpack *tp;

	tp = calloc(1, sizeof(*tp));
	if (tp == NULL)
		return NULL;
	tp->def.zalloc = tp->inf.zalloc = tp_zalloc;
	tp->def.zfree = tp->inf.zfree = tp_zfree;
	if (deflateInit2(&tp->def, TP_ZLEVEL, Z_DEFLATED, -15, 8,
		Z_DEFAULT_STRATEGY) != Z_OK)
		goto fail;
	tp->def_ok = 1;
	if (inflateInit2(&tp->inf, -15) != Z_OK)
		goto fail;
	tp->inf_ok = 1;
	/* Allocate the inflate window now, so that unpack never allocates. */
	if (inflateSetDictionary(&tp->inf, one, sizeof(one)) != Z_OK ||
	    inflateReset(&tp->inf) != Z_OK)
		goto fail;
	return tp;
fail:
	tokpack_free(tp);
	errno = ENOMEM;
	return NULL;
}

void
tokpack_free(struct tokpack *tp)
{
	unsigned i;

	if (tp == NULL)
		return;
	/* Only left when the caller broke the contract; do not leak them. */
	for (i = 0; i < TOKPACK_HDR_MAX; i++)
		free(tp->hdr[i]);
	for (i = 0; i < tp->ndict; i++) {
		sodium_memzero(tp->dict[i].data, tp->dict[i].len);
		free(tp->dict[i].data);
		free(tp->dict[i].key);
	}
	if (tp->def_ok)
		(void)deflateEnd(&tp->def);
	if (tp->inf_ok)
		(void)inflateEnd(&tp->inf);
	free(tp);
}

/* The interned header for text (a new reference), or NULL: table full. */
static struct tp_hdr *
hdr_get(struct tokpack *tp, const char *text, size_t len)
{
	struct tp_hdr *h;
	int slot = -1;
	unsigned i;

	for (i = 0; i < TOKPACK_HDR_MAX; i++) {
		h = tp->hdr[i];
		if (h == NULL) {
			if (slot < 0)
				slot = (int)i;
		} else if (h->len == len && memcmp(h->text, text, len) == 0) {
			h->refs++;
			return h;
		}
	}
	if (slot < 0 || len > UINT16_MAX)
		return NULL;
	h = malloc(sizeof(*h) + len);
	if (h == NULL)
		return NULL; /* the header goes inline */
	h->refs = 1;
	h->len = (uint16_t)len;
	h->slot = (uint8_t)slot;
	memcpy(h->text, text, len);
	tp->hdr[slot] = h;
	return h;
}

static void
hdr_put(struct tokpack *tp, struct tp_hdr *h)
{
	if (h == NULL || --h->refs > 0)
		return;
	tp->hdr[h->slot] = NULL;
	free(h);
}

/*
 * The dictionary index for key, made from payload when key is new and
 * there is room; TP_NODICT without a key, with a full table or on ENOMEM.
 */
static uint8_t
dict_get(struct tokpack *tp, const char *key, const unsigned char *payload,
    size_t len)
{
	struct tp_dict *d;
	unsigned i;

	if (key == NULL)
		return TP_NODICT;
	for (i = 0; i < tp->ndict; i++)
		if (strcmp(tp->dict[i].key, key) == 0)
			return (uint8_t)i;
	if (tp->ndict == TOKPACK_DICT_MAX)
		return TP_NODICT;
	d = &tp->dict[tp->ndict];
	d->key = strdup(key);
	d->data = malloc(len);
	if (d->key == NULL || d->data == NULL) {
		free(d->key);
		free(d->data);
		memset(d, 0, sizeof(*d));
		return TP_NODICT;
	}
	memcpy(d->data, payload, len);
	d->len = len;
	return (uint8_t)tp->ndict++;
}

/*
 * Raw-deflate in[0..n) into out, which has room for n - 1 bytes: the
 * compressed length, or 0 when it is not smaller (or zlib fails).
 */
static size_t
payload_deflate(struct tokpack *tp, uint8_t dict, const unsigned char *in,
    size_t n, unsigned char *out)
{
	z_stream *z = &tp->def;

	if (n < 2 || deflateReset(z) != Z_OK)
		return 0;
	if (dict != TP_NODICT &&
	    deflateSetDictionary(z, tp->dict[dict].data,
		(uInt)tp->dict[dict].len) != Z_OK)
		return 0;
	z->next_in = in;
	z->avail_in = (uInt)n;
	z->next_out = out;
	z->avail_out = (uInt)(n - 1);
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		return 0;
	return n - 1 - z->avail_out;
}

/* Inflate b's payload into dst (b->praw bytes): 0, or -1 if corrupt. */
static int
payload_inflate(struct tokpack *tp, const struct tokblob *b, unsigned char *dst)
{
	z_stream *z = &tp->inf;
	int r;

	if (inflateReset(z) != Z_OK)
		return -1;
	if (b->dict != TP_NODICT) {
		if (b->dict >= tp->ndict ||
		    inflateSetDictionary(z, tp->dict[b->dict].data,
			(uInt)tp->dict[b->dict].len) != Z_OK)
			return -1;
	}
	z->next_in = b->data + b->hlen;
	z->avail_in = b->plen;
	z->next_out = dst;
	z->avail_out = b->praw;
	r = inflate(z, Z_FINISH);
	if (r != Z_STREAM_END || z->avail_out != 0 || z->avail_in != 0)
		return -1;
	return 0;
}

/* Exactly three non-empty segments of at most UINT16_MAX bytes? */
static int
jwt_split(const char *tok, size_t len, struct jwt_seg seg[3])
{
	const char *p = tok, *end = tok + len, *dot;
	int i;

	for (i = 0; i < 3; i++) {
		dot = memchr(p, '.', (size_t)(end - p));
		if ((dot == NULL) != (i == 2))
			return -1;
		if (dot == NULL)
			dot = end;
		seg[i].p = p;
		seg[i].len = (size_t)(dot - p);
		if (seg[i].len == 0 || seg[i].len > UINT16_MAX)
			return -1;
		p = dot + 1;
	}
	return 0;
}

/*
 * The 6-bit value of base64url character c; *bad gets 1 if c is not one.
 * Comparisons only (no table, no early exit): segments hold the signature.
 */
static unsigned
b64_value(unsigned char c, unsigned *bad)
{
	unsigned up = (unsigned)(c - 'A') < 26, lo = (unsigned)(c - 'a') < 26;
	unsigned dig = (unsigned)(c - '0') < 10, dash = c == '-', us = c == '_';

	*bad |= (up | lo | dig | dash | us) ^ 1;
	return up * (unsigned)(c - 'A') + lo * (unsigned)(c - 'a' + 26) +
	    dig * (unsigned)(c - '0' + 52) + dash * 62 + us * 63;
}

/*
 * Canonical base64url without padding? Only the alphabet, a length that
 * is not 1 mod 4, and zero bits below the last character's data bits,
 * so that encoding the decoded bytes gives s back. Checked here rather
 * than left to libsodium, which (1.0.18) decodes some bytes >= 0x80.
 */
static int
b64_canonical(const struct jwt_seg *s)
{
	static const unsigned unused[4] = { 0, 0, 15, 3 };
	unsigned bad = 0, v = 0;
	size_t i;

	if (s->len % 4 == 1)
		return 0;
	for (i = 0; i < s->len; i++)
		v = b64_value((unsigned char)s->p[i], &bad);
	return bad == 0 && (v & unused[s->len % 4]) == 0;
}

static int
b64_decode(unsigned char *dst, size_t dstsz, const struct jwt_seg *s,
    size_t *outlen)
{
	if (!b64_canonical(s))
		return -1;
	return sodium_base642bin(dst, dstsz, s->p, s->len, NULL, outlen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/*
 * Build the blob of a JWT whose segments are decoded in dec[]. Takes the
 * header reference h (NULL: header inline). NULL on ENOMEM.
 */
static struct tokblob *
jwt_blob(struct tokpack *tp, struct tp_hdr *h, uint8_t dict,
    unsigned char *const dec[3], const size_t dl[3], unsigned char *comp,
    size_t len)
{
	struct tokblob *b;
	size_t hlen = h != NULL ? 0 : dl[0], plen;

	plen = payload_deflate(tp, dict, dec[1], dl[1], comp);
	b = secret_mem_alloc(
	    sizeof(*b) + hlen + (plen > 0 ? plen : dl[1]) + dl[2]);
	if (b == NULL) {
		hdr_put(tp, h);
		return NULL;
	}
	b->hdr = h; /* transferred */
	b->len = (uint32_t)len;
	b->hlen = (uint16_t)hlen;
	b->praw = (uint16_t)dl[1];
	b->slen = (uint16_t)dl[2];
	b->flags = plen > 0 ? TP_DEFLATED : 0;
	b->dict = plen > 0 ? dict : TP_NODICT;
	memcpy(b->data, dec[0], hlen);
	if (plen > 0)
		memcpy(b->data + hlen, comp, plen);
	else {
		plen = dl[1];
		memcpy(b->data + hlen, dec[1], plen);
	}
	b->plen = (uint16_t)plen;
	memcpy(b->data + hlen + plen, dec[2], dl[2]);
	return b;
}

/*
 * Pack tok as a JWT and check that it unpacks to tok. NULL when it is
 * not one, on ENOMEM, or on any difference (the caller stores it raw).
 */
static struct tokblob *
pack_jwt(struct tokpack *tp, const char *key, const char *tok, size_t len)
{
	struct jwt_seg seg[3];
	unsigned char *work, *dec[3], *comp, *check;
	struct tokblob *b = NULL;
	size_t cap[3], dl[3], total = 0;
	struct tp_hdr *h;
	ssize_t n;
	int i;

	if (len == 0 || len > UINT32_MAX || jwt_split(tok, len, seg) < 0)
		return NULL;
	for (i = 0; i < 3; i++) {
		cap[i] = seg[i].len / 4 * 3 + 3;
		total += cap[i];
	}
	total += cap[1] + len; /* deflate output, the unpack check */
	work = malloc(total);
	if (work == NULL)
		return NULL;
	dec[0] = work;
	dec[1] = dec[0] + cap[0];
	dec[2] = dec[1] + cap[1];
	comp = dec[2] + cap[2];
	check = comp + cap[1];
	for (i = 0; i < 3; i++)
		if (b64_decode(dec[i], cap[i], &seg[i], &dl[i]) != 0 ||
		    dl[i] == 0)
			goto out;
	h = hdr_get(tp, seg[0].p, seg[0].len);
	b = jwt_blob(tp, h, dict_get(tp, key, dec[1], dl[1]), dec, dl, comp,
	    len);
	if (b == NULL)
		goto out;
	n = tokpack_unpack(tp, b, (char *)check, len);
	if (n < 0 || (size_t)n != len || sodium_memcmp(check, tok, len) != 0) {
		tokpack_blob_free(tp, b);
		b = NULL;
	}
out:
	sodium_memzero(work, total);
	free(work);
	return b;
}

static struct tokblob *
pack_raw(const char *tok, size_t len)
{
	struct tokblob *b;

	if (len > UINT32_MAX || len > (size_t)SSIZE_MAX - sizeof(*b)) {
		errno = EMSGSIZE;
		return NULL;
	}
	b = secret_mem_alloc(sizeof(*b) + len);
	if (b == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(b, 0, sizeof(*b));
	b->len = (uint32_t)len;
	b->flags = TP_RAW;
	b->dict = TP_NODICT;
	if (len > 0)
		memcpy(b->data, tok, len);
	return b;
}

struct tokblob *
tokpack_pack(struct tokpack *tp, const char *dict_key, const char *tok,
    size_t len)
{
	struct tokblob *b;

	if (tp == NULL || (tok == NULL && len > 0)) {
		errno = EINVAL;
		return NULL;
	}
	b = pack_jwt(tp, dict_key, tok, len);
	if (b != NULL)
		return b;
	return pack_raw(tok, len);
}

size_t
tokpack_len(const struct tokblob *b)
{
	return b != NULL ? b->len : 0;
}

/* The JWT of b into out (b->len bytes): 0, or -1 if b is corrupt. */
static int
unpack_jwt(struct tokpack *tp, const struct tokblob *b, char *out)
{
	size_t ht, pt, st;
	char *p = out;

	ht = b->hdr != NULL ? b->hdr->len : b64len(b->hlen);
	pt = b64len(b->praw);
	st = b64len(b->slen);
	if (ht + pt + st + 2 != b->len ||
	    (!(b->flags & TP_DEFLATED) && b->plen != b->praw))
		return -1;
	if (b->hdr != NULL)
		memcpy(p, b->hdr->text, ht);
	else
		(void)tokpack_b64encode(p, b->data, b->hlen);
	p += ht;
	*p++ = '.';
	if (b->flags & TP_DEFLATED) {
		/* Inflate into the tail of the payload's span; widen it. */
		unsigned char *tail = (unsigned char *)p + pt - b->praw;

		if (payload_inflate(tp, b, tail) < 0)
			return -1;
		(void)tokpack_b64encode(p, tail, b->praw);
	} else
		(void)tokpack_b64encode(p, b->data + b->hlen, b->praw);
	p += pt;
	*p++ = '.';
	(void)tokpack_b64encode(p, b->data + b->hlen + b->plen, b->slen);
	return 0;
}

ssize_t
tokpack_unpack(struct tokpack *tp, const struct tokblob *b, char *out,
    size_t outsz)
{
	if (tp == NULL || b == NULL || (out == NULL && outsz > 0))
		return -EINVAL;
	if (outsz < b->len)
		return -EMSGSIZE;
	if (b->flags & TP_RAW) {
		if (b->len > 0)
			memcpy(out, b->data, b->len);
		return (ssize_t)b->len;
	}
	if (unpack_jwt(tp, b, out) < 0) {
		sodium_memzero(out, b->len);
		return -EBADMSG;
	}
	return (ssize_t)b->len;
}

static size_t
blob_size(const struct tokblob *b)
{
	if (b->flags & TP_RAW)
		return sizeof(*b) + b->len;
	return sizeof(*b) + b->hlen + b->plen + b->slen;
}

size_t
tokpack_blob_bytes(const struct tokblob *b)
{
	size_t n, hb;

	if (b == NULL)
		return 0;
	n = blob_size(b);
	if (b->hdr != NULL) {
		hb = sizeof(*b->hdr) + b->hdr->len;
		n += (hb + b->hdr->refs - 1) / b->hdr->refs;
	}
	return n;
}

void
tokpack_blob_free(struct tokpack *tp, struct tokblob *b)
{
	if (b == NULL)
		return;
	if (tp != NULL)
		hdr_put(tp, b->hdr);
	secret_mem_free(b, blob_size(b)); /* wiped, then freed */
}
