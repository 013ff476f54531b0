/*
 * sockdiag.c - the owner uid of a loopback TCP peer through
 * NETLINK_SOCK_DIAG (inet_diag, exact lookup by the 4-tuple).
 *
 * A request without NLM_F_DUMP makes the kernel look up one socket with
 * inet_lookup(saddr = id.dst, daddr = id.src, ...): id.src/sport are the
 * wanted socket's local end, id.dst/dport its remote end. The answer (an
 * inet_diag_msg or an NLMSG_ERROR) is queued before sendmsg returns.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "entra/util.h"

#include "sockdiag.h"

int
sockdiag_is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    s6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/* Fill one end of the id: address bytes (network order) and port. */
static int
fill_end(const struct sockaddr *sa, __be32 addr[4], __be16 *port)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)(const void *)sa;
		memcpy(addr, &s4->sin_addr, sizeof(s4->sin_addr));
		*port = s4->sin_port;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(addr, &s6->sin6_addr, sizeof(s6->sin6_addr));
		*port = s6->sin6_port;
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* The request for the socket whose local end is peer, remote end local. */
static int
build_id(const struct sockaddr *peer, const struct sockaddr *local,
    struct inet_diag_sockid *id)
{
	int r;

	if (peer->sa_family != local->sa_family)
		return -EAFNOSUPPORT;
	memset(id, 0, sizeof(*id));
	id->idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	r = fill_end(peer, id->idiag_src, &id->idiag_sport);
	if (r == 0)
		r = fill_end(local, id->idiag_dst, &id->idiag_dport);
	return r;
}

/* NLMSG_DATA without casting const away (clang's -Wcast-qual). */
static const void *
payload(const struct nlmsghdr *h)
{
	return (const char *)h + NLMSG_HDRLEN;
}

int
sockdiag_check_reply(const void *buf, size_t len, const struct sockaddr *peer,
    const struct sockaddr *local, uid_t *uid)
{
	const struct inet_diag_msg *dm;
	const struct nlmsgerr *e;
	const struct nlmsghdr *h;
	struct inet_diag_sockid id;
	size_t alen, off;
	int r;

	*uid = (uid_t)-1;
	r = build_id(peer, local, &id);
	if (r < 0)
		return r;
	alen = peer->sa_family == AF_INET ? 4 : 16;
	r = -ENOENT;
	for (off = 0; off < len && len - off >= sizeof(*h);
	     off += NLMSG_ALIGN(h->nlmsg_len)) {
		h = (const struct nlmsghdr *)(const void *)((const char *)buf +
		    off);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - off)
			break; /* truncated: nothing after it can be trusted */
		if (h->nlmsg_type == NLMSG_ERROR) {
			e = payload(h);
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) &&
			    e->error < 0)
				r = e->error;
			break;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(*dm)))
			continue;
		dm = payload(h);
		/* Exactly the socket we asked for, in that direction. */
		if (dm->idiag_family != peer->sa_family ||
		    dm->id.idiag_sport != id.idiag_sport ||
		    dm->id.idiag_dport != id.idiag_dport ||
		    memcmp(dm->id.idiag_src, id.idiag_src, alen) != 0 ||
		    memcmp(dm->id.idiag_dst, id.idiag_dst, alen) != 0)
			continue;
		/* Closed early (time-wait, FIN_WAIT*, ...): no owner to tell. */
		if (dm->idiag_state != TCP_ESTABLISHED)
			return -ENOTCONN;
		/* An orphan (its owner closed it): its uid proves nothing now. */
		if (dm->idiag_inode == 0)
			return -ESRCH;
		*uid = (uid_t)dm->idiag_uid;
		return 0;
	}
	return r;
}

int
sockdiag_peer_uid(const struct sockaddr *peer, const struct sockaddr *local,
    uid_t *uid)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg;
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	union {
		char buf[8192];
		struct nlmsghdr align;
	} rx;
	ssize_t n;
	int fd, r;

	*uid = (uid_t)-1;
	memset(&msg, 0, sizeof(msg));
	r = build_id(peer, local, &msg.req.id);
	if (r < 0)
		return r;
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.nlh.nlmsg_seq = 1;
	msg.req.sdiag_family = (__u8)peer->sa_family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	/* Every state: the answer's state says why a socket is refused. */
	msg.req.idiag_states = ~0u;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	do
		n = sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr,
		    sizeof(nladdr));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	do
		n = recv(fd, rx.buf, sizeof(rx.buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		goto out;
	}
	r = sockdiag_check_reply(rx.buf, (size_t)n, peer, local, uid);
out:
	util_closep(&fd);
	return r;
}
