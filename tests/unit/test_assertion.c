/*
 * test_assertion.c - credd/assertion.c and assertion_file.c: the client
 * certificate loader (PEM and PKCS#12, modes, mismatches, truncation),
 * RS256/PS256 client assertions verified here independently with
 * OpenSSL (signature, x5t#S256 and x5t against the certificate, every
 * claim), unique jti, and the federated token file (missing, oversize,
 * not a JWS, expired, mode).
 *
 * Keys and certificates are made at test time (RSA 2048, self-signed);
 * nothing secret is committed. The canary: no error string ever holds
 * any line of the private key's PEM text.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "test.h"

#include "assertion.h"

#define CLIENT "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#define AUD                                                                    \
	"https://login.microsoftonline.com/"                                   \
	"72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
#define NOW ((int64_t)1767225600)

static const char *dir;
static EVP_PKEY *key_a, *key_b;
static X509 *cert_a, *cert_b;
static char key_a_pem[4096]; /* the canary */

static X509 *
self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *c = X509_new();
	X509_NAME *n;

	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, k);
	n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, n);
	X509_sign(c, k, EVP_sha256());
	return c;
}

static void
pem_of_key(EVP_PKEY *k, char *dst, size_t dstsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_read(b, dst, (int)dstsz - 1);
	dst[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* Write bytes to dir/name with mode; returns the path. */
static const char *
put_file(const char *name, const void *p, size_t n, mode_t mode)
{
	const char *path = fixture_path(dir, name);
	int fd;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n || fchmod(fd, mode) < 0)
		abort();
	close(fd);
	return path;
}

/* cert then key (or key first), PEM, as one file. */
static const char *
put_pem(const char *name, X509 *c, EVP_PKEY *k, int key_first, mode_t mode)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	const char *path;

	if (key_first)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	PEM_write_bio_X509(b, c);
	if (!key_first)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	path = put_file(name, p, (size_t)n, mode);
	BIO_free(b);
	return path;
}

/* Does err hold any line of the key's PEM text? */
static int
err_has_key(const char *err)
{
	char line[128];
	const char *s = key_a_pem, *e;

	for (; *s != '\0'; s = *e ? e + 1 : e) {
		e = strchr(s, '\n');
		if (e == NULL)
			e = s + strlen(s);
		if (e - s < 16 || strncmp(s, "-----", 5) == 0)
			continue;
		snprintf(line, sizeof(line), "%.*s", (int)(e - s), s);
		if (strstr(err, line) != NULL)
			return 1;
	}
	return strstr(err, "PRIVATE KEY-----") != NULL;
}

static json_t *
decode_part(const char *p, size_t n)
{
	unsigned char bin[4096];
	size_t len = 0;

	if (sodium_base642bin(bin, sizeof(bin), p, n, NULL, &len, NULL,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return NULL;
	return json_loadb((const char *)bin, len, 0, NULL);
}

static void
thumb(X509 *c, const EVP_MD *md, char *dst, size_t dstsz)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	X509_digest(c, md, h, &n);
	sodium_bin2base64(dst, dstsz, h, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/*
 * Verify jwt independently: the signature with cert's key under alg,
 * the header's thumbprints, every claim. jti (37 bytes) is copied out.
 * 1 when all holds.
 */
static int
verify_jwt(const struct secret *jwt, X509 *c, const char *alg, char *jti)
{
	const char *s = jwt->ptr, *d1, *d2;
	unsigned char sig[1024];
	size_t siglen = 0;
	char want[64];
	json_t *h, *cl;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	d1 = strchr(s, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d2 == NULL || strchr(d2 + 1, '.') != NULL)
		return 0;
	h = decode_part(s, (size_t)(d1 - s));
	cl = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	if (h == NULL || cl == NULL)
		goto out;
	if (strcmp(json_string_value(json_object_get(h, "alg")), alg) != 0 ||
	    strcmp(json_string_value(json_object_get(h, "typ")), "JWT") != 0)
		goto out;
	thumb(c, EVP_sha256(), want, sizeof(want));
	if (strcmp(json_string_value(json_object_get(h, "x5t#S256")), want))
		goto out;
	thumb(c, EVP_sha1(), want, sizeof(want));
	if (strcmp(json_string_value(json_object_get(h, "x5t")), want))
		goto out;
	if (strcmp(json_string_value(json_object_get(cl, "aud")), AUD) ||
	    strcmp(json_string_value(json_object_get(cl, "iss")), CLIENT) ||
	    strcmp(json_string_value(json_object_get(cl, "sub")), CLIENT) ||
	    json_integer_value(json_object_get(cl, "iat")) != NOW ||
	    json_integer_value(json_object_get(cl, "nbf")) != NOW ||
	    json_integer_value(json_object_get(cl, "exp")) !=
		NOW + ASSERTION_LIFETIME ||
	    json_object_size(cl) != 7)
		goto out;
	snprintf(jti, 37, "%s", json_string_value(json_object_get(cl, "jti")));
	if (strlen(jti) != 36 || jti[14] != '4')
		goto out;
	if (sodium_base642bin(sig, sizeof(sig), d2 + 1, strlen(d2 + 1), NULL,
		&siglen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		goto out;
	md = EVP_MD_CTX_new();
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL,
		X509_get0_pubkey(c)) != 1)
		goto out;
	if (strcmp(alg, "PS256") == 0) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	}
	ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)s,
		 (size_t)(d2 - s)) == 1;
out:
	EVP_MD_CTX_free(md);
	json_decref(h);
	json_decref(cl);
	return ok;
}

