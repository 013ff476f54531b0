/*
 * test_procenv.c - credd/procenv.c: the documented variables are
 * captured, NSS_WRAPPER_* stay, everything else leaves environ and its
 * text is wiped where it lay (what /proc/PID/environ shows).
 *
 * The environment here is a block of our own, laid out as the kernel
 * lays it out (NUL-separated strings), with environ pointing into it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#include "procenv.h"

static const char *const fake_env[] = {
	"SSLKEYLOGFILE=/tmp/keys.log",
	"https_proxy=http://127.0.0.1:9",
	"HTTPS_PROXY=http://127.0.0.1:9",
	"ALL_PROXY=socks5://127.0.0.1:9",
	"NO_PROXY=*",
	"OPENSSL_CONF=/tmp/hostile.cnf",
	"SSL_CERT_FILE=/tmp/wrong-ca.pem",
	"CURL_CA_BUNDLE=/tmp/wrong-ca.pem",
	"PGSSLMODE=disable",
	"CREDENTIALS_DIRECTORY=/run/credentials/credd.service",
	"LISTEN_FDS=2",
	"LISTEN_PID=4242",
	"LISTEN_FDNAMES=credd.sock:msi",
	"NOTIFY_SOCKET=/run/systemd/notify",
	"NSS_WRAPPER_PASSWD=/tmp/passwd",
	"NSS_WRAPPER_GROUP=/tmp/group",
	"NSS_WRAPPER_NOEQUALS",
	"LISTEN_FDS=99", /* a duplicate: the first one wins, as getenv */
	"SECRET_TOKEN=CANARY-must-not-stay",
	"EMPTY=",
};
#define NVARS (sizeof(fake_env) / sizeof(fake_env[0]))

static char block[4096];
static size_t block_len;
static char *vars[NVARS + 1];

/* Lay out the fake environment and point environ at it. */
static void
make_env(void)
{
	size_t i, off = 0, n;

	memset(block, 0, sizeof(block));
	for (i = 0; i < NVARS; i++) {
		n = strlen(fake_env[i]) + 1;
		memcpy(block + off, fake_env[i], n);
		vars[i] = block + off;
		off += n;
	}
	vars[NVARS] = NULL;
	block_len = off;
	environ = vars;
}

static size_t
count_env(void)
{
	size_t n = 0;

	while (environ != NULL && environ[n] != NULL)
		n++;
	return n;
}

/* The strings still in the block, as /proc/PID/environ would list them. */
static size_t
block_strings(const char **out, size_t max)
{
	size_t off = 0, n = 0;

	while (off < block_len) {
		if (block[off] == '\0') {
			off++;
			continue;
		}
		if (n < max)
			out[n] = block + off;
		n++;
		off += strlen(block + off) + 1;
	}
	return n;
}

TEST(test_captures_the_documented_variables)
{
	make_env();
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_STREQ(procenv_credentials_directory(),
	    "/run/credentials/credd.service");
	ASSERT_STREQ(procenv_listen_fds(), "2");
	ASSERT_STREQ(procenv_listen_pid(), "4242");
	ASSERT_STREQ(procenv_listen_fdnames(), "credd.sock:msi");
	ASSERT_STREQ(procenv_notify_socket(), "/run/systemd/notify");
}

TEST(test_clears_everything_else)
{
	make_env();
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_EQ(count_env(), 3);
	/* libsystemd's sd_notify reads it at each call. */
	ASSERT_STREQ(getenv("NOTIFY_SOCKET"), "/run/systemd/notify");
	ASSERT_STREQ(getenv("NSS_WRAPPER_PASSWD"), "/tmp/passwd");
	ASSERT_STREQ(getenv("NSS_WRAPPER_GROUP"), "/tmp/group");
	ASSERT_TRUE(getenv("SSLKEYLOGFILE") == NULL);
	ASSERT_TRUE(getenv("https_proxy") == NULL);
	ASSERT_TRUE(getenv("HTTPS_PROXY") == NULL);
	ASSERT_TRUE(getenv("ALL_PROXY") == NULL);
	ASSERT_TRUE(getenv("NO_PROXY") == NULL);
	ASSERT_TRUE(getenv("OPENSSL_CONF") == NULL);
	ASSERT_TRUE(getenv("SSL_CERT_FILE") == NULL);
	ASSERT_TRUE(getenv("PGSSLMODE") == NULL);
	/* Captured ones leave the environment too. */
	ASSERT_TRUE(getenv("CREDENTIALS_DIRECTORY") == NULL);
	ASSERT_TRUE(getenv("LISTEN_FDS") == NULL);
	ASSERT_TRUE(getenv("SECRET_TOKEN") == NULL);
}

TEST(test_wipes_removed_text_in_place)
{
	const char *left[NVARS];
	size_t n, i;

	make_env();
	ASSERT_EQ(procenv_capture(), 0);
	n = block_strings(left, NVARS);
	ASSERT_EQ(n, 3);
	for (i = 0; i < n; i++)
		ASSERT_TRUE((strncmp(left[i], "NSS_WRAPPER_", 12) == 0 &&
				strchr(left[i], '=') != NULL) ||
		    strcmp(left[i], "NOTIFY_SOCKET=/run/systemd/notify") == 0);
	ASSERT_TRUE(memmem(block, sizeof(block), "CANARY", 6) == NULL);
	ASSERT_TRUE(memmem(block, sizeof(block), "keys.log", 8) == NULL);
	/* environ points at the kernel's strings, not at copies. */
	ASSERT_TRUE(environ[0] >= block && environ[0] < block + block_len);
}

TEST(test_capture_again_sees_a_clean_environment)
{
	make_env();
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_TRUE(procenv_credentials_directory() == NULL);
	ASSERT_TRUE(procenv_listen_fds() == NULL);
	/* Kept in the environment for libsystemd, so seen again. */
	ASSERT_STREQ(procenv_notify_socket(), "/run/systemd/notify");
	ASSERT_EQ(count_env(), 3);
}

TEST(test_empty_and_missing)
{
	static char empty_dir[] = "CREDENTIALS_DIRECTORY=";
	static char *one[] = { empty_dir, NULL };

	environ = one;
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_TRUE(procenv_credentials_directory() == NULL);
	ASSERT_EQ(count_env(), 0);
	environ = NULL;
	ASSERT_EQ(procenv_capture(), 0);
	ASSERT_TRUE(procenv_listen_pid() == NULL);
	ASSERT_EQ(count_env(), 0);
}

int
main(void)
{
	RUN(test_captures_the_documented_variables);
	RUN(test_clears_everything_else);
	RUN(test_wipes_removed_text_in_place);
	RUN(test_capture_again_sees_a_clean_environment);
	RUN(test_empty_and_missing);
	TEST_MAIN_END();
}
