// SPDX-License-Identifier: GPL-2.0
/*
 * qkd_sample: a small out-of-tree module to debug with qemu-kernel-debug.
 *
 * It registers the misc device /dev/qkd_sample. Commands add, count and reset items on a
 * global list; they arrive either as ioctls (qkd_sample_ctl, see qkd_sample.h) or as text
 * written to the device, because busybox has no applet that issues an ioctl:
 *
 *   echo add 5 > /dev/qkd_sample     qkd_sample_write -> qkd_sample_do_cmd(ADD, 5, "write")
 *   echo 5 > /dev/qkd_sample         the same
 *   qkd_sample_ctl add 5             qkd_sample_ioctl -> qkd_sample_do_cmd(ADD, 5, "ioctl")
 *   cat /dev/qkd_sample              qkd_sample_read: counters and the items, as text
 *
 * Failures on demand, for the debugger's exception filters and the kernel-log tools (run them
 * from a child shell: an Oops kills the task that wrote):
 *
 *   echo fault warn > /dev/qkd_sample    WARN_ON(): a warning, and the write goes on
 *   echo fault bug > /dev/qkd_sample     BUG(): "kernel BUG at", an Oops
 *   echo fault null > /dev/qkd_sample    a NULL pointer dereference, an Oops
 *   echo fault oob > /dev/qkd_sample     a heap write past a kmalloc'd buffer (KFENCE or KASAN)
 *   echo fault ubsan > /dev/qkd_sample   an array index out of bounds (UBSAN), and the write goes on
 *   echo fault panic > /dev/qkd_sample   panic()
 *
 * A timer bumps qkd_sample_ticks every second while the module is loaded.
 *
 * The "qkd-test:" comments mark lines the debugger's tests put breakpoints on (they find
 * the line numbers by searching for the markers); each sits on a line that has code.
 * The functions they are in are noinline so each exists once, under its own name.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/delay.h>
#include <linux/init.h>
#include <linux/kfence.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/uaccess.h>

#include "qkd_sample.h"

#define QKD_SAMPLE_TAG_LEN 16
/* Longest command line write accepts, e.g. "add -2147483648 some-tag". */
#define QKD_SAMPLE_LINE_MAX 64
/* A multiple of every arch's kmalloc alignment, so a KFENCE object can end on a page boundary. */
#define QKD_SAMPLE_OOB_LEN 128
#define QKD_SAMPLE_OOB_TRIES 5000

static int start_value = 42;
module_param(start_value, int, 0444);
MODULE_PARM_DESC(start_value, "Value of the item added at load time (default 42)");

static char *greeting = "hello";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "Printed when the module loads");

struct qkd_sample_item {
	int value;
	char tag[QKD_SAMPLE_TAG_LEN];
	struct list_head node;
};

struct qkd_sample_state {
	int opens;
	unsigned long last_value;
	unsigned int nr_items;
	struct list_head items;
	/* Guards every member: commands, reads and opens take it. */
	struct mutex lock;
};

/*
 * Not static: these are the module's globals a debugger session reads by name, like any
 * global of a driver; nothing outside this file links against them.
 */
struct qkd_sample_state qkd_sample_state = {
	.items = LIST_HEAD_INIT(qkd_sample_state.items),
	.lock = __MUTEX_INITIALIZER(qkd_sample_state.lock),
};
/* Commands run so far, from either path. */
unsigned long qkd_sample_count;
/* Timer ticks since load, one a second. */
unsigned long qkd_sample_ticks;

static struct timer_list qkd_sample_timer;

static void qkd_sample_tick(struct timer_list *t)
{
	qkd_sample_ticks++; /* qkd-test: tick */
	mod_timer(t, jiffies + HZ);
}

/* Caller holds qkd_sample_state.lock. */
static int qkd_sample_add_item(int value, const char *tag)
{
	struct qkd_sample_item *item = kzalloc(sizeof(*item), GFP_KERNEL);

	if (!item)
		return -ENOMEM;
	item->value = value;
	strscpy(item->tag, tag, sizeof(item->tag));
	list_add_tail(&item->node, &qkd_sample_state.items);
	qkd_sample_state.nr_items++;
	qkd_sample_state.last_value = value;
	return qkd_sample_state.nr_items;
}

/* Caller holds qkd_sample_state.lock. */
static void qkd_sample_free_items(void)
{
	struct qkd_sample_item *item, *next;

	list_for_each_entry_safe(item, next, &qkd_sample_state.items, node) {
		list_del(&item->node);
		kfree(item);
	}
	qkd_sample_state.nr_items = 0;
}

/*
 * The one command dispatcher, shared by write and ioctl; `origin` becomes the tag of an
 * added item unless the written line named one.
 */
