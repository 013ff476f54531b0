/*
 * test_tokpack.c - tokpack.c: exact round trips of real-looking JWTs (an
 * RS256 storage token signed with the emulator's key, an Entra v1 Graph
 * token, an ES256 token) and 200 synthetic users made from them; every
 * malformation stored raw (segment count, empty segments, alphabet,
 * padding, non-canonical tail bits, JWE, opaque tokens); 64 KiB and
 * larger tokens; the encoder against sodium_bin2base64 (lengths 0..300,
 * every byte value, in place); header interning and its bound; the
 * dictionary bound; and the packed size of a typical token (printed).
 * The literal tokens were signed for this test only and carry no
 * emulator canary claim. Random bytes are deterministic (fixed seeds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "tokpack.h"
#include "test.h"

#define B64V sodium_base64_VARIANT_URLSAFE_NO_PADDING

static const char tok_storage[] =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImFpeDRvRmhMTFVzRTVq"
    "RnFIaVlkVHl1SmZoSSJ9.eyJhdWQiOiJodHRwczovL3N0b3JhZ2UuYXp1cmUuY29"
    "tIiwiaXNzIjoiaHR0cHM6Ly9sb2dpbi5taWNyb3NvZnRvbmxpbmUuY29tL2JiODU"
    "xYWY1LWIxNWMtNGYwMS04ZjM1LTJlZDcyOGRhMTk1Mi92Mi4wIiwiaWF0IjoxNzk"
    "1OTUwNTQ3LCJuYmYiOjE3OTU5NTA1NDcsImV4cCI6MTc5NTk1NDE0NywiYXpwIjo"
    "iMWI0MWY0NjItM2EzOC00NjQ5LWExZGEtMGJiNjkxYmE5MDcyIiwiYXpwYWNyIjo"
    "iMCIsIm5hbWUiOiJBZGEgTG92ZWxhY2UiLCJvaWQiOiI3YmNmY2Y0MC1mYmEzLTQ"
    "0NGYtYmVkNC05OTI3MzU1OWQ4YzMiLCJwcmVmZXJyZWRfdXNlcm5hbWUiOiJhZGE"
    "ubG92ZWxhY2UwQGNvbnRvc28ub25taWNyb3NvZnQuY29tIiwic2NwIjoidXNlcl9"
    "pbXBlcnNvbmF0aW9uIiwic3ViIjoiX05GTGs3VGQweW5pYloxYmFOMXp2allQR3V"
    "OLXk5a1IzVEdTV3dHajBvUSIsInRpZCI6ImJiODUxYWY1LWIxNWMtNGYwMS04ZjM"
    "1LTJlZDcyOGRhMTk1MiIsInV0aSI6IngtMG13Z2lFYjB0d0xWZExybllEMGciLCJ"
    "2ZXIiOiIyLjAifQ.OeNdz_IRFgR4KRGwe3MXgk0MtrTfVaTBlMdn7lWbAdPZpLRD"
    "QWWJqH5FF6_YO_oc3_yMmVw151ZMfzXovhmveqn2uzR81TqgJeTzA19cJtqbIwLt"
    "AnaEy_L0VDRCQDu2wD4xllSZrzv8TGEdb8kAsOQDIiO0yvp6jUbtuxUnSY1DAhCg"
    "lxlDIYdbJtXTBlMHPzJPqA7zmp4zInphvfujmlVk-f076OHeeJ2FhlVrowdHXdnf"
    "ZiLDOOGSkO1o2svwpTtVEcCqvXK1fYcZ4KuTquE081-cd_sX-Jvln6UXG8MtwfmC"
    "0CNqzQf5bK-EYV9cdcUjS5RtMpmeky09Gd2OpA";
static const char tok_graph[] =
    "eyJ0eXAiOiJKV1QiLCJub25jZSI6InRYQmxxTFk2R20waFlmek1WbUtoblRTeUg4"
    "WlFicWFHYkNjMGRHQ3MzYkUiLCJhbGciOiJSUzI1NiIsIng1dCI6ImFpeDRvRmhM"
    "TFVzRTVqRnFIaVlkVHl1SmZoSSIsImtpZCI6ImFpeDRvRmhMTFVzRTVqRnFIaVlk"
    "VHl1SmZoSSJ9.eyJhdWQiOiIwMDAwMDAwMy0wMDAwLTAwMDAtYzAwMC0wMDAwMDA"
    "wMDAwMDAiLCJpc3MiOiJodHRwczovL3N0cy53aW5kb3dzLm5ldC9iYjg1MWFmNS1"
    "iMTVjLTRmMDEtOGYzNS0yZWQ3MjhkYTE5NTIvIiwiaWF0IjoxNzk1OTUwNTQ3LCJ"
    "uYmYiOjE3OTU5NTA1NDcsImV4cCI6MTc5NTk1NTQyMCwiYWNjdCI6MCwiYWNyIjo"
    "iMSIsImFpbyI6IkFWUUFxLzhZQUFBQW5Dc1lHVldpTEtjYUNqMGNQUzdua1lZZXZ"
    "CUVhvQWRGYXVRd2c1S0ZhaGtNUWFvR0Y5SGdLc3hIWU1aSUNtMEkzVlRfdkZUMDF"
    "1VTB3QzIzIiwiYW1yIjpbInB3ZCIsIm1mYSJdLCJhcHBfZGlzcGxheW5hbWUiOiJ"
    "jcmVkZCIsImFwcGlkIjoiMWI0MWY0NjItM2EzOC00NjQ5LWExZGEtMGJiNjkxYmE"
    "5MDcyIiwiYXBwaWRhY3IiOiIwIiwiZmFtaWx5X25hbWUiOiJUdXJpbmciLCJnaXZ"
    "lbl9uYW1lIjoiQWxhbiIsImlkdHlwIjoidXNlciIsImlwYWRkciI6IjIwMy4wLjE"
    "xMy43IiwibmFtZSI6IkFsYW4gVHVyaW5nIiwib2lkIjoiMmQwYTFhMmYtMzY1Yy0"
    "0MjUzLThmZGUtNDJhN2UxYTRiMjYzIiwicGxhdGYiOiIxNCIsInB1aWQiOiIxMDA"
    "zMjAwMUQyQTdCM0M0IiwicmgiOiIwLkFVRUE5UnFGdTF5eEFVLVBOUzdYS05vWlV"
    "nTUFBQUFBQUFBQXdBQUFBQUFBQUFCQkFPUS4iLCJzY3AiOiJvcGVuaWQgcHJvZml"
    "sZSBVc2VyLlJlYWQgZW1haWwiLCJzaWduaW5fc3RhdGUiOlsia21zaSJdLCJzdWI"
    "iOiJLcVo2MVEyVkxoZVpXcHpuZ2ppSEdrY2FYLWJTSVhKWXYzMnRST3N3MjdNIiw"
    "idGVuYW50X3JlZ2lvbl9zY29wZSI6IkVVIiwidGlkIjoiYmI4NTFhZjUtYjE1Yy0"
    "0ZjAxLThmMzUtMmVkNzI4ZGExOTUyIiwidW5pcXVlX25hbWUiOiJhbGFuLnR1cml"
    "uZ0Bjb250b3NvLm9ubWljcm9zb2Z0LmNvbSIsInVwbiI6ImFsYW4udHVyaW5nQGN"
    "vbnRvc28ub25taWNyb3NvZnQuY29tIiwidXRpIjoiaVNwVldjQmJ4OVNpRFhneXp"
    "0dUFEZyIsInZlciI6IjEuMCIsIndpZHMiOlsiYjc5ZmJmNGQtM2VmOS00Njg5LTg"
    "xNDMtNzZiMTk0ZTg1NTA5Il0sInhtc19zdCI6eyJzdWIiOiIwazkwMjgwemxRM3g"
    "4OUF6MTZkclFIdUE0V2x3aUNBTlQtdXZ0RlVvZm5FIn0sInhtc190Y2R0IjoxNjE"
    "yMzQ1Njc4fQ.hp60po1EBdQwQD2-W3qGhGpmHZLfGdBg7qrtVLja2TPlVTl_ENfL"
    "eViRL8G4c6HEX6tuGdrcZtVH6DgBv-dzYN0RSUiru0Zm_YRUES5n95DH27JysnkR"
    "COYCftUL3-nxWI5TBOH_NT0A7e6PmHino9iUdzfq_iN3Nk_JZn6FWqmLYpp9lBku"
    "VuEMmViIpq1AMa3BcuhwQpC-t7XCZs-8GfowXwJf_w00NbO7Rmi42ubS2yYi_PtG"
    "i9X9WeRHMvZSOIyWGZH81V6jW2bdiODc4jrjvK-Ts2BvbeIsuE1u3FPK87SNPVgJ"
    "vsWcjnt6gud8cgqeW_tA1WodnrP8v-s17Q";
static const char tok_es256[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVzLTEifQ.eyJhdWQiO"
    "iJhcGk6Ly9jcmVkZC10ZXN0IiwiaXNzIjoiaHR0cHM6Ly9pZHAuZXhhbXBsZS5uZ"
    "XQiLCJpYXQiOjE3OTU5NTA1NDcsImV4cCI6MTc5NTk1MTE0Nywic3ViIjoiZ3JhY"
    "2UiLCJzY29wZSI6InJlYWQifQ.U48gsXrlKwl6l8cMujBM9JtIo_OOgR-_4Jeykt"
    "kC2me6t83vS8PsWjLQTSUZO8z_N4858e7ctIE4AYrYojDoVg";

/* Deterministic test bytes: a new seed (a counter) per call. */
static void
rnd(void *p, size_t n)
{
	static unsigned char seed[randombytes_SEEDBYTES];
	static uint64_t ctr;

	ctr++;
	memcpy(seed, &ctr, sizeof(ctr));
	randombytes_buf_deterministic(p, n, seed);
}

