/*
 * test_fileperm.c - credd/fileperm.c: owner root or us, no group or
 * other access, and POSIX ACLs as systemd writes LoadCredential= files
 * on tmpfs (0400 + "user:credd:r--", so the mode shows 0440) accepted
 * while any ACL that lets someone else in is refused.
 *
 * ACLs are written raw (the system.posix_acl_access xattr), so no libacl
 * or setfacl is needed; on a file system without ACLs those cases are
 * skipped and say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "test.h"

#include "fileperm.h"

#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

static const char *dir;

struct ace {
	uint16_t tag, perm;
	uint32_t id;
};

static void
put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void
put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* Set an access ACL (entries in the kernel's order). 0, or -errno. */
static int
set_acl(const char *path, const struct ace *e, size_t n)
{
	unsigned char buf[4 + 8 * 16];
	size_t i;

	put32(buf, 2);
	for (i = 0; i < n; i++) {
		put16(buf + 4 + 8 * i, e[i].tag);
		put16(buf + 4 + 8 * i + 2, e[i].perm);
		put32(buf + 4 + 8 * i + 4, e[i].id);
	}
	if (setxattr(path, "system.posix_acl_access", buf, 4 + 8 * n, 0) < 0)
		return -errno;
	return 0;
}

/* Create path with mode (exactly), open it as credd does, check it. */
static int
check_file(const char *name, mode_t mode, const struct ace *acl, size_t n)
{
	char path[128];
	struct stat st;
	int fd, r;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1000 - errno;
	(void)close(fd);
	if (chmod(path, mode) < 0)
		return -1000 - errno;
	if (acl != NULL) {
		r = set_acl(path, acl, n);
		if (r < 0)
			return r == -EOPNOTSUPP ? -2000 : -1000 + r;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1000 - errno;
	r = fileperm_private(fd, &st);
	(void)close(fd);
	return r;
}

TEST(test_modes)
{
	ASSERT_EQ(check_file("a", 0400, NULL, 0), 0);
	ASSERT_EQ(check_file("b", 0600, NULL, 0), 0);
	ASSERT_EQ(check_file("c", 0700, NULL, 0), 0); /* owner bits: caller's */
	ASSERT_ERR(check_file("d", 0440, NULL, 0), -EPERM);
	ASSERT_ERR(check_file("e", 0404, NULL, 0), -EPERM);
	ASSERT_ERR(check_file("f", 0410, NULL, 0), -EPERM);
	ASSERT_ERR(check_file("g", 0401, NULL, 0), -EPERM);
	ASSERT_ERR(check_file("h", 0420, NULL, 0), -EPERM);
}

TEST(test_directories)
{
	struct stat st;
	char path[128];
	int fd;

	(void)snprintf(path, sizeof(path), "%s/subdir", dir);
	ASSERT_EQ(mkdir(path, 0500), 0);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	ASSERT_TRUE(fd >= 0 && fstat(fd, &st) == 0);
	ASSERT_EQ(fileperm_private(fd, &st), 0);
	ASSERT_EQ(chmod(path, 0755), 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_ERR(fileperm_private(fd, &st), -EPERM);
	ASSERT_EQ(chmod(path, 0710), 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_ERR(fileperm_private(fd, &st), -EPERM);
	(void)close(fd);
	ASSERT_EQ(rmdir(path), 0);
}

/* systemd's tmpfs layout and its near misses. */
TEST(test_acls)
{
	uint32_t me = (uint32_t)geteuid(), other = me + 4242;
	uint32_t grp = (uint32_t)getegid() + 4242;
	const struct ace systemd[] = {
		{ TAG_USER_OBJ, 4, 0 },
		{ TAG_USER, 4, me },
		{ TAG_GROUP_OBJ, 0, 0 },
		{ TAG_MASK, 4, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	const struct ace stranger[] = {
		{ TAG_USER_OBJ, 4, 0 },
		{ TAG_USER, 4, other },
		{ TAG_GROUP_OBJ, 0, 0 },
		{ TAG_MASK, 4, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	const struct ace both[] = {
		{ TAG_USER_OBJ, 4, 0 },
		{ TAG_USER, 4, me < other ? me : other },
		{ TAG_USER, 4, me < other ? other : me },
		{ TAG_GROUP_OBJ, 0, 0 },
		{ TAG_MASK, 4, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	const struct ace group_obj[] = {
		{ TAG_USER_OBJ, 4, 0 },
		{ TAG_USER, 4, me },
		{ TAG_GROUP_OBJ, 4, 0 },
		{ TAG_MASK, 4, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	const struct ace named_group[] = {
		{ TAG_USER_OBJ, 4, 0 },
		{ TAG_USER, 4, me },
		{ TAG_GROUP_OBJ, 0, 0 },
		{ TAG_GROUP, 4, grp },
		{ TAG_MASK, 4, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	/* A stranger's entry with a mask of nothing grants nothing. */
	const struct ace masked[] = {
		{ TAG_USER_OBJ, 6, 0 },
		{ TAG_USER, 4, other },
		{ TAG_GROUP_OBJ, 4, 0 },
		{ TAG_MASK, 0, 0 },
		{ TAG_OTHER, 0, 0 },
	};
	int r;

	r = check_file("acl-systemd", 0400, systemd, 5);
	if (r == -2000) {
		SKIP("no POSIX ACLs on %s", dir);
	}
	ASSERT_EQ(r, 0);
	ASSERT_ERR(check_file("acl-stranger", 0400, stranger, 5), -EPERM);
	ASSERT_ERR(check_file("acl-both", 0400, both, 6), -EPERM);
	ASSERT_ERR(check_file("acl-group-obj", 0400, group_obj, 5), -EPERM);
	ASSERT_ERR(check_file("acl-named-group", 0400, named_group, 6), -EPERM);
	ASSERT_EQ(check_file("acl-masked", 0600, masked, 5), 0);
}

TEST(test_owner)
{
	struct stat st;
	char path[128];
	int fd;

	if (geteuid() != 0) {
		SKIP("needs root to chown");
	}
	(void)snprintf(path, sizeof(path), "%s/owned", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0400);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(fchown(fd, 4242, 4242), 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	/* Root is not uid 4242, and the file is not root's. */
	ASSERT_ERR(fileperm_private(fd, &st), -EPERM);
	ASSERT_EQ(fchown(fd, 0, 0), 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_EQ(fileperm_private(fd, &st), 0);
	(void)close(fd);
}

int
main(void)
{
	dir = fixture_tmpdir("fileperm");
	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_modes);
	RUN(test_directories);
	RUN(test_acls);
	RUN(test_owner);
	TEST_MAIN_END();
}
