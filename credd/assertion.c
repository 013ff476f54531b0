/*
 * assertion.c - the client certificate and its key, and the signed JWT
 * client assertion (RFC 7523, Entra's "certificate credentials") made
 * from them for each confidential-client request, with OpenSSL.
 *
 * Key material: the file's bytes are read into a buffer that is wiped
 * as soon as OpenSSL has parsed them (PEM and PKCS#12 alike). The
 * EVP_PKEY then lives in OpenSSL's heap: EVP_PKEY_free() clears the RSA
 * private numbers (BN_clear_free) but the memory is neither locked nor
 * guarded unless the process set up OpenSSL's secure heap
 * (CRYPTO_secure_malloc_init) before loading, which is main.c's call to
 * make; credd is never dumpable and has RLIMIT_CORE 0. The signing
 * input and the assertion are wiped after use; OpenSSL's error queue is
 * cleared, never printed (its strings can name file contents' offsets).
 *
 * Must never: log, put key bytes or an assertion into an error, hand
 * out a key that does not match its certificate, or reuse a jti.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "assertion.h"
#include "assertion_int.h"

#define ASSERTION_RSA_MIN_BITS 2048
#define B64_SHA256 44 /* 43 characters and the NUL */
#define B64_SHA1 28

struct assertion_key {
	EVP_PKEY *pkey;
	char x5t_s256[B64_SHA256];
	char x5t[B64_SHA1];
};