static noinline long qkd_sample_do_cmd(unsigned int cmd, int arg, const char *origin)
{
	long ret;

	qkd_sample_count++; /* qkd-test: cmd-entry */
	mutex_lock(&qkd_sample_state.lock);
	switch (cmd) {
	case QKD_SAMPLE_IOC_ADD:
		ret = qkd_sample_add_item(arg, origin);
		break;
	case QKD_SAMPLE_IOC_COUNT:
		ret = qkd_sample_state.nr_items;
		break;
	case QKD_SAMPLE_IOC_RESET:
		qkd_sample_free_items();
		ret = 0;
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&qkd_sample_state.lock);
	return ret;
}

/*
 * The failures `echo fault KIND` asks for, each in its own function so a report names it.
 * Their arguments come through `qkd_sample_fault_arg` (volatile) so GCC neither proves the
 * faults away nor clones the functions for a constant (a `.constprop.0` in every report).
 * WARN_ON() and "kernel BUG at" need CONFIG_BUG (and DEBUG_BUGVERBOSE for the file:line);
 * without it BUG() is a bare invalid-opcode Oops and WARN_ON() prints nothing.
 */
struct qkd_sample_victim {
	int value;
	char tag[QKD_SAMPLE_TAG_LEN];
};

static struct {
	struct qkd_sample_victim *victim;
	int why;
} volatile qkd_sample_fault_arg = { NULL, 1 };

/* Where a faulting load's value goes: a statement of its own keeps the load on its line (GCC gives a returned load the closing brace's line on arm64). */
static volatile int qkd_sample_sink;

static noinline int qkd_sample_fault_null(struct qkd_sample_victim *victim)
{
	struct qkd_sample_victim *volatile p = victim;
	int value = p->value; /* qkd-test: fault-null */

	qkd_sample_sink = value;
	return value;
}

static noinline void qkd_sample_fault_bug(int why)
{
	if (why > 0)
		BUG(); /* qkd-test: fault-bug */
}

static noinline int qkd_sample_fault_warn(int why)
{
	return WARN_ON(why > 0); /* qkd-test: fault-warn */
}

/*
 * A heap write one byte past a kmalloc'd buffer. KASAN catches any such write; KFENCE only
 * one allocation in a while (kfence.sample_interval, 100 ms by default), placed at either end
 * of a page between guard pages: allocate until one ends right where a guard page begins,
 * so the write faults at once and KFENCE reports it at this line.
 */
static noinline long qkd_sample_fault_oob(void)
{
	char *volatile buf = NULL;
	int tries;

	if (!IS_ENABLED(CONFIG_KASAN) && !IS_ENABLED(CONFIG_KFENCE))
		return -EOPNOTSUPP;
	for (tries = 0; tries < QKD_SAMPLE_OOB_TRIES; tries++) {
		buf = kmalloc(QKD_SAMPLE_OOB_LEN, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		if (IS_ENABLED(CONFIG_KASAN) ||
		    (is_kfence_address(buf) && offset_in_page(buf + QKD_SAMPLE_OOB_LEN) == 0))
			break;
		kfree(buf);
		buf = NULL;
		msleep(1);
	}
	if (!buf)
		return -EAGAIN;
	buf[QKD_SAMPLE_OOB_LEN] = 'x'; /* qkd-test: fault-oob */
	kfree(buf);
	return 0;
}

/* Reads one element past a fixed-size array: UBSAN's bounds check (this file opts in, see Kbuild). */
static int qkd_sample_slots[4];

static noinline int qkd_sample_fault_ubsan(int why)
{
	int i = ARRAY_SIZE(qkd_sample_slots) - 1 + why;
	int value = qkd_sample_slots[i]; /* qkd-test: fault-ubsan */

	qkd_sample_sink = value;
	return value;
}

static noinline void qkd_sample_fault_panic(const char *kind)
{
	panic("qkd_sample: panic on request (fault %s)", kind); /* qkd-test: fault-panic */
}

static long qkd_sample_fault(const char *kind)
{
	pr_info("fault %s on request\n", kind);
	if (!strcmp(kind, "null"))
		return qkd_sample_fault_null(qkd_sample_fault_arg.victim);
	if (!strcmp(kind, "bug")) {
		qkd_sample_fault_bug(qkd_sample_fault_arg.why);
		return 0;
	}
	if (!strcmp(kind, "warn"))
		return qkd_sample_fault_warn(qkd_sample_fault_arg.why) ? 0 : -EINVAL;
	if (!strcmp(kind, "oob"))
		return qkd_sample_fault_oob();
	if (!strcmp(kind, "ubsan"))
		return qkd_sample_fault_ubsan(qkd_sample_fault_arg.why);
	if (!strcmp(kind, "panic"))
		qkd_sample_fault_panic(kind);
	return -EINVAL;
}

/* "add N [tag]", a bare number (add it), "count", "reset" or "fault KIND". */
static long qkd_sample_run_line(char *line)
{
	char kind[8];
	char tag[QKD_SAMPLE_TAG_LEN] = "write";
	char *cmd = strim(line);
	int value;

	if (!kstrtoint(cmd, 0, &value))
		return qkd_sample_do_cmd(QKD_SAMPLE_IOC_ADD, value, tag);
	if (sscanf(cmd, "add %d %15s", &value, tag) >= 1)
		return qkd_sample_do_cmd(QKD_SAMPLE_IOC_ADD, value, tag);
	if (!strcmp(cmd, "count"))
		return qkd_sample_do_cmd(QKD_SAMPLE_IOC_COUNT, 0, tag);
	if (!strcmp(cmd, "reset"))
		return qkd_sample_do_cmd(QKD_SAMPLE_IOC_RESET, 0, tag);
	if (sscanf(cmd, "fault %7s", kind) == 1)
		return qkd_sample_fault(kind);
	return -EINVAL;
}

static noinline ssize_t qkd_sample_write(struct file *file, const char __user *buf,
					 size_t len, loff_t *ppos)
{
	char line[QKD_SAMPLE_LINE_MAX];
	size_t n = min(len, sizeof(line) - 1);
	long ret;

	if (copy_from_user(line, buf, n)) /* qkd-test: write-entry */
		return -EFAULT;
	line[n] = '\0';
	ret = qkd_sample_run_line(line);
	if (ret < 0)
		return ret;
	return len;
}

static noinline long qkd_sample_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	int value = 0;

	if (_IOC_TYPE(cmd) != QKD_SAMPLE_IOC_MAGIC) /* qkd-test: ioctl-entry */
		return -ENOTTY;
	if (cmd == QKD_SAMPLE_IOC_ADD && get_user(value, (int __user *)arg))
		return -EFAULT;
	return qkd_sample_do_cmd(cmd, value, "ioctl");
}