static void
sign_and_verify(const char *path, enum assertion_alg alg, const char *name,
    X509 *c, int *ok)
{
	struct assertion_key *k = NULL;
	struct secret *jwt = NULL;
	char err[512], jti[37];

	*ok = 0;
	if (assertion_key_load(path, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "load: %s\n", err);
		return;
	}
	if (assertion_sign(k, alg, CLIENT, AUD, NOW, &jwt) == 0)
		*ok = verify_jwt(jwt, c, name, jti);
	secret_free(jwt);
	assertion_key_free(k);
}

TEST(pem_ps256_verifies)
{
	const char *p = put_pem("ps.pem", cert_a, key_a, 0, 0600);
	int ok;

	sign_and_verify(p, ASSERTION_PS256, "PS256", cert_a, &ok);
	ASSERT_TRUE(ok);
}

TEST(pem_rs256_verifies_key_first)
{
	const char *p = put_pem("rs.pem", cert_a, key_a, 1, 0400);
	int ok;

	sign_and_verify(p, ASSERTION_RS256, "RS256", cert_a, &ok);
	ASSERT_TRUE(ok);
}

TEST(signature_is_checked_by_the_verifier)
{
	/* The verifier itself must refuse: another cert, another alg. */
	const char *p = put_pem("x.pem", cert_a, key_a, 0, 0600);
	struct assertion_key *k = NULL;
	struct secret *jwt = NULL;
	char jti[37];

	ASSERT_EQ(assertion_key_load(p, &k, NULL, 0), 0);
	ASSERT_EQ(assertion_sign(k, ASSERTION_PS256, CLIENT, AUD, NOW, &jwt),
	    0);
	ASSERT_TRUE(!verify_jwt(jwt, cert_b, "PS256", jti));
	ASSERT_TRUE(!verify_jwt(jwt, cert_a, "RS256", jti));
	jwt->ptr[jwt->len - 3] ^= 1; /* a flipped signature bit */
	ASSERT_TRUE(!verify_jwt(jwt, cert_a, "PS256", jti));
	secret_free(jwt);
	assertion_key_free(k);
}

TEST(jti_unique)
{
	const char *p = put_pem("u.pem", cert_a, key_a, 0, 0600);
	static char seen[32][37];
	struct assertion_key *k = NULL;
	struct secret *jwt;
	int i, j;

	ASSERT_EQ(assertion_key_load(p, &k, NULL, 0), 0);
	for (i = 0; i < 32; i++) {
		jwt = NULL;
		ASSERT_EQ(assertion_sign(k, ASSERTION_RS256, CLIENT, AUD, NOW,
			      &jwt),
		    0);
		ASSERT_TRUE(verify_jwt(jwt, cert_a, "RS256", seen[i]));
		secret_free(jwt);
		for (j = 0; j < i; j++)
			ASSERT_TRUE(strcmp(seen[i], seen[j]) != 0);
	}
	assertion_key_free(k);
}

TEST(thumbprints)
{
	const char *p = put_pem("t.pem", cert_a, key_a, 0, 0600);
	struct assertion_key *k = NULL;
	char got[64], want[64];

	ASSERT_EQ(assertion_key_load(p, &k, NULL, 0), 0);
	ASSERT_EQ(assertion_key_thumbprint(k, 1, got, sizeof(got)), 0);
	thumb(cert_a, EVP_sha256(), want, sizeof(want));
	ASSERT_TRUE(strcmp(got, want) == 0 && strlen(got) == 43);
	ASSERT_EQ(assertion_key_thumbprint(k, 0, got, sizeof(got)), 0);
	thumb(cert_a, EVP_sha1(), want, sizeof(want));
	ASSERT_TRUE(strcmp(got, want) == 0 && strlen(got) == 27);
	ASSERT_EQ(assertion_key_thumbprint(k, 1, got, 43), -ENAMETOOLONG);
	assertion_key_free(k);
}

