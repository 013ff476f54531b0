/*
 * assertion.h - client assertions (RFC 7523) for confidential-client
 * grants: a certificate key that signs a fresh JWT per request
 * (assertion.c), and a federated token read from a file per request
 * (assertion_file.c).
 *
 * The certificate file is loaded once, before privilege drop, like the
 * key ring: it must be closed to group and others (fileperm.h). Every
 * assertion, and every federated token, is a struct secret; the caller
 * wipes it with secret_free() once the request body holds it.
 *
 * Errors are written to err as fixed sentences that name the file and
 * never quote its bytes: neither key material nor tokens reach an error,
 * a log or argv through this module. It never logs.
 */
#ifndef CREDD_ASSERTION_H
#define CREDD_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

#include "entra/secret.h"

/* Seconds an assertion is valid: exp = iat + this (MSAL uses 600). */
#define ASSERTION_LIFETIME 300
/* Bounds of the files read here. */
#define ASSERTION_CERT_FILE_MAX (256 * 1024)
#define ASSERTION_TOKEN_FILE_MAX (64 * 1024)
/* The client_assertion_type form value for both kinds. */
#define ASSERTION_TYPE_JWT_BEARER                                              \
	"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

enum assertion_alg {
	ASSERTION_PS256, /* RSASSA-PSS, SHA-256, salt 32: Entra's current doc */
	ASSERTION_RS256, /* RSASSA-PKCS1-v1_5, SHA-256: older tenants */
};

struct assertion_key;

/*
 * Load the client certificate and its RSA private key (>= 2048 bits)
 * from path: PEM (the certificate first, the key anywhere in the file;
 * "PRIVATE KEY" or "RSA PRIVATE KEY", not encrypted) or PKCS#12 without
 * a password (the file mode is the protection). The file is opened
 * without following a symlink and must be a regular file owned by root
 * or our euid, closed to group and others, not executable. Our copy of
 * its bytes is wiped; the key itself then lives in OpenSSL's heap (see
 * assertion.c). Returns 0 and *out, or:
 *   -ENOENT/-EACCES  the file is missing or unreadable
 *   -EPERM           its owner or mode lets others read it
 *   -EMSGSIZE        larger than ASSERTION_CERT_FILE_MAX
 *   -EBADMSG         no certificate or key in it, truncated, encrypted
 *   -EKEYREJECTED    the key does not match the certificate, is not RSA
 *                    or is shorter than 2048 bits
 *   -ENOMEM
 * with "path: why" in err (errsz bytes; err may be NULL).
 */
int assertion_key_load(const char *path, struct assertion_key **out, char *err,
    size_t errsz);
/* Free the key (OpenSSL clears its private numbers). NULL does nothing. */
void assertion_key_free(struct assertion_key *k);

/*
 * The certificate's thumbprints, base64url without padding: SHA-256 of
 * the DER certificate ("x5t#S256", 43 chars) or SHA-1 ("x5t", 27 chars).
 * Public values (Entra shows them in the app registration). 0, or
 * -ENAMETOOLONG when dstsz is too small.
 */
int assertion_key_thumbprint(const struct assertion_key *k, int is_sha256,
    char *dst, size_t dstsz);

/*
 * A new signed client assertion: header {alg, typ "JWT", x5t#S256, x5t},
 * claims {aud = token_endpoint, iss = sub = client_id, jti = a random
 * UUID (122 random bits), iat = nbf = now, exp = now +
 * ASSERTION_LIFETIME}. Returns 0 and *out (the compact JWS), -EINVAL
 * for a missing argument, -EIO when OpenSSL fails to sign, -ENOMEM.
 */
int assertion_sign(const struct assertion_key *k, enum assertion_alg alg,
    const char *client_id, const char *token_endpoint, int64_t now,
    struct secret **out);

/*
 * The federated credential (workload identity): read path afresh (such
 * files rotate), as the assertion to send verbatim. The file must be a
 * regular file owned by root or our euid, closed to group and others
 * (a Kubernetes projected token needs defaultMode 0400 or 0600), at most
 * ASSERTION_TOKEN_FILE_MAX bytes, and hold one compact JWS (three
 * base64url parts; one trailing newline is dropped). When its payload
 * is JSON with a numeric "exp" (read without verifying: the issuer's
 * signature is Entra's to check), exp <= now means stale. *exp_out (may
 * be NULL) gets exp, or 0 when there is none. Returns 0 and *out, or:
 *   -ENOENT/-EACCES  missing or unreadable
 *   -EPERM           owner or mode lets others read it
 *   -EMSGSIZE        too large
 *   -EBADMSG         empty, or not a compact JWS
 *   -EKEYEXPIRED     its own exp has passed (the issuer stopped
 *                    rotating it)
 *   -ENOMEM
 * with "path: why" in err.
 */
int assertion_file_read(const char *path, int64_t now, struct secret **out,
    int64_t *exp_out, char *err, size_t errsz);

#endif