/* base64url without padding of n bytes into dst (dstsz >= encoded + 1). */
static int
b64url(char *dst, size_t dstsz, const void *p, size_t n)
{
	if (dstsz < sodium_base64_ENCODED_LEN(n,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return -ENAMETOOLONG;
	(void)sodium_bin2base64(dst, dstsz, p, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

static int
thumbprints(struct assertion_key *k, X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int r;

	if (X509_digest(cert, EVP_sha256(), md, &n) != 1)
		return -EIO;
	r = b64url(k->x5t_s256, sizeof(k->x5t_s256), md, n);
	if (r < 0)
		return r;
	if (X509_digest(cert, EVP_sha1(), md, &n) != 1)
		return -EIO;
	return b64url(k->x5t, sizeof(k->x5t), md, n);
}

/* The first certificate and the first private key of a PEM text. */
static int
parse_pem(const char *buf, size_t len, X509 **cert, EVP_PKEY **pkey)
{
	static char empty[] = "";
	BIO *bio;

	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL)
		return -ENOMEM;
	*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (*cert == NULL)
		return -EBADMSG;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL)
		return -ENOMEM;
	/* The empty passphrase: an encrypted key fails instead of prompting. */
	*pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, empty);
	BIO_free(bio);
	return *pkey != NULL ? 0 : -EBADMSG;
}

/* PKCS#12 without a password (or with the empty one). */
static int
parse_p12(const char *buf, size_t len, X509 **cert, EVP_PKEY **pkey)
{
	const unsigned char *p = (const unsigned char *)buf;
	PKCS12 *p12;
	int ok;

	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12 == NULL)
		return -EBADMSG;
	ok = PKCS12_parse(p12, "", pkey, cert, NULL);
	if (ok != 1)
		ok = PKCS12_parse(p12, NULL, pkey, cert, NULL);
	PKCS12_free(p12);
	if (ok != 1 || *cert == NULL || *pkey == NULL) {
		EVP_PKEY_free(*pkey);
		X509_free(*cert);
		*pkey = NULL;
		*cert = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* RSA, >= 2048 bits, the certificate's own key. */
static const char *
check_pair(X509 *cert, EVP_PKEY *pkey)
{
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
		return "the key is not an RSA key (Entra signs assertions "
		       "with RSA only)";
	if (EVP_PKEY_get_bits(pkey) < ASSERTION_RSA_MIN_BITS)
		return "the RSA key is shorter than 2048 bits";
	if (X509_check_private_key(cert, pkey) != 1)
		return "the private key does not match the certificate";
	return NULL;
}

static int
load_pair(const char *path, const char *buf, size_t len, X509 **cert,
    EVP_PKEY **pkey, char *err, size_t errsz)
{
	const char *why;
	int r;

	if (memmem(buf, len, "-----BEGIN ", 11) != NULL)
		r = parse_pem(buf, len, cert, pkey);
	else
		r = parse_p12(buf, len, cert, pkey);
	if (r == -EBADMSG) {
		assertion_err(err, errsz, path,
		    "no certificate and unencrypted private key found (PEM "
		    "certificate + key, or PKCS#12 without a password; "
		    "truncated?)");
		return r;
	}
	if (r < 0) {
		assertion_err(err, errsz, path, "out of memory");
		return r;
	}
	why = check_pair(*cert, *pkey);
	if (why != NULL) {
		assertion_err(err, errsz, path, why);
		return -EKEYREJECTED;
	}
	return 0;
}

int
assertion_key_load(const char *path, struct assertion_key **out, char *err,
    size_t errsz)
{
	struct assertion_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (path == NULL)
		return -EINVAL;
	r = assertion_read_private(path, ASSERTION_CERT_FILE_MAX, &buf, &len,
	    err, errsz);
	if (r < 0)
		return r;
	r = load_pair(path, buf, len, &cert, &pkey, err, errsz);
	if (r < 0)
		goto out;
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = thumbprints(k, cert);
	if (r < 0) {
		assertion_err(err, errsz, path, "cannot hash the certificate");
		goto out;
	}
	k->pkey = pkey;
	pkey = NULL; /* transferred */
	*out = k;
	k = NULL;
out:
	ERR_clear_error();
	secret_wipe(buf, len + 1);
	free(buf);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	assertion_key_free(k);
	return r;
}

void
assertion_key_free(struct assertion_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int
assertion_key_thumbprint(const struct assertion_key *k, int is_sha256,
    char *dst, size_t dstsz)
{
	const char *s = is_sha256 ? k->x5t_s256 : k->x5t;

	if (strlen(s) >= dstsz)
		return -ENAMETOOLONG;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* A random (version 4) UUID: 122 bits from OpenSSL's CSPRNG. */
static int
new_jti(char dst[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	(void)snprintf(dst, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* base64url(JSON text of obj) appended to dst at *pos; obj is released. */
static int
put_json_b64(json_t *obj, char *dst, size_t dstsz, size_t *pos)
{
	char *text;
	size_t n;
	int r;

	if (obj == NULL)
		return -ENOMEM;
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (text == NULL)
		return -ENOMEM;
	n = strlen(text);
	r = b64url(dst + *pos, dstsz - *pos, text, n);
	secret_wipe(text, n);
	free(text);
	if (r < 0)
		return r;
	*pos += strlen(dst + *pos);
	return 0;
}

/* Sign dst[0..*pos) and append "." and the signature. */
static int
put_signature(const struct assertion_key *k, enum assertion_alg alg, char *dst,
    size_t dstsz, size_t *pos)
{
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md;
	int r = -EIO;

	if ((size_t)EVP_PKEY_get_size(k->pkey) > sizeof(sig))
		return -EMSGSIZE; /* > 8192-bit RSA */
	md = EVP_MD_CTX_new();
	if (md == NULL)
		return -ENOMEM;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k->pkey) != 1)
		goto out;
	if (alg == ASSERTION_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
		    RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out; /* RFC 7518 3.5: salt as long as the hash */
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)dst,
		*pos) != 1)
		goto out;
	if (*pos + 1 >= dstsz)
		goto out;
	dst[(*pos)++] = '.';
	r = b64url(dst + *pos, dstsz - *pos, sig, siglen);
	if (r == 0)
		*pos += strlen(dst + *pos);
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return r;
}

int
assertion_sign(const struct assertion_key *k, enum assertion_alg alg,
    const char *client_id, const char *token_endpoint, int64_t now,
    struct secret **out)
{
	char jti[37], *buf;
	size_t cap, pos = 0;
	json_t *hdr, *claims;
	int r;

	*out = NULL;
	if (k == NULL || client_id == NULL || token_endpoint == NULL ||
	    (alg != ASSERTION_PS256 && alg != ASSERTION_RS256))
		return -EINVAL;
	r = new_jti(jti);
	if (r < 0)
		return r;
	/* Header and claims are short; the signature at most 1366 chars. */
	cap = 2 * (strlen(client_id) + strlen(token_endpoint)) + 4096;
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg",
	    alg == ASSERTION_PS256 ? "PS256" : "RS256", "typ", "JWT",
	    "x5t#S256", k->x5t_s256, "x5t", k->x5t);
	r = put_json_b64(hdr, buf, cap, &pos);
	if (r < 0)
		goto out;
	buf[pos++] = '.';
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud",
	    token_endpoint, "iss", client_id, "sub", client_id, "jti", jti,
	    "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
	    (json_int_t)(now + ASSERTION_LIFETIME));
	r = put_json_b64(claims, buf, cap, &pos);
	if (r < 0)
		goto out;
	r = put_signature(k, alg, buf, cap, &pos);
	if (r < 0)
		goto out;
	*out = secret_new(buf, pos);
	r = *out != NULL ? 0 : -ENOMEM;
out:
	secret_wipe(buf, cap);
	free(buf);
	return r;
}