static void
expect_refused(const char *path, int want, const char *needle, int *ok)
{
	struct assertion_key *k = (struct assertion_key *)1;
	char err[512];
	int r;

	r = assertion_key_load(path, &k, err, sizeof(err));
	*ok = r == want && k == NULL && strstr(err, path) != NULL &&
	    strstr(err, needle) != NULL && !err_has_key(err);
	if (!*ok)
		fprintf(stderr, "got %d '%s'\n", r, err);
}

TEST(mode_0644_refused)
{
	int ok;

	expect_refused(put_pem("m644.pem", cert_a, key_a, 0, 0644), -EPERM,
	    "chmod 0600", &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_pem("m640.pem", cert_a, key_a, 0, 0640), -EPERM,
	    "closed to group", &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_pem("m700.pem", cert_a, key_a, 0, 0700), -EPERM,
	    "executable", &ok);
	ASSERT_TRUE(ok);
}

TEST(symlink_and_missing_refused)
{
	const char *p = put_pem("real.pem", cert_a, key_a, 0, 0600);
	const char *l = fixture_path(dir, "link.pem");
	int ok;

	ASSERT_EQ(symlink(p, l), 0);
	expect_refused(l, -ELOOP, "symbolic link", &ok);
	ASSERT_TRUE(ok);
	expect_refused(fixture_path(dir, "none.pem"), -ENOENT, "no such file",
	    &ok);
	ASSERT_TRUE(ok);
}

TEST(mismatch_refused)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int ok;

	PEM_write_bio_X509(b, cert_b);
	PEM_write_bio_PrivateKey(b, key_a, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	expect_refused(put_file("mm.pem", p, (size_t)n, 0600), -EKEYREJECTED,
	    "does not match", &ok);
	BIO_free(b);
	ASSERT_TRUE(ok);
}

TEST(truncated_and_partial_refused)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int ok;

	PEM_write_bio_X509(b, cert_a);
	PEM_write_bio_PrivateKey(b, key_a, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	/* Cut inside the key's base64 text. */
	expect_refused(put_file("tr.pem", p, (size_t)n - 200, 0600), -EBADMSG,
	    "truncated", &ok);
	ASSERT_TRUE(ok);
	/* The certificate alone; the key alone. */
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, cert_a);
	n = BIO_get_mem_data(b, &p);
	expect_refused(put_file("c.pem", p, (size_t)n, 0600), -EBADMSG,
	    "no certificate", &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_file("k.pem", key_a_pem, strlen(key_a_pem), 0600),
	    -EBADMSG, "no certificate", &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_file("e.pem", "", 0, 0600), -EBADMSG,
	    "no certificate", &ok);
	ASSERT_TRUE(ok);
	BIO_free(b);
}

TEST(encrypted_key_refused)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int ok;

	PEM_write_bio_X509(b, cert_a);
	static char pass[] = "sesame";
	PEM_write_bio_PKCS8PrivateKey(b, key_a, EVP_aes_256_cbc(), NULL, 0,
	    NULL, pass);
	n = BIO_get_mem_data(b, &p);
	expect_refused(put_file("enc.pem", p, (size_t)n, 0600), -EBADMSG,
	    "unencrypted", &ok);
	BIO_free(b);
	ASSERT_TRUE(ok);
}

TEST(ec_and_short_keys_refused)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	EVP_PKEY *small = EVP_RSA_gen(1024);
	X509 *ec_cert = self_signed(ec, "ec"), *small_cert;
	int ok;

	small_cert = self_signed(small, "small");
	expect_refused(put_pem("ec.pem", ec_cert, ec, 0, 0600), -EKEYREJECTED,
	    "not an RSA key", &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_pem("small.pem", small_cert, small, 0, 0600),
	    -EKEYREJECTED, "2048", &ok);
	ASSERT_TRUE(ok);
	X509_free(ec_cert);
	X509_free(small_cert);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(small);
}

static const char *
put_p12(const char *name, const char *pass, X509 *c, EVP_PKEY *k)
{
	PKCS12 *p12 = PKCS12_create(pass, "credd", k, c, NULL, 0, 0, 0, 0, 0);
	unsigned char *der = NULL;
	const char *path;
	int n;

	if (p12 == NULL)
		abort();
	n = i2d_PKCS12(p12, &der);
	path = put_file(name, der, (size_t)n, 0600);
	OPENSSL_free(der);
	PKCS12_free(p12);
	return path;
}

