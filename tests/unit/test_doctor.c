/*
 * test_doctor.c - credd/doctor*.c's pure parts: the PAM line splitter,
 * the module-argument table (against every argument pam_entra/args.h
 * documents, so a new module argument that doctor does not know fails
 * here), its value bounds (the same as pam_entra/args.c's), and the clock
 * skew verdicts. The checks themselves run in integration.doctor.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#include "doctor.h"

TEST(pam_line_split)
{
	const char *args;
	char inc[64];

	ASSERT_EQ(doctor_pam_line("session optional pam_entra.so\n", &args, inc,
		      sizeof(inc)),
	    1);
	ASSERT_EQ(strcmp(args, "\n"), 0);
	ASSERT_EQ(doctor_pam_line("  -session  [success=ok default=ignore] "
				  "/lib/security/pam_entra.so  quiet wait=3",
		      &args, inc, sizeof(inc)),
	    1);
	ASSERT_EQ(strcmp(args, "quiet wait=3"), 0);
	ASSERT_EQ(doctor_pam_line("@include common-session\n", &args, inc,
		      sizeof(inc)),
	    2);
	ASSERT_EQ(strcmp(inc, "common-session"), 0);
	/* Not ours: comments, other types, other modules, lookalikes. */
	ASSERT_EQ(doctor_pam_line("# session optional pam_entra.so", &args, inc,
		      sizeof(inc)),
	    0);
	ASSERT_EQ(doctor_pam_line("auth optional pam_entra.so", &args, inc,
		      sizeof(inc)),
	    0);
	ASSERT_EQ(doctor_pam_line("session optional pam_entra.so.bak", &args,
		      inc, sizeof(inc)),
	    0);
	ASSERT_EQ(doctor_pam_line("session optional xpam_entra.so", &args, inc,
		      sizeof(inc)),
	    0);
	ASSERT_EQ(doctor_pam_line("session optional", &args, inc, sizeof(inc)),
	    0);
	ASSERT_EQ(doctor_pam_line("", &args, inc, sizeof(inc)), 0);
	ASSERT_TRUE(args == NULL);
}

static void
expect(const char *arg, enum doctor_level want)
{
	const char *why = NULL;
	enum doctor_level got = doctor_pam_arg(arg, &why);

	if (got != want)
		printf("  %s: got %d, want %d\n", arg, (int)got, (int)want);
	ASSERT_EQ(got, want);
	ASSERT_TRUE(want == DOCTOR_OK ? why == NULL : why != NULL);
}

TEST(pam_arg_bounds)
{
	expect("quiet", DOCTOR_OK);
	expect("debug", DOCTOR_OK);
	expect("switch_signin", DOCTOR_OK);
	expect("socket=/run/credd/credd.sock", DOCTOR_OK);
	expect("socket=run/credd.sock", DOCTOR_FAIL);
	expect("timeout=1", DOCTOR_OK);
	expect("timeout=60000", DOCTOR_OK);
	expect("timeout=0", DOCTOR_FAIL);
	expect("timeout=60001", DOCTOR_FAIL);
	expect("timeout=2s", DOCTOR_FAIL);
	expect("wait=0", DOCTOR_OK);
	expect("wait=900", DOCTOR_OK);
	expect("wait=901", DOCTOR_FAIL);
	expect("workload=job", DOCTOR_OK);
	expect("workload=", DOCTOR_FAIL);
	expect("workload=a b", DOCTOR_FAIL);
	expect(
	    "workload=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa",
	    DOCTOR_FAIL); /* 65 */
	expect("switch_services=su,sudo", DOCTOR_OK);
	expect("switch_services=", DOCTOR_OK); /* empties the list */
	expect("switch_services=su,,sudo", DOCTOR_FAIL);
	expect("switch_services=,su", DOCTOR_FAIL);
	expect("minimum_uid=1000", DOCTOR_OK);
	expect("minimum_uid=-1", DOCTOR_FAIL);
	expect("colour=blue", DOCTOR_WARN);
	expect("quiet=1", DOCTOR_WARN);
	expect("socket", DOCTOR_WARN);
}

/* A good value for each placeholder args.h uses. */
static const char *
sample(const char *placeholder)
{
	static const char *const map[][2] = {
		{ "PATH", "/run/credd/credd.sock" },
		{ "MS", "2000" },
		{ "SECONDS", "30" },
		{ "NAME", "job" },
		{ "N", "1000" },
		{ "LIST", "su,sudo" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], placeholder) == 0)
			return map[i][1];
	return NULL;
}

/* Every argument pam_entra/args.h's header comment lists is known. */
TEST(pam_args_match_module)
{
	char path[1024], line[512], arg[256], *tok, *save, *eq;
	int in_list = 0, n = 0;
	size_t len;
	FILE *fp;

	/* This file is SRC/tests/unit/test_doctor.c (CMake passes it whole). */
	(void)snprintf(path, sizeof(path), "%s", __FILE__);
	len = strlen(path);
	if (len < strlen("tests/unit/test_doctor.c") || path[0] != '/')
		SKIP("built without an absolute __FILE__");
	(void)snprintf(path + len - strlen("tests/unit/test_doctor.c"),
	    sizeof(path) - (len - strlen("tests/unit/test_doctor.c")),
	    "pam_entra/args.h");
	fp = fopen(path, "r");
	if (fp == NULL)
		SKIP("no source tree at %s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strstr(line, "module arguments") != NULL) {
			in_list = 1;
			continue;
		}
		if (!in_list)
			continue;
		if (strstr(line, "Unknown") != NULL)
			break;
		for (tok = strtok_r(line, " \t*\n", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t*\n", &save)) {
			(void)snprintf(arg, sizeof(arg), "%s", tok);
			eq = strchr(arg, '=');
			if (eq != NULL) {
				const char *v = sample(eq + 1);

				ASSERT_TRUE(v != NULL);
				(void)snprintf(eq + 1,
				    sizeof(arg) - (size_t)(eq + 1 - arg), "%s",
				    v);
			}
			expect(arg, DOCTOR_OK);
			n++;
		}
	}
	fclose(fp);
	ASSERT_EQ(n, 9); /* socket timeout wait workload minimum_uid
			    switch_services switch_signin quiet debug */
}

TEST(skew_levels)
{
	ASSERT_EQ(doctor_skew_level(0), DOCTOR_OK);
	ASSERT_EQ(doctor_skew_level(DOCTOR_SKEW_WARN_S), DOCTOR_OK);
	ASSERT_EQ(doctor_skew_level(-DOCTOR_SKEW_WARN_S), DOCTOR_OK);
	ASSERT_EQ(doctor_skew_level(DOCTOR_SKEW_WARN_S + 1), DOCTOR_WARN);
	ASSERT_EQ(doctor_skew_level(-120), DOCTOR_WARN);
	ASSERT_EQ(doctor_skew_level(DOCTOR_SKEW_FAIL_S), DOCTOR_WARN);
	ASSERT_EQ(doctor_skew_level(DOCTOR_SKEW_FAIL_S + 1), DOCTOR_FAIL);
	ASSERT_EQ(doctor_skew_level(-600), DOCTOR_FAIL);
	ASSERT_EQ(doctor_skew_level(INT64_MIN + 1), DOCTOR_FAIL);
}

int
main(void)
{
	RUN(pam_line_split);
	RUN(pam_arg_bounds);
	RUN(pam_args_match_module);
	RUN(skew_levels);
	TEST_MAIN_END();
}