/* sodium's base64url of p[0..n) at dst (room for 2n + 4); its length. */
static size_t
b64(char *dst, const void *p, size_t n)
{
	(void)sodium_bin2base64(dst, sodium_base64_ENCODED_LEN(n, B64V), p, n,
	    B64V);
	return strlen(dst);
}

/* "b64(h).b64(p).b64(s)", malloc'd and NUL-terminated. */
static char *
jwt3(const void *h, size_t hl, const void *p, size_t pl, const void *s,
    size_t sl)
{
	char *t, *q;

	t = malloc(2 * (hl + pl + sl) + 16);
	if (t == NULL)
		abort();
	q = t;
	q += b64(q, h, hl);
	*q++ = '.';
	q += b64(q, p, pl);
	*q++ = '.';
	q += b64(q, s, sl);
	return t;
}

/* Decode segment i (0..2) of a well-formed JWT into dst; its length. */
static size_t
seg_decode(unsigned char *dst, size_t dstsz, const char *tok, int i)
{
	const char *p = tok, *e;
	size_t n = 0;

	while (i-- > 0)
		p = strchr(p, '.') + 1;
	e = strchr(p, '.');
	if (e == NULL)
		e = p + strlen(p);
	if (sodium_base642bin(dst, dstsz, p, (size_t)(e - p), NULL, &n, NULL,
		B64V) != 0)
		abort();
	return n;
}

