/*
 * test_sockdiag.c - the owner uid of a loopback TCP peer: our own
 * connection (IPv4 and IPv6), the direction of the tuple, an unknown
 * tuple, and, as root, a peer that connects as another uid (fork +
 * setuid to nobody; skipped without root).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "sockdiag.h"
#include "test.h"

#define OTHER_UID 65534

/* A listener on loopback port 0; its address in *ss. -1 when af is off. */
static int
listener(int af, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	int fd;

	fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (af == AF_INET) {
		s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&s4, sizeof(s4)) < 0)
			goto fail;
	} else {
		s6.sin6_addr = in6addr_loopback;
		if (bind(fd, (struct sockaddr *)&s6, sizeof(s6)) < 0)
			goto fail;
	}
	if (listen(fd, 8) < 0)
		goto fail;
	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* Accept one connection; the peer's and our own address. */
static int
accept_one(int lfd, struct sockaddr_storage *peer, struct sockaddr_storage *local)
{
	socklen_t pl = sizeof(*peer), ll = sizeof(*local);
	int fd;

	fd = accept4(lfd, (struct sockaddr *)peer, &pl, SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	if (getsockname(fd, (struct sockaddr *)local, &ll) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
self_case(int af)
{
	struct sockaddr_storage la, peer, local;
	socklen_t ll;
	uid_t uid = 0;
	int lfd, cfd, afd;

	lfd = listener(af, &la, &ll);
	if (lfd < 0) {
		printf("  (address family %d unavailable: skipped)\n", af);
		return;
	}
	cfd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(cfd >= 0);
	ASSERT_EQ(connect(cfd, (struct sockaddr *)&la, ll), 0);
	afd = accept_one(lfd, &peer, &local);
	ASSERT_TRUE(afd >= 0);
	ASSERT_TRUE(sockdiag_is_loopback((struct sockaddr *)&peer));
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&peer,
	    (struct sockaddr *)&local, &uid), 0);
	ASSERT_EQ(uid, geteuid());
	/* Reversed: our accepted socket, also ours (the direction is kept). */
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&local,
	    (struct sockaddr *)&peer, &uid), 0);
	ASSERT_EQ(uid, geteuid());
	/* A tuple nobody has. */
	if (af == AF_INET)
		((struct sockaddr_in *)&peer)->sin_port = htons(1);
	else
		((struct sockaddr_in6 *)&peer)->sin6_port = htons(1);
	ASSERT_ERR(sockdiag_peer_uid((struct sockaddr *)&peer,
	    (struct sockaddr *)&local, &uid), -ENOENT);
	close(afd);
	close(cfd);
	close(lfd);
}

TEST(test_self_v4)
{
	self_case(AF_INET);
}

TEST(test_self_v6)
{
	self_case(AF_INET6);
}

TEST(test_loopback)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

	s4.sin_addr.s_addr = htonl(0x7f000005);
	ASSERT_TRUE(sockdiag_is_loopback((struct sockaddr *)&s4));
	s4.sin_addr.s_addr = htonl(0x0a000001);
	ASSERT_TRUE(!sockdiag_is_loopback((struct sockaddr *)&s4));
	s6.sin6_addr = in6addr_loopback;
	ASSERT_TRUE(sockdiag_is_loopback((struct sockaddr *)&s6));
	ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr), 1);
	ASSERT_TRUE(sockdiag_is_loopback((struct sockaddr *)&s6));
	ASSERT_EQ(inet_pton(AF_INET6, "fe80::1", &s6.sin6_addr), 1);
	ASSERT_TRUE(!sockdiag_is_loopback((struct sockaddr *)&s6));
}

static void
other_case(int af)
{
	struct sockaddr_storage la, peer, local;
	socklen_t ll;
	uid_t uid = 0;
	int lfd, afd, status, pfd[2];
	pid_t pid;
	char c;

	lfd = listener(af, &la, &ll);
	if (lfd < 0) {
		printf("  (address family %d unavailable: skipped)\n", af);
		return;
	}
	ASSERT_EQ(pipe(pfd), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int fd;

		close(pfd[1]);
		if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
		    setuid(OTHER_UID) < 0)
			_exit(2);
		fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&la, ll) < 0)
			_exit(3);
		(void)!read(pfd[0], &c, 1);	/* hold it open until told */
		_exit(0);
	}
	close(pfd[0]);
	afd = accept_one(lfd, &peer, &local);
	ASSERT_TRUE(afd >= 0);
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&peer,
	    (struct sockaddr *)&local, &uid), 0);
	ASSERT_EQ(uid, OTHER_UID);
	/* Our end of the same connection is ours: the direction matters. */
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&local,
	    (struct sockaddr *)&peer, &uid), 0);
	ASSERT_EQ(uid, geteuid());
	(void)!write(pfd[1], "x", 1);
	close(pfd[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(afd);
	close(lfd);
}

TEST(test_other_uid)
{
	if (geteuid() != 0) {
		printf("  (not root: the other-uid case is skipped)\n");
		return;
	}
	other_case(AF_INET);
	other_case(AF_INET6);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_self_v4);
	RUN(test_self_v6);
	RUN(test_loopback);
	RUN(test_other_uid);
	TEST_MAIN_END();
}
