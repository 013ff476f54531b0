/*
 * test_authcode.c - credd/authcode.c: PKCE S256 (the challenge is the
 * base64url SHA-256 of the verifier), random ids, the paste-back
 * redirect URI of a cloud, the authorize URL, and the strict parser of a
 * pasted address: what it takes (blanks and a line end around it, an
 * error reply) and what it refuses (another site or path, a fragment,
 * bad escapes, duplicate or unknown keys, no state, both or neither of
 * code and error, over-long input).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/secret.h"

#include "test.h"

#include "authcode.h"

#define NATIVE "https://login.microsoftonline.com/common/oauth2/nativeclient"
#define STATE "abcdefghijklmnopqrstuvwxyz012345" /* 32 base64url chars */

TEST(pkce_and_ids)
{
	struct secret *v = NULL, *v2 = NULL;
	char ch[AUTHCODE_VERIFIER_LEN + 1], want[AUTHCODE_VERIFIER_LEN + 1];
	unsigned char h[crypto_hash_sha256_BYTES];
	char a[AUTHCODE_STATE_LEN + 1], b[AUTHCODE_STATE_LEN + 1];

	ASSERT_EQ(authcode_pkce(&v, ch), 0);
	ASSERT_EQ(v->len, AUTHCODE_VERIFIER_LEN);
	crypto_hash_sha256(h, (const unsigned char *)v->ptr, v->len);
	sodium_bin2base64(want, sizeof(want), h, sizeof(h),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ASSERT_STREQ(ch, want);
	ASSERT_EQ(authcode_pkce(&v2, ch), 0);
	ASSERT_TRUE(strcmp(v->ptr, v2->ptr) != 0);
	secret_free(v);
	secret_free(v2);
	ASSERT_EQ(authcode_random(24, a, sizeof(a)), 0);
	ASSERT_EQ(strlen(a), AUTHCODE_STATE_LEN);
	ASSERT_EQ(authcode_random(24, b, sizeof(b)), 0);
	ASSERT_TRUE(strcmp(a, b) != 0);
	ASSERT_ERR(authcode_random(24, a, 10), -ENAMETOOLONG);
	ASSERT_EQ(authcode_random(16, a, sizeof(a)), 0);
	ASSERT_EQ(strlen(a), AUTHCODE_LINK_LEN);
}

TEST(nativeclient_and_authorize_url)
{
	char u[256];
	char *url = NULL;
	struct authcode_request rq = {
		.authorize_url = "https://login.microsoftonline.com/T/oauth2/"
				 "v2.0/authorize",
		.client_id = "C",
		.redirect_uri = NATIVE,
		.scope = "openid offline_access https://storage.azure.com/"
			 ".default",
		.state = STATE,
		.challenge = "CH",
		.login_hint = "alice@contoso.com",
	};

	ASSERT_EQ(authcode_nativeclient_uri("https://login.microsoftonline.com",
		      u, sizeof(u)),
	    0);
	ASSERT_STREQ(u, NATIVE);
	ASSERT_EQ(authcode_nativeclient_uri("https://127.0.0.1:8443/x/", u,
		      sizeof(u)),
	    0);
	ASSERT_STREQ(u, "https://127.0.0.1:8443/common/oauth2/nativeclient");
	ASSERT_ERR(authcode_nativeclient_uri("ftp://h", u, sizeof(u)), -EINVAL);
	ASSERT_ERR(authcode_nativeclient_uri("https://u@h", u, sizeof(u)),
	    -EINVAL);
	ASSERT_ERR(authcode_nativeclient_uri("https://h", u, 10),
	    -ENAMETOOLONG);

	ASSERT_EQ(authcode_authorize_url(&rq, &url), 0);
	ASSERT_STREQ(url,
	    "https://login.microsoftonline.com/T/oauth2/v2.0/authorize?"
	    "client_id=C&response_type=code&redirect_uri=https%3A%2F%2Flogin."
	    "microsoftonline.com%2Fcommon%2Foauth2%2Fnativeclient"
	    "&response_mode=query&scope=openid%20offline_access%20https%3A%2F"
	    "%2Fstorage.azure.com%2F.default&state=" STATE
	    "&code_challenge=CH&code_challenge_method=S256"
	    "&prompt=select_account&login_hint=alice%40contoso.com");
	free(url);
	rq.state = NULL;
	ASSERT_ERR(authcode_authorize_url(&rq, &url), -EINVAL);
}

static int
parse(const char *text, struct authcode_reply *rp)
{
	return authcode_parse_redirect(text, strlen(text), NATIVE, rp);
}

TEST(parse_good)
{
	struct authcode_reply rp;

	ASSERT_EQ(parse(NATIVE "?code=1.AQ%2Bx-y_z&state=" STATE
			       "&session_state=s",
		      &rp),
	    0);
	ASSERT_STREQ(rp.code->ptr, "1.AQ+x-y_z");
	ASSERT_STREQ(rp.state, STATE);
	ASSERT_STREQ(rp.error, "");
	authcode_reply_clear(&rp);
	/* Blanks and a line end around it; the host in any case. */
	ASSERT_EQ(parse("  https://LOGIN.microsoftonline.com/common/oauth2/"
			"nativeclient?state=" STATE "&code=c\r\n",
		      &rp),
	    0);
	ASSERT_STREQ(rp.code->ptr, "c");
	authcode_reply_clear(&rp);
	/* Entra's error reply. */
	ASSERT_EQ(parse(NATIVE
		      "?error=access_denied&error_description="
		      "AADSTS53003%3A+Access+has+been+blocked&state=" STATE,
		      &rp),
	    0);
	ASSERT_TRUE(rp.code == NULL);
	ASSERT_STREQ(rp.error, "access_denied");
	ASSERT_EQ(authcode_desc_code(rp.error_desc), 53003);
	authcode_reply_clear(&rp);
	ASSERT_EQ(authcode_desc_code("no code"), 0);
	ASSERT_EQ(authcode_desc_code(NULL), 0);
	/* RFC 9207's iss (oidc-provider sends it): read, for flow_code.c. */
	ASSERT_EQ(parse(NATIVE "?code=c&state=" STATE
			       "&iss=https%3A%2F%2Fidp.example%2FT%2Fv2.0",
		      &rp),
	    0);
	ASSERT_STREQ(rp.code->ptr, "c");
	ASSERT_STREQ(rp.iss, "https://idp.example/T/v2.0");
	authcode_reply_clear(&rp);
	ASSERT_EQ(parse(NATIVE "?code=c&state=" STATE, &rp), 0);
	ASSERT_STREQ(rp.iss, "");
	authcode_reply_clear(&rp);
}

TEST(parse_refused)
{
	static const struct {
		const char *text;
		int r;
	} t[] = {
		{ "https://evil.example/common/oauth2/nativeclient?code=c&state=" STATE,
		    -EXDEV },
		{ "https://login.microsoftonline.com/common/oauth2/NativeClient"
		  "?code=c&state=" STATE,
		    -EXDEV },
		{ "https://login.microsoftonline.com.evil/common/oauth2/"
		  "nativeclient?code=c&state=" STATE,
		    -EXDEV },
		{ NATIVE, -EXDEV },
		{ NATIVE "/x?code=c&state=" STATE, -EXDEV },
		{ NATIVE "?code=c&state=" STATE "#frag", -EBADMSG },
		{ NATIVE "?code=c&code=d&state=" STATE, -EBADMSG },
		{ NATIVE "?code=c&state=" STATE "&admin=1", -EBADMSG },
		{ NATIVE "?code=c&state=" STATE "&iss=a&iss=b", -EBADMSG },
		{ NATIVE "?code=c&state=" STATE "&iss=http%3A%2F%2Fidp",
		    -EBADMSG },
		{ NATIVE "?code=c&state=" STATE "&iss=", -EBADMSG },
		{ NATIVE "?code=c%4&state=" STATE, -EBADMSG },
		{ NATIVE "?code=c%0a&state=" STATE, -EBADMSG },
		{ NATIVE "?code=c%00&state=" STATE, -EBADMSG },
		{ NATIVE "?code=c", -EBADMSG },
		{ NATIVE "?code=&state=" STATE, -EBADMSG },
		{ NATIVE "?code=c&state=short", -EBADMSG },
		{ NATIVE "?code=c&error=x&state=" STATE, -EBADMSG },
		{ NATIVE "?state=" STATE, -EBADMSG },
		{ NATIVE "?code=c&&state=" STATE, -EBADMSG },
		{ NATIVE "?code&state=" STATE, -EBADMSG },
		{ NATIVE "?code=a b&state=" STATE, -EBADMSG },
		{ NATIVE "?code=\xc3\xa9&state=" STATE, -EBADMSG },
	};
	struct authcode_reply rp;
	char *big;
	size_t i, n = AUTHCODE_URL_MAX + 200;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = parse(t[i].text, &rp);

		if (r != t[i].r)
			fprintf(stderr, "case %zu: %d\n", i, r);
		ASSERT_EQ(r, t[i].r);
		ASSERT_TRUE(rp.code == NULL);
	}
	big = malloc(n + 1);
	ASSERT_TRUE(big != NULL);
	memset(big, 'a', n);
	big[n] = '\0';
	memcpy(big, NATIVE "?code=", strlen(NATIVE "?code="));
	ASSERT_ERR(parse(big, &rp), -EMSGSIZE);
	ASSERT_ERR(authcode_parse_query(big, AUTHCODE_URL_MAX + 1, &rp),
	    -EMSGSIZE);
	free(big);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(pkce_and_ids);
	RUN(nativeclient_and_authorize_url);
	RUN(parse_good);
	RUN(parse_refused);
	TEST_MAIN_END();
}
