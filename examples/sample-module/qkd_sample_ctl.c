// SPDX-License-Identifier: GPL-2.0
/*
 * qkd_sample_ctl: issue qkd_sample's ioctls from a shell (busybox has no applet for that).
 *
 *   qkd_sample_ctl add N | count | reset
 *
 * Builds against glibc (make qkd_sample_ctl) or, in the sample guest, against the kernel
 * tree's nolibc (tools/include/nolibc), which needs no C library for the target.
 */
#ifndef NOLIBC
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#endif

#include "qkd_sample.h"

static int usage(void)
{
	fprintf(stderr, "usage: qkd_sample_ctl add N | count | reset\n");
	return 2;
}

int main(int argc, char **argv)
{
	int value = 0;
	unsigned long req;
	int fd, ret;

	if (argc == 3 && !strcmp(argv[1], "add")) {
		req = QKD_SAMPLE_IOC_ADD;
		value = atoi(argv[2]);
	} else if (argc == 2 && !strcmp(argv[1], "count")) {
		req = QKD_SAMPLE_IOC_COUNT;
	} else if (argc == 2 && !strcmp(argv[1], "reset")) {
		req = QKD_SAMPLE_IOC_RESET;
	} else {
		return usage();
	}
	fd = open(QKD_SAMPLE_DEVICE, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "qkd_sample_ctl: cannot open %s (is qkd_sample loaded?)\n", QKD_SAMPLE_DEVICE);
		return 1;
	}
	ret = ioctl(fd, req, &value);
	close(fd);
	if (ret < 0) {
		fprintf(stderr, "qkd_sample_ctl: ioctl failed\n");
		return 1;
	}
	printf("%d\n", ret);
	return 0;
}