TEST(pkcs12)
{
	int ok;

	sign_and_verify(put_p12("a.p12", "", cert_a, key_a), ASSERTION_PS256,
	    "PS256", cert_a, &ok);
	ASSERT_TRUE(ok);
	sign_and_verify(put_p12("n.p12", NULL, cert_a, key_a), ASSERTION_RS256,
	    "RS256", cert_a, &ok);
	ASSERT_TRUE(ok);
	expect_refused(put_p12("pw.p12", "sesame", cert_a, key_a), -EBADMSG,
	    "PKCS#12 without a password", &ok);
	ASSERT_TRUE(ok);
	/* (PKCS12_create itself refuses a key that does not match.) */
	expect_refused(put_file("junk.p12", "\x30\x82\x01", 3, 0600), -EBADMSG,
	    "truncated", &ok);
	ASSERT_TRUE(ok);
}

TEST(bad_arguments)
{
	const char *p = put_pem("ba.pem", cert_a, key_a, 0, 0600);
	struct assertion_key *k = NULL;
	struct secret *jwt = (struct secret *)1;

	ASSERT_EQ(assertion_key_load(NULL, &k, NULL, 0), -EINVAL);
	ASSERT_EQ(assertion_key_load(p, &k, NULL, 0), 0);
	ASSERT_EQ(assertion_sign(k, ASSERTION_PS256, NULL, AUD, NOW, &jwt),
	    -EINVAL);
	ASSERT_TRUE(jwt == NULL);
	ASSERT_EQ(assertion_sign(k, ASSERTION_PS256, CLIENT, NULL, NOW, &jwt),
	    -EINVAL);
	ASSERT_EQ(assertion_sign(k, (enum assertion_alg)7, CLIENT, AUD, NOW,
		      &jwt),
	    -EINVAL);
	ASSERT_EQ(assertion_sign(NULL, ASSERTION_PS256, CLIENT, AUD, NOW, &jwt),
	    -EINVAL);
	assertion_key_free(k);
	assertion_key_free(NULL);
}

/* --- federated token files ------------------------------------------- */