/*
 * Pack, unpack, compare. The blob (the caller frees it), or NULL after
 * saying why on stderr.
 */
static struct tokblob *
rt(struct tokpack *tp, const char *key, const char *tok, size_t len)
{
	struct tokblob *b;
	ssize_t n;
	char *out;

	b = tokpack_pack(tp, key, tok, len);
	if (b == NULL) {
		fprintf(stderr, "pack (len %zu): %s\n", len, strerror(errno));
		return NULL;
	}
	out = malloc(len + 1);
	if (out == NULL)
		abort();
	n = tokpack_unpack(tp, b, out, len);
	if (n != (ssize_t)len || tokpack_len(b) != len ||
	    memcmp(out, tok, len) != 0) {
		fprintf(stderr, "round trip differs (len %zu, got %zd)\n", len,
		    n);
		tokpack_blob_free(tp, b);
		b = NULL;
	}
	free(out);
	return b;
}

/* Round trip and free; 0 or -1. */
static int
rt1(struct tokpack *tp, const char *key, const char *tok, size_t len)
{
	struct tokblob *b = rt(tp, key, tok, len);

	if (b == NULL)
		return -1;
	tokpack_blob_free(tp, b);
	return 0;
}

/* Round trip, and was it stored raw (blob larger than the text)? */
static int
rt_raw(struct tokpack *tp, const char *tok, size_t len)
{
	struct tokblob *b = rt(tp, "storage", tok, len);
	int is_raw;

	if (b == NULL)
		return -1;
	is_raw = tokpack_blob_bytes(b) > len;
	tokpack_blob_free(tp, b);
	if (!is_raw)
		fprintf(stderr, "not raw: %.60s\n", tok);
	return is_raw ? 0 : -1;
}

static void
uuid(char out[37])
{
	unsigned char r[16];

	rnd(r, sizeof(r));
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
	    r[11], r[12], r[13], r[14], r[15]);
}

static const char *const first_names[] = { "Ada", "Grace", "Alan", "Edsger",
	"Barbara", "Donald", "Ken", "Dennis", "Margaret", "Frances" };
static const char *const last_names[] = { "Lovelace", "Hopper", "Turing",
	"Dijkstra", "Liskov", "Knuth", "Thompson", "Ritchie", "Hamilton",
	"Allen" };

/*
 * A storage token for synthetic user i, in the shape of tok_storage
 * (same header; claims rewritten: names, oid, sub, uti, times) with a
 * random 256-byte signature. malloc'd.
 */