static noinline ssize_t qkd_sample_read(struct file *file, char __user *buf, size_t len,
					loff_t *ppos)
{
	struct qkd_sample_item *item;
	size_t used = 0;
	ssize_t ret;
	char *text = kmalloc(PAGE_SIZE, GFP_KERNEL); /* qkd-test: read-entry */

	if (!text)
		return -ENOMEM;
	mutex_lock(&qkd_sample_state.lock);
	used += scnprintf(text + used, PAGE_SIZE - used,
			  "count %lu ticks %lu opens %d items %u last %lu\n",
			  qkd_sample_count, qkd_sample_ticks, qkd_sample_state.opens,
			  qkd_sample_state.nr_items, qkd_sample_state.last_value);
	list_for_each_entry(item, &qkd_sample_state.items, node)
		used += scnprintf(text + used, PAGE_SIZE - used, "%d %s\n", item->value, item->tag);
	mutex_unlock(&qkd_sample_state.lock);
	ret = simple_read_from_buffer(buf, len, ppos, text, used);
	kfree(text);
	return ret;
}

static int qkd_sample_open(struct inode *inode, struct file *file)
{
	mutex_lock(&qkd_sample_state.lock);
	qkd_sample_state.opens++;
	mutex_unlock(&qkd_sample_state.lock);
	return 0;
}

static const struct file_operations qkd_sample_fops = {
	.owner = THIS_MODULE,
	.open = qkd_sample_open,
	.read = qkd_sample_read,
	.write = qkd_sample_write,
	.unlocked_ioctl = qkd_sample_ioctl,
	.llseek = no_llseek,
};

static struct miscdevice qkd_sample_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "qkd_sample",
	.fops = &qkd_sample_fops,
	.mode = 0666,
};

static int __init qkd_sample_init(void)
{
	int ret;

	mutex_lock(&qkd_sample_state.lock); /* qkd-test: init-body */
	ret = qkd_sample_add_item(start_value, "init");
	mutex_unlock(&qkd_sample_state.lock);
	if (ret < 0)
		return ret;
	ret = misc_register(&qkd_sample_misc);
	if (ret) {
		mutex_lock(&qkd_sample_state.lock);
		qkd_sample_free_items();
		mutex_unlock(&qkd_sample_state.lock);
		return ret;
	}
	timer_setup(&qkd_sample_timer, qkd_sample_tick, 0);
	mod_timer(&qkd_sample_timer, jiffies + HZ);
	pr_info("loaded, start_value=%d greeting=%s\n", start_value, greeting);
	return 0;
}

static void __exit qkd_sample_exit(void)
{
	del_timer_sync(&qkd_sample_timer); /* qkd-test: exit-body */
	misc_deregister(&qkd_sample_misc);
	mutex_lock(&qkd_sample_state.lock);
	qkd_sample_free_items();
	mutex_unlock(&qkd_sample_state.lock);
	pr_info("unloaded after %lu commands, %lu ticks\n", qkd_sample_count, qkd_sample_ticks);
}

module_init(qkd_sample_init);
module_exit(qkd_sample_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("qemu-kernel-debug sample: a misc device with a list, a timer and ioctls");
MODULE_AUTHOR("qemu-kernel-debug");
