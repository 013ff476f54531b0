/*
 * test_dispatch.c - the method table over a broker on a bench
 * (fake_core.h), fed with decoded protocol lines: admin ops refused to
 * a plain caller (forbidden, counted, the broker never asked); a token
 * is always the caller's own, whatever name the line carries; scope
 * aliases resolve and unknown scopes are refused; a uid with no name,
 * or a directory that did not answer, gets its own answer; an admin
 * lists and revokes, and the revoked user's next request signs in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"

#include "dispatch.h"
#include "fake_core.h"
#include "reply.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID

struct bench {
	struct fake_core *fc;
	struct dispatch d;
};

static int
bench_new(struct bench *bn)
{
	memset(bn, 0, sizeof(*bn));
	bn->fc = fake_core_new(NULL);
	if (bn->fc == NULL)
		return -1;
	bn->d.broker = fake_core_broker(bn->fc);
	bn->d.cf = fake_core_config(bn->fc);
	if (fake_core_sign_in(bn->fc, ALICE, ALICE_UID, ALICE_OID,
		"alice@contoso.com", "RT-1") < 0) {
		fake_core_free(bn->fc);
		return -1;
	}
	return 0;
}

/* Decode line and dispatch it for the caller (user NULL: no name). */
static int
request(struct bench *bn, struct fake_call *c, const char *line,
    const char *user, uid_t uid, int is_admin)
{
	struct proto_request req;
	struct reply out = { 0 };
	const char *code, *msg;
	int r;

	r = proto_request_decode(line, strlen(line), &req, &code, &msg);
	if (r < 0) {
		fprintf(stderr, "bad test line %s: %s\n", line, msg);
		return r;
	}
	fake_core_call_init(bn->fc, c, req.op, user, uid);
	c->caller.is_admin = is_admin;
	fake_core_call_returned(c, dispatch_request(&bn->d, &c->w, &req, &out),
	    &out);
	proto_request_clear(&req);
	fake_core_settle(bn->fc);
	return 0;
}

TEST(admin_ops_refused_to_plain_callers)
{
	static const char *const lines[] = {
		"{\"v\":1,\"op\":\"stats\"}",
		"{\"v\":1,\"op\":\"admin_list\"}",
		"{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"alice\"}",
		"{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\"}",
		"{\"v\":1,\"op\":\"session_close\",\"user\":\"alice\",\"session\":\"s\"}",
	};
	struct bench bn;
	struct fake_call c;
	size_t i;

	ASSERT_EQ(bench_new(&bn), 0);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		ASSERT_EQ(request(&bn, &c, lines[i], ALICE, ALICE_UID, 0), 0);
		ASSERT_STREQ(fake_core_code(&c), "forbidden");
		fake_core_call_done(&c);
	}
	ASSERT_EQ(bn.d.forbidden, 5);
	/* Still consented: the refused revoke never reached the broker. */
	ASSERT_TRUE(fake_core_store_has(bn.fc, ALICE));
	ASSERT_EQ(fake_core_store_dels(bn.fc), 0);
	fake_core_free(bn.fc);
}

TEST(token_is_the_callers_own)
{
	struct bench bn;
	struct fake_call c;

	ASSERT_EQ(bench_new(&bn), 0);
	/* The alias, the full scope, the default. */
	ASSERT_EQ(request(&bn, &c,
		      "{\"v\":1,\"op\":\"token\",\"scope\":\"storage\"}", ALICE,
		      ALICE_UID, 0),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	ASSERT_STREQ(fake_core_field(&c, "scope"), FAKE_SCOPE);
	fake_core_call_done(&c);
	ASSERT_EQ(request(&bn, &c,
		      "{\"v\":1,\"op\":\"token\",\"scope\":\"" FAKE_SCOPE "\"}",
		      ALICE, ALICE_UID, 0),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	fake_core_call_done(&c);
	/* Another caller, root included, never gets alice's token. */
	ASSERT_EQ(request(&bn, &c, "{\"v\":1,\"op\":\"token\"}", "root", 0, 1),
	    0);
	ASSERT_TRUE(c.resp == NULL); /* root's own sign-in starts */
	ASSERT_EQ(fake_core_idp_answer(bn.fc, FAKE_DEVICE, 200,
		      fake_core_device_body(bn.fc, 900, 5), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	ASSERT_EQ(request(&bn, &c,
		      "{\"v\":1,\"op\":\"token\",\"scope\":\"graph\"}", ALICE,
		      ALICE_UID, 0),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "unknown_scope");
	fake_core_call_done(&c);
	fake_core_free(bn.fc);
}

TEST(uid_without_a_name)
{
	struct bench bn;
	struct fake_call c;

	ASSERT_EQ(bench_new(&bn), 0);
	ASSERT_EQ(request(&bn, &c, "{\"v\":1,\"op\":\"token\"}", NULL, 4242, 0),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "forbidden");
	fake_core_call_done(&c);
	/* The directory did not answer: try again, not "no such user". */
	fake_core_call_init(bn.fc, &c, PROTO_OP_STATUS, NULL, 4242);
	c.caller.user_err = -EIO;
	{
		struct proto_request req = { .op = PROTO_OP_STATUS };
		struct reply out = { 0 };

		fake_core_call_returned(&c,
		    dispatch_request(&bn.d, &c.w, &req, &out), &out);
	}
	ASSERT_STREQ(fake_core_code(&c), "unavailable");
	fake_core_call_done(&c);
	fake_core_free(bn.fc);
}

TEST(admin_lists_and_revokes)
{
	struct bench bn;
	struct fake_call c;
	json_t *users;

	ASSERT_EQ(bench_new(&bn), 0);
	ASSERT_EQ(request(&bn, &c, "{\"v\":1,\"op\":\"admin_list\"}", "root", 0,
		      1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	users = json_object_get(c.resp, "users");
	ASSERT_EQ(json_array_size(users), 1);
	ASSERT_STREQ(json_string_value(
			 json_object_get(json_array_get(users, 0), "user")),
	    ALICE);
	fake_core_call_done(&c);
	ASSERT_EQ(request(&bn, &c,
		      "{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"../x\"}",
		      "root", 0, 1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "bad_request");
	fake_core_call_done(&c);
	ASSERT_EQ(request(&bn, &c,
		      "{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"alice\"}",
		      "root", 0, 1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	fake_core_call_done(&c);
	ASSERT_TRUE(!fake_core_store_has(bn.fc, ALICE));
	/* Her cached token is gone with it; a sign-in starts instead. */
	ASSERT_EQ(request(&bn, &c, "{\"v\":1,\"op\":\"token\"}", ALICE,
		      ALICE_UID, 0),
	    0);
	ASSERT_TRUE(fake_core_field(&c, "access_token") == NULL);
	ASSERT_EQ(fake_core_idp_waiting(bn.fc, FAKE_DEVICE), 1);
	fake_core_call_done(&c);
	fake_core_free(bn.fc);
}

int
main(void)
{
	RUN(admin_ops_refused_to_plain_callers);
	RUN(token_is_the_callers_own);
	RUN(uid_without_a_name);
	RUN(admin_lists_and_revokes);
	TEST_MAIN_END();
}
