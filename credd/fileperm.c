/*
 * fileperm.c - the "closed to all but root and credd" check of
 * fileperm.h, ACL-aware.
 *
 * The access ACL is read raw from the "system.posix_acl_access" extended
 * attribute (Linux's xattr format: a little-endian version 2 header, then
 * {tag, perm, id} entries), so credd needs no libacl.
 *
 * Must never: accept read, write or search access for any uid but root
 * and our euid, or for any group; follow a path (it works on an fd).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileperm.h"

#define ACL_XATTR "system.posix_acl_access"
#define ACL_XATTR_VERSION 2
#define ACL_XATTR_MAX 4096 /* ~500 entries; systemd writes 4 or 5 */

/* Entry tags, as in <linux/posix_acl.h>. */
#define ACL_TAG_USER_OBJ 0x01
#define ACL_TAG_USER 0x02
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_GROUP 0x08
#define ACL_TAG_MASK 0x10
#define ACL_TAG_OTHER 0x20

static uint32_t
le16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t
le32(const unsigned char *p)
{
	return le16(p) | le16(p + 2) << 16;
}

/* Does the ACL in buf give access to anyone but the owner and our euid? */
static int
acl_private(const unsigned char *buf, size_t len)
{
	uint32_t mask = 7, tag, perm, id;
	size_t off;

	if (len < 4 || (len - 4) % 8 != 0 || le32(buf) != ACL_XATTR_VERSION)
		return -EPERM; /* a format we do not know: not private */
	for (off = 4; off < len; off += 8)
		if (le16(buf + off) == ACL_TAG_MASK)
			mask = le16(buf + off + 2) & 7;
	for (off = 4; off < len; off += 8) {
		tag = le16(buf + off);
		perm = le16(buf + off + 2) & 7;
		id = le32(buf + off + 4);
		switch (tag) {
		case ACL_TAG_USER_OBJ:
		case ACL_TAG_MASK:
			break;
		case ACL_TAG_USER:
			if ((perm & mask) != 0 && id != (uint32_t)geteuid())
				return -EPERM;
			break;
		case ACL_TAG_GROUP_OBJ:
		case ACL_TAG_GROUP:
		case ACL_TAG_OTHER:
			if ((perm & (tag == ACL_TAG_OTHER ? 7 : mask)) != 0)
				return -EPERM;
			break;
		default:
			return -EPERM;
		}
	}
	return 0;
}

int
fileperm_private(int fd, const struct stat *st)
{
	unsigned char buf[ACL_XATTR_MAX];
	ssize_t n;

	if (st->st_uid != 0 && st->st_uid != geteuid())
		return -EPERM;
	if ((st->st_mode & S_IRWXO) != 0)
		return -EPERM;
	if ((st->st_mode & S_IRWXG) == 0)
		return 0; /* ACL or not: the group class has nothing */
	/* Group bits set: only an ACL that names nobody else excuses them. */
	n = fgetxattr(fd, ACL_XATTR, buf, sizeof(buf));
	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP || errno == ERANGE ?
		    -EPERM :
		    -errno;
	return acl_private(buf, (size_t)n);
}
