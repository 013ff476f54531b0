/*
 * test_workload.c - the workload policy (credd/workload.c and the
 * [sessions] / [workload.NAME] sections of credd/config_workload.c):
 * the defaults a security team signs (default as before, apps no user
 * token, jobs and scheduled jobs no sign-in), every refusal names its
 * policy line (file:line, or "default"), the strictest of several kinds,
 * identity = app refused without [entra] client_auth (the error says
 * why) and accepted with it, its scopes still applied, an
 * unknown alias and a bad cgroup prefix refused with their line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "test.h"
#include "workload.h"

#define BASE                                                                   \
	"[entra]\ntenant = 11111111-1111-1111-1111-111111111111\n"             \
	"client_id = 22222222-2222-2222-2222-222222222222\n"                   \
	"[scopes]\nstorage = https://storage.azure.com/.default\n"             \
	"graph = https://graph.microsoft.com/.default\ndefault = storage\n"

static char errbuf[512];

static struct config *
parse(const char *text)
{
	struct config *cf = NULL;

	errbuf[0] = '\0';
	if (config_parse("t.conf", text, strlen(text), &cf, errbuf,
		sizeof(errbuf)) < 0)
		return NULL;
	return cf;
}

TEST(defaults)
{
	struct config *cf = parse(BASE);
	char why[512];
	const char *storage = "https://storage.azure.com/.default";

	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_DEFAULT, storage, why,
		      sizeof(why)),
	    0);
	ASSERT_EQ(workload_check_signin(cf, CONFIG_WL_DEFAULT, why,
		      sizeof(why)),
	    0);
	ASSERT_EQ(workload_check_signin(cf, CONFIG_WL_WORKSPACE, why,
		      sizeof(why)),
	    0);
	ASSERT_EQ(workload_check_signin(cf, CONFIG_WL_JOB, why, sizeof(why)),
	    -EACCES);
	ASSERT_TRUE(
	    strstr(why, "[workload.job] start_signin = no (default)") != NULL);
	ASSERT_EQ(workload_check_signin(cf, CONFIG_WL_SCHEDULED, why,
		      sizeof(why)),
	    -EACCES);
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_APP, storage, why,
		      sizeof(why)),
	    -EACCES);
	ASSERT_TRUE(
	    strstr(why, "[workload.app] identity = none (default)") != NULL);
	ASSERT_EQ(workload_check_sdk(cf, CONFIG_WL_APP, why, sizeof(why)),
	    -EACCES);
	ASSERT_EQ(workload_check_sdk(cf, CONFIG_WL_JOB, why, sizeof(why)), 0);
	ASSERT_EQ(cf->cgroups, 1);
	ASSERT_EQ(cf->peer_pidfd, 1);
	ASSERT_STREQ(cf->cgroup_prefix, "/user.slice/");
	config_free(cf);
}

TEST(lines_named)
{
	struct config *cf = parse(BASE "[workload.job]\nscopes = graph\n"
				       "[workload.default]\nsdk = no\n");
	char why[512];

	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_JOB,
		      "https://storage.azure.com/.default", why, sizeof(why)),
	    -EACCES);
	ASSERT_TRUE(
	    strstr(why, "[workload.job] scopes = graph (t.conf:9)") != NULL);
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_JOB, "graph", why,
		      sizeof(why)),
	    0);
	ASSERT_EQ(workload_check_sdk(cf, CONFIG_WL_DEFAULT, why, sizeof(why)),
	    -EACCES);
	ASSERT_TRUE(
	    strstr(why, "[workload.default] sdk = no (t.conf:11)") != NULL);
	config_free(cf);
}

TEST(strictest)
{
	struct config *cf =
	    parse(BASE "[workload.workspace]\nscopes = graph\n");
	int k1[] = { CONFIG_WL_WORKSPACE, CONFIG_WL_APP, CONFIG_WL_JOB };
	int k2[] = { CONFIG_WL_DEFAULT, CONFIG_WL_WORKSPACE };
	int k3[] = { CONFIG_WL_WORKSPACE, CONFIG_WL_SCHEDULED };

	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(workload_strictest(cf, k1, 0), -1);
	ASSERT_EQ(workload_strictest(cf, k1, 3), 1); /* app: no identity */
	ASSERT_EQ(workload_strictest(cf, k2, 2), 1); /* fewer scopes */
	ASSERT_EQ(workload_strictest(cf, k3, 2), 1); /* no sign-in */
	config_free(cf);
}

