/*
 * fileperm.h - is a secret file (or the directory that holds it) closed
 * to everyone but root and credd?
 *
 * The rule for key files, the client secret and systemd's credentials
 * directory: owned by root or by our effective uid, and neither its
 * group nor others may read, write or enter it. A POSIX access ACL is
 * understood: systemd writes LoadCredential= files on tmpfs as root-owned
 * mode 0400 plus an ACL entry that lets the service user read (on ramfs,
 * where ACLs do not exist, it chowns them to the service user instead).
 * With an ACL the mode's group bits show the ACL mask, so they are
 * judged by the ACL: named-user entries may grant access to our euid
 * only, and the owning group and named groups get nothing.
 */
#ifndef CREDD_FILEPERM_H
#define CREDD_FILEPERM_H

#include <sys/stat.h>

/*
 * Check fd (opened by the caller, without following symlinks), whose
 * fstat is *st. The owner's own bits are the caller's business (a key
 * file must not be executable, say). 0 when private, -EPERM when not,
 * another -errno when the ACL cannot be read.
 */
int fileperm_private(int fd, const struct stat *st);

#endif
