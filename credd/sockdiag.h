/*
 * sockdiag.h - who owns the other end of a loopback TCP connection.
 *
 * Loopback TCP has no SO_PEERCRED, but both ends live in this network
 * namespace, so the kernel can tell the owner uid of the peer's socket:
 * one exact NETLINK_SOCK_DIAG (inet_diag) lookup by the 4-tuple. The
 * uid is the socket's creator (sk_uid), as ss -e shows it. The query is
 * a local syscall answered within sendmsg, so it is safe on the event
 * loop (the receive never blocks: MSG_DONTWAIT).
 *
 * Only an established socket that a process still holds proves a uid:
 * the kernel reports time-wait and request sockets with uid 0 and inode 0,
 * so a peer that closed before the lookup must never read as root.
 * Callers look up once per connection, at accept, before reading.
 *
 * Must never: trust an address the peer names, answer for a socket that
 * is not the exact peer (the direction of the tuple matters: our own
 * accepted socket has the same four values, reversed), or answer a uid
 * for an entry that is not TCP_ESTABLISHED or has no inode.
 */
#ifndef CREDD_SOCKDIAG_H
#define CREDD_SOCKDIAG_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * The owner uid of the TCP socket whose local end is peer and whose
 * remote end is local (our side of an accepted connection: peer from
 * getpeername/accept, local from getsockname). Both AF_INET or both
 * AF_INET6 (v4-mapped addresses are fine). 0 and *uid, or -ENOENT (no
 * such socket: gone, or not in this namespace), -ENOTCONN (the socket is
 * not established: the peer closed or shut down early), -ESRCH (no
 * process holds it any more: inode 0), -EAFNOSUPPORT, -errno. *uid is
 * (uid_t)-1 on failure.
 */
int sockdiag_peer_uid(const struct sockaddr *peer, const struct sockaddr *local,
    uid_t *uid);

/*
 * The checks of sockdiag_peer_uid on one NETLINK_SOCK_DIAG answer (buf,
 * len bytes, aligned for struct nlmsghdr): the first inet_diag_msg for
 * exactly that 4-tuple must be TCP_ESTABLISHED with a non-zero inode.
 * Same returns. Separate so tests can feed it answers the kernel gives
 * only in races.
 */
int sockdiag_check_reply(const void *buf, size_t len,
    const struct sockaddr *peer, const struct sockaddr *local, uid_t *uid);

/* 1 when sa is a loopback address (127/8, ::1, ::ffff:127/104). */
int sockdiag_is_loopback(const struct sockaddr *sa);

#endif