TEST(bad_config)
{
	/* identity = app without the app's credential (client_auth none). */
	ASSERT_TRUE(parse(BASE "[workload.app]\nidentity = app\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "t.conf:9:") != NULL);
	ASSERT_TRUE(strstr(errbuf,
			"needs [entra] client_auth = "
			"certificate|federated|secret") != NULL);
	ASSERT_TRUE(
	    parse(BASE "[workload.job]\nidentity = user-or-app\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "identity = user-or-app needs") != NULL);
	ASSERT_TRUE(parse(BASE "[workload.job]\nidentity = root\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "must be none, user") != NULL);
	ASSERT_TRUE(
	    parse(BASE "[workload.job]\nscopes = storage nope\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "t.conf:9:") != NULL);
	ASSERT_TRUE(strstr(errbuf, "unknown alias 'nope'") != NULL);
	ASSERT_TRUE(parse(BASE "[workload.batch]\nsdk = no\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "unknown section") != NULL);
	ASSERT_TRUE(
	    parse(BASE "[sessions]\ncgroup_prefix = user.slice\n") == NULL);
	ASSERT_TRUE(strstr(errbuf, "cgroup path") != NULL);
	ASSERT_TRUE(
	    parse(BASE "[sessions]\ncgroup_prefix = /a/../b\n") == NULL);
}

TEST(identity_app_with_client_auth)
{
	struct config *cf =
	    parse(BASE "[workload.app]\nidentity = app\n"
		       "scopes = storage\n"
		       "[workload.job]\nidentity = user-or-app\n"
		       "[entra]\nclient_auth = secret\n"
		       "client_secret_file = /etc/credd/s\n");
	char why[512];

	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(cf->workload[CONFIG_WL_APP].identity, CONFIG_IDENTITY_APP);
	ASSERT_EQ(cf->workload[CONFIG_WL_JOB].identity,
	    CONFIG_IDENTITY_USER_OR_APP);
	ASSERT_STREQ(workload_identity_name(CONFIG_IDENTITY_APP), "app");
	/* The policy's scopes still apply to the app's token. */
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_APP,
		      "https://storage.azure.com/.default", why, sizeof(why)),
	    0);
	ASSERT_EQ(workload_check_token(cf, CONFIG_WL_APP,
		      "https://graph.microsoft.com/.default", why, sizeof(why)),
	    -EACCES);
	ASSERT_TRUE(
	    strstr(why, "[workload.app] scopes = storage (t.conf:10)") != NULL);
	/* An app never starts a sign-in (its default). */
	ASSERT_EQ(workload_check_signin(cf, CONFIG_WL_APP, why, sizeof(why)),
	    -EACCES);
	config_free(cf);
}

TEST(kinds)
{
	ASSERT_EQ(config_workload_kind("job"), CONFIG_WL_JOB);
	ASSERT_EQ(config_workload_kind("app"), CONFIG_WL_APP);
	ASSERT_EQ(config_workload_kind("batch"), -1);
	ASSERT_EQ(config_workload_kind(""), -1);
	ASSERT_EQ(config_workload_kind(NULL), -1);
	ASSERT_STREQ(config_workload_name(CONFIG_WL_SCHEDULED), "scheduled");
}

int
main(void)
{
	RUN(defaults);
	RUN(lines_named);
	RUN(strictest);
	RUN(bad_config);
	RUN(identity_app_with_client_auth);
	RUN(kinds);
	TEST_MAIN_END();
}
