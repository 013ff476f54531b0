/*
 * test_log.c - credd/log.c's key=value event lines (docs/operations.md):
 * log_value leaves bare tokens alone and quotes the rest with '"' and
 * '\' escaped, control bytes flattened and the length capped inside its
 * buffer; log_event_* write "fields msg=\"...\"" as one line with the
 * message escaped, and keep errno; log_errno_name gives symbolic names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#include "log.h"

TEST(value_bare_and_quoted)
{
	char b[LOG_VALUE_MAX];

	ASSERT_EQ(strcmp(log_value(b, "/run/credd/credd.sock"),
		      "/run/credd/credd.sock"),
	    0);
	ASSERT_EQ(strcmp(log_value(b, "alice@contoso.com"),
		      "alice@contoso.com"),
	    0);
	ASSERT_EQ(strcmp(log_value(b, "a b"), "\"a b\""), 0);
	ASSERT_EQ(strcmp(log_value(b, ""), "\"\""), 0);
	ASSERT_EQ(strcmp(log_value(b, NULL), "\"\""), 0);
	ASSERT_EQ(strcmp(log_value(b, "x\"y\\z"), "\"x\\\"y\\\\z\""), 0);
	ASSERT_EQ(strcmp(log_value(b, "a\nevent=forged"), "\"a?event=forged\""),
	    0);
}

TEST(value_capped)
{
	char b[LOG_VALUE_MAX], in[1000];

	memset(in, '"', sizeof(in) - 1); /* every byte escaped: worst case */
	in[sizeof(in) - 1] = '\0';
	log_value(b, in);
	ASSERT_TRUE(strlen(b) < LOG_VALUE_MAX);
	ASSERT_EQ(b[0], '"');
	ASSERT_EQ(b[strlen(b) - 1], '"');
	ASSERT_EQ(b[strlen(b) - 2], '"'); /* an escaped quote, whole */
	ASSERT_EQ(b[strlen(b) - 3], '\\');
	memset(in, 'a', sizeof(in) - 1);
	log_value(b, in);
	ASSERT_TRUE(strlen(b) < LOG_VALUE_MAX);
	ASSERT_EQ(b[0], '"'); /* too long to be bare: quoted and cut */
}

/* Run fn with stderr on a pipe; the text written, NUL-terminated. */
static void
capture(void (*fn)(void), char *out, size_t outsz)
{
	int p[2], saved;
	ssize_t n;

	ASSERT_EQ(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	ASSERT_TRUE(saved >= 0);
	ASSERT_TRUE(dup2(p[1], STDERR_FILENO) >= 0);
	fn();
	ASSERT_TRUE(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(p[1]);
	n = read(p[0], out, outsz - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
}

static void
emit_one(void)
{
	char q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 64];

	(void)snprintf(f, sizeof(f),
	    "event=store_write_failed user=%s error=%s",
	    log_value(q, "bob smith"), log_errno_name(ENOSPC));
	errno = EIO;
	log_event_warn(f, "user \"%s\": cannot write (%s)\n", "bob smith",
	    "a\\b");
	ASSERT_EQ(errno, EIO);
}

TEST(event_line)
{
	char out[2048], *p;

	log_init("credd", 1, 0);
	capture(emit_one, out, sizeof(out));
	p = strstr(out, ": warning: ");
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(
	    strcmp(p + strlen(": warning: "),
		"event=store_write_failed user=\"bob smith\" error=ENOSPC "
		"msg=\"user \\\"bob smith\\\": cannot write (a\\\\b)?\"\n"),
	    0);
}

TEST(errno_names)
{
	ASSERT_EQ(strcmp(log_errno_name(EADDRINUSE), "EADDRINUSE"), 0);
	ASSERT_EQ(strcmp(log_errno_name(EPERM), "EPERM"), 0);
	ASSERT_EQ(strcmp(log_errno_name(99999), "E?"), 0);
}

int
main(void)
{
	RUN(value_bare_and_quoted);
	RUN(value_capped);
	RUN(event_line);
	RUN(errno_names);
	TEST_MAIN_END();
}
