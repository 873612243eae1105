/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qkd_sample's ioctls, shared by the module and userspace (qkd_sample_ctl.c).
 * Magic 'q' with numbers 0x40-0x42: a range Documentation/userspace-api/ioctl/ioctl-number.rst
 * leaves unassigned ('q' 00-1F is serio, 80-FF telephony).
 */
#ifndef QKD_SAMPLE_H
#define QKD_SAMPLE_H

#include <linux/ioctl.h>

#define QKD_SAMPLE_DEVICE "/dev/qkd_sample"

#define QKD_SAMPLE_IOC_MAGIC 'q'
/* Add an item holding *(int *)arg; returns the number of items. */
#define QKD_SAMPLE_IOC_ADD _IOW(QKD_SAMPLE_IOC_MAGIC, 0x40, int)
/* Returns the number of items. */
#define QKD_SAMPLE_IOC_COUNT _IO(QKD_SAMPLE_IOC_MAGIC, 0x41)
/* Frees every item; returns 0. */
#define QKD_SAMPLE_IOC_RESET _IO(QKD_SAMPLE_IOC_MAGIC, 0x42)

#endif /* QKD_SAMPLE_H */
