/*
 * test_sockdiag.c - the owner uid of a loopback TCP peer: our own
 * connection (IPv4 and IPv6), the direction of the tuple, an unknown
 * tuple, and, as root, a peer that connects as another uid (fork +
 * setuid to nobody; skipped without root). Issue 11 item 1: a peer that
 * sent and closed (time-wait, uid 0 and inode 0 in the kernel's answer),
 * reset, or shut its writing side before the lookup proves no uid; and
 * sockdiag_check_reply on answers the kernel gives only in races.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

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
accept_one(int lfd, struct sockaddr_storage *peer,
    struct sockaddr_storage *local)
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
		      (struct sockaddr *)&local, &uid),
	    0);
	ASSERT_EQ(uid, geteuid());
	/* Reversed: our accepted socket, also ours (the direction is kept). */
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&local,
		      (struct sockaddr *)&peer, &uid),
	    0);
	ASSERT_EQ(uid, geteuid());
	/* A tuple nobody has. */
	if (af == AF_INET)
		((struct sockaddr_in *)&peer)->sin_port = htons(1);
	else
		((struct sockaddr_in6 *)&peer)->sin6_port = htons(1);
	ASSERT_ERR(sockdiag_peer_uid((struct sockaddr *)&peer,
		       (struct sockaddr *)&local, &uid),
	    -ENOENT);
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

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);
}

enum early { EARLY_CLOSE, EARLY_RESET, EARLY_SHUTDOWN };

/*
 * A client that connects, sends a request and then closes (or resets,
 * or shuts its writing side) before we accept. The lookup, repeated
 * while the kernel moves the client's socket on, must never prove a uid.
 */
static void
early_case(int af, enum early how)
{
	static const char req[] =
	    "GET /metadata/identity/oauth2/token HTTP/1.1"
	    "\r\nHost: 127.0.0.1\r\nMetadata: true\r\n\r\n";
	struct linger lg = { 1, 0 };
	struct sockaddr_storage la, peer, local;
	socklen_t ll;
	uid_t uid = 0;
	int lfd, cfd, afd, i, rc = 0;

	lfd = listener(af, &la, &ll);
	if (lfd < 0) {
		printf("  (address family %d unavailable: skipped)\n", af);
		return;
	}
	cfd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(cfd >= 0);
	ASSERT_EQ(connect(cfd, (struct sockaddr *)&la, ll), 0);
	ASSERT_EQ(send(cfd, req, sizeof(req) - 1, 0),
	    (long long)sizeof(req) - 1);
	if (how == EARLY_RESET)
		ASSERT_EQ(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg,
			      sizeof(lg)),
		    0);
	if (how == EARLY_SHUTDOWN)
		ASSERT_EQ(shutdown(cfd, SHUT_WR), 0);
	else {
		close(cfd);
		cfd = -1;
	}
	afd = accept_one(lfd, &peer, &local);
	ASSERT_TRUE(afd >= 0);
	/* Loopback moves the client on within microseconds; allow 2 s. */
	for (i = 0; i < 400; i++) {
		rc = sockdiag_peer_uid((struct sockaddr *)&peer,
		    (struct sockaddr *)&local, &uid);
		if (rc < 0)
			break;
		sleep_ms(5);
	}
	if (rc == 0)
		FAILF("a peer that closed early was read as uid %u",
		    (unsigned)uid);
	ASSERT_TRUE(rc == -ENOTCONN || rc == -ESRCH || rc == -ENOENT);
	ASSERT_EQ(uid, (uid_t)-1);
	close(afd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
}

TEST(test_closed_early)
{
	early_case(AF_INET, EARLY_CLOSE);
	early_case(AF_INET6, EARLY_CLOSE);
}

TEST(test_reset_early)
{
	early_case(AF_INET, EARLY_RESET);
	early_case(AF_INET6, EARLY_RESET);
}

TEST(test_shut_down_early)
{
	early_case(AF_INET, EARLY_SHUTDOWN);
	early_case(AF_INET6, EARLY_SHUTDOWN);
}

/* A canned answer: one inet_diag_msg for (src, sport) -> (dst, dport). */
struct answer {
	struct nlmsghdr nlh;
	struct inet_diag_msg dm;
};

static void
answer_init(struct answer *a, uint8_t state, uint32_t uid, uint32_t inode)
{
	memset(a, 0, sizeof(*a));
	a->nlh.nlmsg_len = NLMSG_LENGTH(sizeof(a->dm));
	a->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	a->dm.idiag_family = AF_INET;
	a->dm.idiag_state = state;
	a->dm.idiag_uid = uid;
	a->dm.idiag_inode = inode;
	a->dm.id.idiag_sport = htons(40000); /* the peer's end */
	a->dm.id.idiag_dport = htons(50342); /* ours */
	a->dm.id.idiag_src[0] = htonl(0x7f000001);
	a->dm.id.idiag_dst[0] = htonl(0x7f000001);
}