/* A JWT-shaped token whose payload is json (unsigned: not checked here). */
static void
make_token(const char *json, char *dst, size_t dstsz)
{
	char p[1024];

	sodium_bin2base64(p, sizeof(p), (const unsigned char *)json,
	    strlen(json), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(dst, dstsz, "eyJhbGciOiJSUzI1NiJ9.%s.c2lnbmF0dXJlX2J5dGVz", p);
}

static int
read_fed(const char *path, int64_t now, struct secret **tok, int64_t *exp,
    char *err, size_t errsz)
{
	return assertion_file_read(path, now, tok, exp, err, errsz);
}

TEST(federated_good)
{
	char tok[2048], line[2100], err[512];
	struct secret *s = NULL;
	int64_t exp = -1;
	const char *p;

	make_token("{\"iss\":\"https://k8s.example\",\"sub\":\"system:"
		   "serviceaccount:ns:sa\",\"aud\":\"api://"
		   "AzureADTokenExchange\",\"exp\":1767229200}",
	    tok, sizeof(tok));
	snprintf(line, sizeof(line), "%s\n", tok);
	p = put_file("fed", line, strlen(line), 0600);
	ASSERT_EQ(read_fed(p, NOW, &s, &exp, err, sizeof(err)), 0);
	ASSERT_TRUE(s != NULL && s->len == strlen(tok) &&
	    strcmp(s->ptr, tok) == 0); /* verbatim, newline dropped */
	ASSERT_EQ(exp, 1767229200);
	secret_free(s);
	/* No exp: Entra decides. */
	make_token("{\"sub\":\"x\"}", tok, sizeof(tok));
	p = put_file("fed2", tok, strlen(tok), 0400);
	s = NULL;
	ASSERT_EQ(read_fed(p, NOW, &s, &exp, err, sizeof(err)), 0);
	ASSERT_EQ(exp, 0);
	secret_free(s);
	/* exp as a real: read; beyond int64: ignored (no overflowing cast). */
	make_token("{\"exp\":1767229200.5}", tok, sizeof(tok));
	p = put_file("fed3", tok, strlen(tok), 0600);
	s = NULL;
	ASSERT_EQ(read_fed(p, NOW, &s, &exp, err, sizeof(err)), 0);
	ASSERT_EQ(exp, 1767229200);
	secret_free(s);
	make_token("{\"exp\":-1.5e300}", tok, sizeof(tok));
	p = put_file("fed3", tok, strlen(tok), 0600);
	s = NULL;
	ASSERT_EQ(read_fed(p, NOW, &s, &exp, err, sizeof(err)), 0);
	ASSERT_EQ(exp, 0);
	secret_free(s);
	/* Rotated in place: the next read gets the new token. */
	make_token("{\"sub\":\"y\",\"exp\":1767229999}", tok, sizeof(tok));
	p = put_file("fed2", tok, strlen(tok), 0400);
	s = NULL;
	ASSERT_EQ(read_fed(p, NOW, &s, &exp, NULL, 0), 0);
	ASSERT_TRUE(strcmp(s->ptr, tok) == 0 && exp == 1767229999);
	secret_free(s);
}

static void
expect_fed(const char *path, int want, const char *needle, const char *token,
    int *ok)
{
	struct secret *s = (struct secret *)1;
	char err[512] = "";
	int r;

	r = read_fed(path, NOW, &s, NULL, err, sizeof(err));
	*ok = r == want && s == NULL && strstr(err, path) != NULL &&
	    strstr(err, needle) != NULL &&
	    (token == NULL || strstr(err, token) == NULL);
	if (!*ok)
		fprintf(stderr, "got %d '%s'\n", r, err);
}

TEST(federated_refused)
{
	char tok[2048], *big;
	int ok;

	expect_fed(fixture_path(dir, "nofed"), -ENOENT, "no such file", NULL,
	    &ok);
	ASSERT_TRUE(ok);
	make_token("{\"exp\":1767225600}", tok, sizeof(tok)); /* == NOW */
	expect_fed(put_file("old", tok, strlen(tok), 0600), -EKEYEXPIRED,
	    "expired", tok, &ok);
	ASSERT_TRUE(ok);
	make_token("{\"exp\":1767229200}", tok, sizeof(tok));
	expect_fed(put_file("wide", tok, strlen(tok), 0644), -EPERM,
	    "chmod 0600", tok, &ok);
	ASSERT_TRUE(ok);
	expect_fed(put_file("two", "aaa.bbb", 7, 0600), -EBADMSG, "not a JWT",
	    NULL, &ok);
	ASSERT_TRUE(ok);
	expect_fed(put_file("four", "a.b.c.d", 7, 0600), -EBADMSG, "not a JWT",
	    NULL, &ok);
	ASSERT_TRUE(ok);
	expect_fed(put_file("emptyp", "a..c", 4, 0600), -EBADMSG, "not a JWT",
	    NULL, &ok);
	ASSERT_TRUE(ok);
	expect_fed(put_file("space", "a.b c.d", 7, 0600), -EBADMSG, "not a JWT",
	    NULL, &ok);
	ASSERT_TRUE(ok);
	expect_fed(put_file("empty", "\n", 1, 0600), -EBADMSG, "empty", NULL,
	    &ok);
	ASSERT_TRUE(ok);
	big = malloc(ASSERTION_TOKEN_FILE_MAX + 1);
	ASSERT_TRUE(big != NULL);
	memset(big, 'A', ASSERTION_TOKEN_FILE_MAX + 1);
	big[10] = big[20] = '.';
	expect_fed(put_file("big", big, ASSERTION_TOKEN_FILE_MAX + 1, 0600),
	    -EMSGSIZE, "too large", NULL, &ok);
	free(big);
	ASSERT_TRUE(ok);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	dir = fixture_tmpdir("assertion");
	key_a = EVP_RSA_gen(2048);
	key_b = EVP_RSA_gen(2048);
	if (dir == NULL || key_a == NULL || key_b == NULL)
		return 1;
	cert_a = self_signed(key_a, "credd test client A");
	cert_b = self_signed(key_b, "credd test client B");
	pem_of_key(key_a, key_a_pem, sizeof(key_a_pem));

	RUN(pem_ps256_verifies);
	RUN(pem_rs256_verifies_key_first);
	RUN(signature_is_checked_by_the_verifier);
	RUN(jti_unique);
	RUN(thumbprints);
	RUN(mode_0644_refused);
	RUN(symlink_and_missing_refused);
	RUN(mismatch_refused);
	RUN(truncated_and_partial_refused);
	RUN(encrypted_key_refused);
	RUN(ec_and_short_keys_refused);
	RUN(pkcs12);
	RUN(bad_arguments);
	RUN(federated_good);
	RUN(federated_refused);

	X509_free(cert_a);
	X509_free(cert_b);
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	TEST_MAIN_END();
}
