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
 * Must never: trust an address the peer names, or answer for a socket
 * that is not the exact peer (the direction of the tuple matters: our own
 * accepted socket has the same four values, reversed).
 */
#ifndef CREDD_SOCKDIAG_H
#define CREDD_SOCKDIAG_H

#include <sys/socket.h>
#include <sys/types.h>

/*
 * The owner uid of the TCP socket whose local end is peer and whose
 * remote end is local (our side of an accepted connection: peer from
 * getpeername/accept, local from getsockname). Both AF_INET or both
 * AF_INET6 (v4-mapped addresses are fine). 0 and *uid, or -ENOENT (no
 * such socket: gone, or not in this namespace), -EAFNOSUPPORT, -errno.
 */
int sockdiag_peer_uid(const struct sockaddr *peer, const struct sockaddr *local,
    uid_t *uid);

/* 1 when sa is a loopback address (127/8, ::1, ::ffff:127/104). */
int sockdiag_is_loopback(const struct sockaddr *sa);

#endif