TEST(test_check_reply)
{
	struct sockaddr_in peer = { .sin_family = AF_INET }, local = peer;
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	const struct sockaddr *p = (struct sockaddr *)&peer;
	const struct sockaddr *l = (struct sockaddr *)&local;
	struct {
		struct nlmsghdr nlh;
		struct nlmsgerr err;
	} e;
	struct answer a, two[2];
	uid_t uid;

	peer.sin_addr.s_addr = local.sin_addr.s_addr = htonl(0x7f000001);
	peer.sin_port = htons(40000);
	local.sin_port = htons(50342);
	/* Established and held: the uid. */
	answer_init(&a, TCP_ESTABLISHED, 1000, 4242);
	ASSERT_EQ(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), 0);
	ASSERT_EQ(uid, 1000);
	/* The finding: time-wait as the kernel reports it (uid 0, inode 0). */
	answer_init(&a, TCP_TIME_WAIT, 0, 0);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOTCONN);
	ASSERT_EQ(uid, (uid_t)-1);
	/* FIN_WAIT2 minisocket (owner closed), and a held half-closed one. */
	answer_init(&a, TCP_FIN_WAIT2, 0, 0);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOTCONN);
	answer_init(&a, TCP_FIN_WAIT2, 1000, 4242);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOTCONN);
	answer_init(&a, TCP_SYN_RECV, 0, 0);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOTCONN);
	/* Established but orphaned: no inode, no proof. */
	answer_init(&a, TCP_ESTABLISHED, 0, 0);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ESRCH);
	ASSERT_EQ(uid, (uid_t)-1);
	/* Another socket: our own end (reversed), another port or address. */
	answer_init(&a, TCP_ESTABLISHED, 0, 7);
	a.dm.id.idiag_sport = htons(50342);
	a.dm.id.idiag_dport = htons(40000);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOENT);
	answer_init(&a, TCP_ESTABLISHED, 0, 7);
	a.dm.id.idiag_src[0] = htonl(0x7f000002);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOENT);
	answer_init(&a, TCP_ESTABLISHED, 0, 7);
	a.dm.idiag_family = AF_INET6;
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOENT);
	/* A wrong entry first, then the right one: the right one counts. */
	answer_init(&two[0], TCP_ESTABLISHED, 0, 7);
	two[0].dm.id.idiag_sport = htons(1);
	answer_init(&two[1], TCP_ESTABLISHED, 1001, 9);
	ASSERT_EQ(sockdiag_check_reply(two, sizeof(two), p, l, &uid), 0);
	ASSERT_EQ(uid, 1001);
	/* Truncated answers: a short buffer, a length past the end. */
	answer_init(&a, TCP_ESTABLISHED, 1000, 4242);
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a) - 1, p, l, &uid),
	    -ENOENT);
	ASSERT_ERR(sockdiag_check_reply(&a, 3, p, l, &uid), -ENOENT);
	a.nlh.nlmsg_len = sizeof(a) + 64;
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOENT);
	a.nlh.nlmsg_len = NLMSG_LENGTH(4); /* too short for the message */
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p, l, &uid), -ENOENT);
	/* The kernel's "no such socket". */
	memset(&e, 0, sizeof(e));
	e.nlh.nlmsg_len = sizeof(e);
	e.nlh.nlmsg_type = NLMSG_ERROR;
	e.err.error = -ENOENT;
	ASSERT_ERR(sockdiag_check_reply(&e, sizeof(e), p, l, &uid), -ENOENT);
	/* Families must agree. */
	ASSERT_ERR(sockdiag_check_reply(&a, sizeof(a), p,
		       (struct sockaddr *)&v6, &uid),
	    -EAFNOSUPPORT);
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
	pid = fixture_fork();
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
		(void)!read(pfd[0], &c, 1); /* hold it open until told */
		_exit(0);
	}
	close(pfd[0]);
	afd = accept_one(lfd, &peer, &local);
	ASSERT_TRUE(afd >= 0);
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&peer,
		      (struct sockaddr *)&local, &uid),
	    0);
	ASSERT_EQ(uid, OTHER_UID);
	/* Our end of the same connection is ours: the direction matters. */
	ASSERT_EQ(sockdiag_peer_uid((struct sockaddr *)&local,
		      (struct sockaddr *)&peer, &uid),
	    0);
	ASSERT_EQ(uid, geteuid());
	(void)!write(pfd[1], "x", 1);
	close(pfd[1]);
	ASSERT_EQ(fixture_wait(pid, &status), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(afd);
	close(lfd);
}

TEST(test_other_uid)
{
	if (geteuid() != 0) {
		SKIP("not root: the other-uid case needs setuid");
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
	RUN(test_closed_early);
	RUN(test_reset_early);
	RUN(test_shut_down_early);
	RUN(test_check_reply);
	RUN(test_loopback);
	RUN(test_other_uid);
	TEST_MAIN_END();
}
