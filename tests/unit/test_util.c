/*
 * test_util.c - lib/util.c: number parsing, fd flags, clocks, log-safe
 * strings, login-name checks and full writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entra/util.h"
#include "test.h"

TEST(test_strtonum)
{
	long long v = 42;

	ASSERT_EQ(util_strtonum("0", 0, 10, &v), 0);
	ASSERT_EQ(v, 0);
	ASSERT_EQ(util_strtonum("10", 0, 10, &v), 0);
	ASSERT_EQ(v, 10);
	ASSERT_EQ(util_strtonum("-5", -10, 10, &v), 0);
	ASSERT_EQ(v, -5);
	ASSERT_EQ(util_strtonum("+7", 0, 10, &v), 0);
	ASSERT_EQ(v, 7);
	v = 42;
	ASSERT_ERR(util_strtonum("11", 0, 10, &v), -ERANGE);
	ASSERT_ERR(util_strtonum("-1", 0, 10, &v), -ERANGE);
	ASSERT_ERR(util_strtonum("99999999999999999999", 0, LLONG_MAX, &v),
	    -ERANGE);
	ASSERT_EQ(v, 42); /* untouched on failure */
	ASSERT_ERR(util_strtonum("", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum("-", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum(" 5", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum("5 ", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum("5x", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum("0x5", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum("1.5", 0, 10, &v), -EINVAL);
	ASSERT_ERR(util_strtonum(NULL, 0, 10, &v), -EINVAL);
	ASSERT_EQ(v, 42);
}

TEST(test_fd_flags)
{
	int p[2], fd;

	ASSERT_EQ(pipe(p), 0);
	ASSERT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	ASSERT_EQ(util_set_nonblock(p[0]), 0);
	ASSERT_TRUE(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	ASSERT_EQ(util_set_nonblock(p[0]), 0); /* idempotent */
	ASSERT_EQ(util_set_cloexec(p[1]), 0);
	ASSERT_TRUE(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
	fd = p[0];
	util_closep(&fd);
	ASSERT_EQ(fd, -1);
	util_closep(&fd); /* -1: nothing */
	ASSERT_EQ(fd, -1);
	ASSERT_ERR(util_set_nonblock(p[0]), -EBADF);
	ASSERT_ERR(util_set_cloexec(p[0]), -EBADF);
	errno = 1234;
	util_closep(&p[1]);
	ASSERT_EQ(errno, 1234); /* keeps errno */
}

TEST(test_clocks)
{
	int64_t a, b;

	a = util_mono_ms();
	b = util_mono_ms();
	ASSERT_TRUE(a > 0);
	ASSERT_TRUE(b >= a);
	ASSERT_TRUE(util_now() > 1600000000); /* after 2020 */
}

TEST(test_log_str)
{
	char buf[16], small[4];

	ASSERT_STREQ(util_log_str(buf, sizeof(buf), "alice", 64), "alice");
	ASSERT_STREQ(util_log_str(buf, sizeof(buf), "a\nb\033c\x80", 64),
	    "a?b?c?");
	/* Cut by the cap: the marker fits inside the cap. */
	ASSERT_STREQ(util_log_str(buf, sizeof(buf), "abcdefghij", 8),
	    "abcde...");
	/* Exactly the cap: no marker. */
	ASSERT_STREQ(util_log_str(buf, sizeof(buf), "abcdefgh", 8), "abcdefgh");
	/* Cut by the buffer. */
	ASSERT_STREQ(util_log_str(buf, sizeof(buf), "0123456789abcdefghijkl",
			 100),
	    "0123456789ab...");
	ASSERT_STREQ(util_log_str(small, sizeof(small), "abcdef", 100), "...");
	ASSERT_STREQ(util_log_str(small, sizeof(small), "abc", 100), "abc");
	ASSERT_STREQ(util_log_str(buf, sizeof(buf), NULL, 10), "");
}

TEST(test_valid_username)
{
	ASSERT_TRUE(util_valid_username("alice"));
	ASSERT_TRUE(util_valid_username("a.b-c_d9"));
	ASSERT_TRUE(util_valid_username("_svc"));
	ASSERT_TRUE(util_valid_username("abcdefghijklmnopqrstuvwxyz012345"));
	ASSERT_TRUE(!util_valid_username("abcdefghijklmnopqrstuvwxyz0123456"));
	ASSERT_TRUE(!util_valid_username(""));
	ASSERT_TRUE(!util_valid_username(NULL));
	ASSERT_TRUE(!util_valid_username("-rf"));
	ASSERT_TRUE(!util_valid_username("Alice"));
	ASSERT_TRUE(!util_valid_username("a b"));
	ASSERT_TRUE(!util_valid_username("a/b"));
	ASSERT_TRUE(!util_valid_username("a@b"));
	ASSERT_TRUE(!util_valid_username("."));
	ASSERT_TRUE(!util_valid_username(".."));
	ASSERT_TRUE(!util_valid_username("a\n"));
}

TEST(test_write_all)
{
	char out[8192], in[8192];
	size_t got = 0;
	ssize_t n;
	int p[2];

	memset(out, 'z', sizeof(out));
	ASSERT_EQ(pipe(p), 0);
	ASSERT_EQ(util_write_all(p[1], out, sizeof(out)), 0);
	close(p[1]);
	while ((n = read(p[0], in + got, sizeof(in) - got)) > 0)
		got += (size_t)n;
	ASSERT_EQ(got, sizeof(out));
	ASSERT_TRUE(memcmp(in, out, sizeof(out)) == 0);
	close(p[0]);
	ASSERT_ERR(util_write_all(p[1], out, 1), -EBADF);
	ASSERT_EQ(util_write_all(p[1], out, 0), 0);
}

TEST(test_read_all)
{
	char in[4];
	int p[2];

	ASSERT_EQ(pipe(p), 0);
	ASSERT_EQ(util_write_all(p[1], "abcdef", 6), 0);
	ASSERT_EQ(util_read_all(p[0], in, 4), 0);
	ASSERT_TRUE(memcmp(in, "abcd", 4) == 0);
	close(p[1]);
	/* Two bytes left, four asked: the file ended first. */
	ASSERT_ERR(util_read_all(p[0], in, 4), -EBADMSG);
	close(p[0]);
	ASSERT_ERR(util_read_all(p[0], in, 1), -EBADF);
}

TEST(test_be)
{
	uint8_t b[8];

	util_put_be(b, 0x0102030405060708ULL, 8);
	ASSERT_TRUE(b[0] == 1 && b[7] == 8);
	ASSERT_EQ(util_get_be(b, 8), 0x0102030405060708ULL);
	util_put_be(b, 0xA1B2C3D4E5ULL, 4); /* keeps the low bytes */
	ASSERT_TRUE(b[0] == 0xB2 && b[3] == 0xE5);
	ASSERT_EQ(util_get_be(b, 4), 0xB2C3D4E5ULL);
	util_put_be(b, 0x1234, 2);
	ASSERT_EQ(util_get_be(b, 2), 0x1234);
	ASSERT_EQ(util_get_be(b, 0), 0);
}

TEST(test_unlink_prefixed)
{
	char dir[] = "/tmp/test_util.XXXXXX";
	int dfd, fd;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(dfd >= 0);
	fd = openat(dfd, ".tmp-1", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	fd = openat(dfd, ".tmp-2", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	fd = openat(dfd, "keep", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_EQ(util_unlink_prefixed(dfd, ".tmp-"), 0);
	ASSERT_TRUE(faccessat(dfd, ".tmp-1", F_OK, 0) < 0 && errno == ENOENT);
	ASSERT_TRUE(faccessat(dfd, ".tmp-2", F_OK, 0) < 0 && errno == ENOENT);
	ASSERT_EQ(faccessat(dfd, "keep", F_OK, 0), 0);
	ASSERT_EQ(unlinkat(dfd, "keep", 0), 0);
	close(dfd);
	ASSERT_EQ(rmdir(dir), 0);
	ASSERT_ERR(util_unlink_prefixed(-1, ".tmp-"), -EBADF);
}

int
main(void)
{
	RUN(test_strtonum);
	RUN(test_fd_flags);
	RUN(test_clocks);
	RUN(test_log_str);
	RUN(test_valid_username);
	RUN(test_write_all);
	RUN(test_read_all);
	RUN(test_be);
	RUN(test_unlink_prefixed);
	TEST_MAIN_END();
}