static char *
user_token(int i)
{
	unsigned char hdr[256], sig[256], r[32];
	char pay[1024], oid[37], sub[64], uti[32];
	long long iat = 1795950547LL + i;
	size_t hl;

	hl = seg_decode(hdr, sizeof(hdr), tok_storage, 0);
	uuid(oid);
	rnd(r, 32);
	b64(sub, r, 32);
	sub[43] = '\0';
	rnd(r, 16);
	b64(uti, r, 16);
	rnd(sig, sizeof(sig));
	snprintf(pay, sizeof(pay),
	    "{\"aud\":\"https://storage.azure.com\",\"iss\":\"https://login."
	    "microsoftonline.com/bb851af5-b15c-4f01-8f35-2ed728da1952/v2.0\","
	    "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"azp\":\"1b41f462-3a38-"
	    "4649-a1da-0bb691ba9072\",\"azpacr\":\"0\",\"name\":\"%s %s\","
	    "\"oid\":\"%s\",\"preferred_username\":\"%s.%s%d@contoso."
	    "onmicrosoft.com\",\"scp\":\"user_impersonation\",\"sub\":\"%s\","
	    "\"tid\":\"bb851af5-b15c-4f01-8f35-2ed728da1952\",\"uti\":\"%s\","
	    "\"ver\":\"2.0\"}",
	    iat, iat, iat + 3600, first_names[i % 10], last_names[i / 10 % 10],
	    oid, first_names[i % 10], last_names[i / 10 % 10], i, sub, uti);
	/* lower-case the username part, as Entra does */
	for (char *p = strstr(pay, "\"preferred_username\":\""); *p != '@'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return jwt3(hdr, hl, pay, strlen(pay), sig, sizeof(sig));
}

TEST(encoder_matches_sodium)
{
	unsigned char in[512];
	char want[1024], got[1024], buf[1024];
	size_t n, t, rep, k;

	for (n = 0; n <= 300; n++) {
		for (rep = 0; rep < 4; rep++) {
			rnd(in, n);
			t = b64(want, in, n);
			memset(got, '#', sizeof(got));
			ASSERT_EQ(tokpack_b64encode(got, in, n), t);
			ASSERT_TRUE(memcmp(got, want, t) == 0);
			ASSERT_EQ(got[t], '#'); /* nothing past the end */
			/* in place: the input in the tail of the output */
			memcpy(buf + t - n, in, n);
			ASSERT_EQ(tokpack_b64encode(buf,
				      (unsigned char *)buf + t - n, n),
			    t);
			ASSERT_TRUE(memcmp(buf, want, t) == 0);
		}
	}
	/* every byte value at every position mod 3 (all 64 symbols) */
	for (k = 0; k < 3; k++) {
		for (n = 0; n < 256; n++)
			in[k + n] = (unsigned char)n;
		t = b64(want, in, k + 256);
		ASSERT_EQ(tokpack_b64encode(got, in, k + 256), t);
		ASSERT_TRUE(memcmp(got, want, t) == 0);
	}
	/* every 1- and 2-byte input (the tail paths) */
	for (n = 0; n < 65536; n++) {
		in[0] = (unsigned char)(n >> 8);
		in[1] = (unsigned char)n;
		t = b64(want, in, 2);
		ASSERT_EQ(tokpack_b64encode(got, in, 2), t);
		ASSERT_TRUE(memcmp(got, want, t) == 0);
		if (n < 256) {
			t = b64(want, in + 1, 1);
			ASSERT_EQ(tokpack_b64encode(got, in + 1, 1), t);
			ASSERT_TRUE(memcmp(got, want, t) == 0);
		}
	}
}

TEST(roundtrip_literals)
{
	static const struct {
		const char *tok;
		const char *key;
	} lit[] = {
		{ tok_storage, "storage" },
		{ tok_graph, "graph" },
		{ tok_es256, "api" },
		{ tok_storage, NULL },
		{ tok_graph, NULL },
		{ tok_es256, NULL },
	};
	struct tokpack *tp = tokpack_new();
	struct tokblob *b;
	size_t i, len;

	ASSERT_TRUE(tp != NULL);
	for (i = 0; i < sizeof(lit) / sizeof(lit[0]); i++) {
		len = strlen(lit[i].tok);
		b = rt(tp, lit[i].key, lit[i].tok, len);
		ASSERT_TRUE(b != NULL);
		printf("    literal %zu (%s): %zu chars -> %zu bytes\n", i,
		    lit[i].key ? lit[i].key : "no key", len,
		    tokpack_blob_bytes(b));
		ASSERT_TRUE(tokpack_blob_bytes(b) < len);
		tokpack_blob_free(tp, b);
	}
	tokpack_free(tp);
}

/*
 * 200 users' storage tokens under one key, held together: every blob
 * still unpacks after all the others were packed. Also the size check.
 */
TEST(roundtrip_users_and_size)
{
	enum { N = 200 };
	struct tokpack *tp = tokpack_new();
	struct tokblob *b[N];
	char *tok[N], out[2048];
	size_t text = 0, bytes = 0;
	int i;

	ASSERT_TRUE(tp != NULL);
	for (i = 0; i < N; i++) {
		tok[i] = user_token(i);
		b[i] = rt(tp, "storage", tok[i], strlen(tok[i]));
		ASSERT_TRUE(b[i] != NULL);
		text += strlen(tok[i]);
		bytes += tokpack_blob_bytes(b[i]);
	}
	for (i = 0; i < N; i++) {
		ASSERT_EQ(tokpack_unpack(tp, b[i], out, sizeof(out)),
		    strlen(tok[i]));
		ASSERT_TRUE(memcmp(out, tok[i], strlen(tok[i])) == 0);
	}
	printf("    %d users: %zu chars -> %zu bytes a token (%.0f%%)\n", N,
	    text / N, bytes / N, 100.0 * (double)bytes / (double)text);
	ASSERT_TRUE(bytes * 2 < text); /* well under the text */
	for (i = 0; i < N; i++) {
		tokpack_blob_free(tp, b[N - 1 - i]);
		free(tok[i]);
	}
	tokpack_free(tp);
}

/* Claims changed in the decoded JSON of the Graph token, re-encoded. */
TEST(roundtrip_changed_claims)
{
	struct tokpack *tp = tokpack_new();
	unsigned char hdr[512], pay[2048], sig[512];
	size_t hl, pl, sl;
	char oid[37], *p, *t;
	int i;

	ASSERT_TRUE(tp != NULL);
	hl = seg_decode(hdr, sizeof(hdr), tok_graph, 0);
	pl = seg_decode(pay, sizeof(pay) - 1, tok_graph, 1);
	sl = seg_decode(sig, sizeof(sig), tok_graph, 2);
	pay[pl] = '\0';
	p = strstr((char *)pay, "\"oid\":\"");
	ASSERT_TRUE(p != NULL);
	for (i = 0; i < 20; i++) {
		uuid(oid);
		memcpy(p + 7, oid, 36);
		rnd(sig, sl);
		t = jwt3(hdr, hl, pay, pl, sig, sl);
		ASSERT_EQ(rt1(tp, "graph", t, strlen(t)), 0);
		free(t);
	}
	tokpack_free(tp);
}

/* Copy of s with [at, at+dl) replaced by ins (NUL-terminated). */
static char *
splice(const char *s, size_t at, size_t dl, const char *ins, size_t il)
{
	size_t n = strlen(s);
	char *t = malloc(n + il + 1);

	if (t == NULL)
		abort();
	memcpy(t, s, at);
	memcpy(t + at, ins, il);
	memcpy(t + at + il, s + at + dl, n - at - dl + 1);
	return t;
}

static int
rt_raw_free(struct tokpack *tp, char *t, size_t len)
{
	int r = rt_raw(tp, t, len);

	free(t);
	return r;
}

static size_t
b64val(char c)
{
	const char *a =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return (size_t)(strchr(a, c) - a);
}

TEST(malformed_stored_raw)
{
	static const char bad_chars[] = { '+', '/', ' ', '\n', '\0', '=', '!',
		'.', (char)0xff, (char)0x80 };
	const char *alpha =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct tokpack *tp = tokpack_new();
	const char *s = tok_storage;
	size_t len = strlen(s), d1, d2, seg[3][2], i, j, v;
	unsigned char r[300];
	char buf[4096];
	char *t;

	ASSERT_TRUE(tp != NULL);
	d1 = (size_t)(strchr(s, '.') - s);
	d2 = (size_t)(strchr(s + d1 + 1, '.') - s);
	seg[0][0] = 0, seg[0][1] = d1;
	seg[1][0] = d1 + 1, seg[1][1] = d2;
	seg[2][0] = d2 + 1, seg[2][1] = len;

	/* opaque tokens, empty, one byte */
	ASSERT_EQ(rt_raw(tp, "", 0), 0);
	ASSERT_EQ(rt_raw(tp, "x", 1), 0);
	ASSERT_EQ(rt_raw(tp, "opaque-0123456789abcdef", 23), 0);
	rnd(r, sizeof(r));
	ASSERT_EQ(rt_raw(tp, (const char *)r, sizeof(r)), 0);
	b64(buf, r, sizeof(r)); /* base64url, but one segment */
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	/* two and four segments, trailing and leading dots */
	ASSERT_EQ(rt_raw(tp, s, d2), 0);
	snprintf(buf, sizeof(buf), "%s.%s", s, s + d2 + 1);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	snprintf(buf, sizeof(buf), "%s.", s);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	snprintf(buf, sizeof(buf), ".%s", s);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	ASSERT_EQ(rt_raw(tp, "..", 2), 0);
	ASSERT_EQ(rt_raw(tp, "...", 3), 0);
	/* each segment empty */
	for (i = 0; i < 3; i++) {
		t = splice(s, seg[i][0], seg[i][1] - seg[i][0], "", 0);
		ASSERT_EQ(rt_raw_free(tp, t, strlen(t)), 0);
	}
	/* JWE: five segments */
	{
		const char *jh =
		    "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\"}";
		char *q = buf;

		q += b64(q, jh, strlen(jh));
		for (i = 0; i < 4; i++) {
			static const size_t part[] = { 256, 12, 200, 16 };

			*q++ = '.';
			rnd(r, part[i]);
			q += b64(q, r, part[i]);
		}
		ASSERT_EQ(rt_raw(tp, buf, (size_t)(q - buf)), 0);
	}
	/* a character outside base64url in each segment (and Bearer) */
	for (i = 0; i < 3; i++) {
		for (j = 0; j < sizeof(bad_chars); j++) {
			size_t at = (seg[i][0] + seg[i][1]) / 2;

			t = splice(s, at, 1, &bad_chars[j], 1);
			ASSERT_EQ(rt_raw_free(tp, t, len), 0);
		}
	}
	snprintf(buf, sizeof(buf), "Bearer %s", s);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	snprintf(buf, sizeof(buf), "%s\n", s);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	snprintf(buf, sizeof(buf), " %s", s);
	ASSERT_EQ(rt_raw(tp, buf, strlen(buf)), 0);
	/* standard base64 alphabet in place of the URL one */
	memcpy(buf, s, len + 1);
	for (i = 0; i < len; i++)
		buf[i] = buf[i] == '-' ? '+' : buf[i] == '_' ? '/' : buf[i];
	if (memcmp(buf, s, len) != 0)
		ASSERT_EQ(rt_raw(tp, buf, len), 0);
	/*
	 * '=' padding, a length of 1 mod 4, and non-canonical tail bits
	 * (the unused low bits of the last character set), per segment.
	 */
	for (i = 0; i < 3; i++) {
		size_t sl = seg[i][1] - seg[i][0], last = seg[i][1] - 1;

		if (sl % 4 != 0) {
			t = splice(s, seg[i][1], 0, "==", 4 - sl % 4);
			ASSERT_EQ(rt_raw_free(tp, t, len + 4 - sl % 4), 0);
			/* sl % 4 == 2: 4 unused bits; == 3: 2 unused bits */
			v = b64val(s[last]);
			for (j = 1; j < (sl % 4 == 2 ? 16u : 4u); j++) {
				t = splice(s, last, 1, &alpha[v | j], 1);
				ASSERT_EQ(rt_raw_free(tp, t, len), 0);
			}
		}
		/* make the segment 1 mod 4 long by adding 'A's */
		j = (4 + 1 - sl % 4) % 4;
		if (j == 0)
			j = 4;
		t = splice(s, seg[i][1], 0, "AAAA", j);
		if ((sl + j) % 4 == 1)
			ASSERT_EQ(rt_raw_free(tp, t, len + j), 0);
		else
			free(t);
	}
	/* a NUL in the middle of an otherwise fine token */
	memcpy(buf, s, len);
	buf[d1 + 10] = '\0';
	ASSERT_EQ(rt_raw(tp, buf, len), 0);
	tokpack_free(tp);
}

/*
 * Every decoded length of header, payload and signature 1..40 (all the
 * tails), and the canonical tail of each segment: only zero bits fit.
 */
TEST(small_and_tail_lengths)
{
	struct tokpack *tp = tokpack_new();
	unsigned char h[64], p[64], s[64];
	size_t hl, pl;
	char *t;

	ASSERT_TRUE(tp != NULL);
	for (hl = 1; hl <= 40; hl += 3) {
		for (pl = 1; pl <= 40; pl++) {
			rnd(h, hl);
			memset(p, 'a', pl); /* compressible */
			rnd(s, pl);
			t = jwt3(h, hl, p, pl, s, pl);
			ASSERT_EQ(rt1(tp, "small", t, strlen(t)), 0);
			free(t);
			rnd(p, pl); /* not */
			t = jwt3(h, hl, p, pl, s, (pl % 7) + 1);
			ASSERT_EQ(rt1(tp, NULL, t, strlen(t)), 0);
			free(t);
		}
	}
	ASSERT_EQ(rt1(tp, NULL, "AA.AA.AA", 8), 0);
	ASSERT_EQ(rt1(tp, NULL, "AAA.AAA.AAA", 11), 0);
	ASSERT_EQ(rt1(tp, NULL, "AAAA.AAAA.AAAA", 14), 0);
	tokpack_free(tp);
}

/* A random (incompressible) payload: stored decoded, still exact. */
TEST(incompressible_payload)
{
	struct tokpack *tp = tokpack_new();
	unsigned char hdr[128], pay[600], sig[256];
	struct tokblob *b;
	size_t hl;
	char *t;

	ASSERT_TRUE(tp != NULL);
	hl = seg_decode(hdr, sizeof(hdr), tok_storage, 0);
	rnd(pay, sizeof(pay));
	rnd(sig, sizeof(sig));
	t = jwt3(hdr, hl, pay, sizeof(pay), sig, sizeof(sig));
	b = rt(tp, NULL, t, strlen(t));
	ASSERT_TRUE(b != NULL);
	/* decoded, not deflated: more than payload + signature bytes */
	ASSERT_TRUE(tokpack_blob_bytes(b) > sizeof(pay) + sizeof(sig));
	ASSERT_TRUE(tokpack_blob_bytes(b) < strlen(t));
	tokpack_blob_free(tp, b);
	free(t);
	tokpack_free(tp);
}

TEST(big_tokens)
{
	struct tokpack *tp = tokpack_new();
	unsigned char hdr[128], sig[256], *pay;
	size_t hl, pl, len;
	struct tokblob *b;
	char *t, id[37];

	ASSERT_TRUE(tp != NULL);
	/* 64 KiB opaque token */
	t = malloc(65536);
	ASSERT_TRUE(t != NULL);
	rnd(t, 65536);
	ASSERT_EQ(rt_raw(tp, t, 65536), 0);
	free(t);
	/* a JWT of just under 64 KiB: a long groups claim */
	hl = seg_decode(hdr, sizeof(hdr), tok_storage, 0);
	rnd(sig, sizeof(sig));
	pay = malloc(70000);
	ASSERT_TRUE(pay != NULL);
	pl = (size_t)snprintf((char *)pay, 100, "{\"groups\":[");
	while (pl + 40 < 48000) {
		uuid(id);
		pl += (size_t)snprintf((char *)pay + pl, 64, "\"%s\",", id);
	}
	pl += (size_t)snprintf((char *)pay + pl, 64, "\"x\"]}");
	t = jwt3(hdr, hl, pay, pl, sig, sizeof(sig));
	len = strlen(t);
	ASSERT_TRUE(len > 64000 && len <= 65536);
	b = rt(tp, "big", t, len);
	ASSERT_TRUE(b != NULL);
	printf("    %zu-char JWT -> %zu bytes\n", len, tokpack_blob_bytes(b));
	ASSERT_TRUE(tokpack_blob_bytes(b) < len);
	tokpack_blob_free(tp, b);
	free(t);
	/* a payload segment over 65535 characters: raw, still exact */
	while (pl < 60000) {
		uuid(id);
		pl += (size_t)snprintf((char *)pay + pl, 64, ",\"%s\"", id);
	}
	t = jwt3(hdr, hl, pay, pl, sig, sizeof(sig));
	ASSERT_EQ(rt_raw(tp, t, strlen(t)), 0);
	free(t);
	free(pay);
	/* 1 MiB */
	t = malloc(1 << 20);
	ASSERT_TRUE(t != NULL);
	memset(t, 'A', 1 << 20);
	ASSERT_EQ(rt_raw(tp, t, 1 << 20), 0);
	free(t);
	tokpack_free(tp);
}

/* A token with header {"alg":"RS256","kid":"<kid>","typ":"JWT"}. */
static char *
kid_token(const char *kid)
{
	unsigned char pay[2048], sig[256];
	char hdr[128];
	size_t pl;

	snprintf(hdr, sizeof(hdr),
	    "{\"alg\":\"RS256\",\"kid\":\"%s\","
	    "\"typ\":\"JWT\"}",
	    kid);
	pl = seg_decode(pay, sizeof(pay), tok_storage, 1);
	rnd(sig, sizeof(sig));
	return jwt3(hdr, strlen(hdr), pay, pl, sig, sizeof(sig));
}

TEST(header_interning)
{
	struct tokpack *tp = tokpack_new();
	struct tokblob *b1, *b2, *many[TOKPACK_HDR_MAX];
	size_t len = strlen(tok_storage), n1, n2, i;
	char kid[16], *t;

	ASSERT_TRUE(tp != NULL);
	/* two tokens share a header: the second costs less */
	b1 = rt(tp, NULL, tok_storage, len);
	ASSERT_TRUE(b1 != NULL);
	n1 = tokpack_blob_bytes(b1);
	b2 = rt(tp, NULL, tok_storage, len);
	ASSERT_TRUE(b2 != NULL);
	n2 = tokpack_blob_bytes(b2);
	printf("    first %zu bytes, second with the same header %zu\n", n1,
	    n2);
	ASSERT_TRUE(n2 < n1);
	ASSERT_EQ(tokpack_blob_bytes(b1), n2); /* shared evenly now */
	tokpack_blob_free(tp, b2);
	ASSERT_EQ(tokpack_blob_bytes(b1), n1);
	tokpack_blob_free(tp, b1);

	/* fill the table with distinct headers */
	for (i = 0; i < TOKPACK_HDR_MAX; i++) {
		snprintf(kid, sizeof(kid), "kid-%02zu", i);
		t = kid_token(kid);
		many[i] = rt(tp, NULL, t, strlen(t));
		free(t);
		ASSERT_TRUE(many[i] != NULL);
	}
	/* a new header now goes inline: no sharing, equal sizes */
	t = kid_token("kid-new");
	b1 = rt(tp, NULL, t, strlen(t));
	b2 = rt(tp, NULL, t, strlen(t));
	ASSERT_TRUE(b1 != NULL && b2 != NULL);
	ASSERT_EQ(tokpack_blob_bytes(b1), tokpack_blob_bytes(b2));
	tokpack_blob_free(tp, b1);
	tokpack_blob_free(tp, b2);
	/* the last user of a header frees its slot: interned again */
	tokpack_blob_free(tp, many[7]);
	many[7] = NULL;
	b1 = rt(tp, NULL, t, strlen(t));
	ASSERT_TRUE(b1 != NULL);
	n1 = tokpack_blob_bytes(b1);
	b2 = rt(tp, NULL, t, strlen(t));
	ASSERT_TRUE(b2 != NULL);
	ASSERT_TRUE(tokpack_blob_bytes(b2) < n1);
	tokpack_blob_free(tp, b1);
	tokpack_blob_free(tp, b2);
	free(t);
	/* earlier blobs are untouched by all this */
	for (i = 0; i < TOKPACK_HDR_MAX; i++) {
		char out[2048];

		if (many[i] == NULL)
			continue;
		ASSERT_TRUE(tokpack_unpack(tp, many[i], out, sizeof(out)) > 0);
		tokpack_blob_free(tp, many[i]);
	}
	tokpack_free(tp);
}

TEST(dictionary_bound)
{
	enum { NKEYS = TOKPACK_DICT_MAX + 6 };
	struct tokpack *tp = tokpack_new();
	struct tokblob *b[NKEYS], *again;
	size_t with_dict, without;
	char key[32], *t[NKEYS];
	int i;

	ASSERT_TRUE(tp != NULL);
	for (i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "scope-%d", i);
		t[i] = user_token(1000 + i);
		b[i] = rt(tp, key, t[i], strlen(t[i]));
		ASSERT_TRUE(b[i] != NULL);
	}
	/* the first token under a key is its own dictionary: tiny payload */
	with_dict = tokpack_blob_bytes(b[0]);
	without = tokpack_blob_bytes(b[NKEYS - 1]);
	printf("    own dictionary %zu bytes, past the bound %zu\n", with_dict,
	    without);
	ASSERT_TRUE(with_dict + 100 < without);
	/* a second token under an old key compresses against the first */
	again = rt(tp, "scope-3", t[5], strlen(t[5]));
	ASSERT_TRUE(again != NULL);
	ASSERT_TRUE(tokpack_blob_bytes(again) < without);
	tokpack_blob_free(tp, again);
	for (i = 0; i < NKEYS; i++) {
		char out[2048];

		ASSERT_EQ(tokpack_unpack(tp, b[i], out, sizeof(out)),
		    strlen(t[i]));
		ASSERT_TRUE(memcmp(out, t[i], strlen(t[i])) == 0);
		tokpack_blob_free(tp, b[i]);
		free(t[i]);
	}
	tokpack_free(tp);
}

TEST(errors)
{
	struct tokpack *tp = tokpack_new();
	size_t len = strlen(tok_storage);
	struct tokblob *b, *r;
	char out[2048];

	ASSERT_TRUE(tp != NULL);
	errno = 0;
	ASSERT_TRUE(tokpack_pack(NULL, NULL, "x", 1) == NULL);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_TRUE(tokpack_pack(tp, NULL, NULL, 1) == NULL);
	ASSERT_EQ(errno, EINVAL);
	b = tokpack_pack(tp, "storage", tok_storage, len);
	r = tokpack_pack(tp, "storage", "opaque", 6);
	ASSERT_TRUE(b != NULL && r != NULL);
	ASSERT_ERR(tokpack_unpack(tp, b, out, len - 1), -EMSGSIZE);
	ASSERT_ERR(tokpack_unpack(tp, r, out, 5), -EMSGSIZE);
	ASSERT_EQ(tokpack_unpack(tp, b, out, len), len); /* exact fit */
	ASSERT_ERR(tokpack_unpack(NULL, b, out, len), -EINVAL);
	ASSERT_EQ(tokpack_len(NULL), 0);
	ASSERT_EQ(tokpack_blob_bytes(NULL), 0);
	tokpack_blob_free(tp, NULL);
	tokpack_blob_free(tp, b);
	tokpack_blob_free(tp, r);
	tokpack_free(tp);
	tokpack_free(NULL);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(encoder_matches_sodium);
	RUN(roundtrip_literals);
	RUN(roundtrip_users_and_size);
	RUN(roundtrip_changed_claims);
	RUN(malformed_stored_raw);
	RUN(small_and_tail_lengths);
	RUN(incompressible_payload);
	RUN(big_tokens);
	RUN(header_interning);
	RUN(dictionary_bound);
	RUN(errors);
	TEST_MAIN_END();
}
