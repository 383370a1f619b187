// SPDX-License-Identifier: GPL-2.0
/*
 * hostile.ko: a Linux kernel module that attacks the vlibos monitor from inside the Linux VM.
 * Each insmod makes one attack, chosen by a parameter, prints one line per attempt and one
 * summary line, then stays loaded doing nothing: `rmmod hostile` before the next insmod. (It
 * does not fail the load: busybox insmod retries a failed finit_module() with init_module(), so
 * every attack would run twice.) The fatal attacks (readrt, triplefault) do not return: the
 * monitor must stop the VM, and only the VM.
 *
 *   insmod hostile.ko attack=ipi          IPIs (fixed, NMI, INIT, SIPI, SMI) to APIC IDs outside
 *                                         the guest, by writing the xAPIC ICR (ioremap 0xfee00000)
 *   insmod hostile.ko attack=ioapic       reprogram the redirection entries of the I/O APIC pins
 *                                         the VM does not own (all but `own_pin`, default 3)
 *   insmod hostile.ko attack=ports        reset/power ports: 0xcf9, 0x64, 0x92, ACPI PM1a control
 *                                         (0x604 QEMU, 0xb004 Bochs), COM1 (0x3f8), CMOS
 *   insmod hostile.ko readrt=0xPHYS       map a physical address outside the VM and read it
 *   insmod hostile.ko attack=triplefault  empty IDT + int $3: a triple fault
 *
 * Line format (the test greps these): "vlibos-hostile: <attack>: attempted ..." per attempt,
 * "vlibos-hostile: <attack>: done ..." at the end of a non-fatal attack.
 */
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/io.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("vlibos");
MODULE_DESCRIPTION("vlibos isolation test: breaches attempted from inside the Linux VM");

static char *attack = "";
module_param(attack, charp, 0);
MODULE_PARM_DESC(attack, "ipi | ioapic | ports | readrt | triplefault");
static unsigned long readrt;
module_param(readrt, ulong, 0);
MODULE_PARM_DESC(readrt, "physical address to read (attack readrt; implies it)");
static int vcpus = -1;
module_param(vcpus, int, 0);
MODULE_PARM_DESC(vcpus, "the guest's APIC IDs are 0..vcpus-1 (default: num_possible_cpus())");
static int own_pin = 3;
module_param(own_pin, int, 0);
MODULE_PARM_DESC(own_pin, "the I/O APIC pin the VM owns (left alone); -1: none");

#define TAG "vlibos-hostile: "

/* ------------------------------------------------------------------------------------------ */
/* ipi: the xAPIC interrupt command register, through a mapping of our own. */

#define LAPIC_BASE 0xfee00000UL
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define ICR_BUSY (1u << 12)
#define ICR_LOGICAL (1u << 11)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define MODE_FIXED (0u << 8)
#define MODE_SMI (2u << 8)
#define MODE_NMI (4u << 8)
#define MODE_INIT (5u << 8)
#define MODE_SIPI (6u << 8)
#define SH_ALL_BUT_SELF (3u << 18)

static void __iomem *lapic;

static void icr_send(u32 high, u32 low)
{
	int spins = 10000;
	unsigned long flags;

	local_irq_save(flags);
	writel(high, lapic + APIC_ICR_HI);
	writel(low, lapic + APIC_ICR_LO);
	while ((readl(lapic + APIC_ICR_LO) & ICR_BUSY) && --spins)
		cpu_relax();
	local_irq_restore(flags);
}

static int attack_ipi(void)
{
	static const struct { const char *name; u32 low; } kinds[] = {
		{ "fixed vector 0x41", MODE_FIXED | 0x41 },
		{ "nmi", MODE_NMI },
		{ "init", MODE_INIT | ICR_ASSERT | ICR_LEVEL },
		{ "sipi vector 0x10", MODE_SIPI | 0x10 },
	};
	int n = vcpus > 0 ? vcpus : (int)num_possible_cpus();
	unsigned int outside = 0, refused = 0, shorthand = 0;
	unsigned int k;
	int id;

	lapic = ioremap(LAPIC_BASE, PAGE_SIZE);
	if (!lapic) {
		pr_info(TAG "ipi: ioremap of %#lx failed\n", LAPIC_BASE);
		return -ENOMEM;
	}
	pr_info(TAG "ipi: guest apic ids 0..%d, local apic %#lx mapped at %px\n", n - 1, LAPIC_BASE, lapic);
	/* Physical destinations outside the guest: every APIC ID from n to 7. */
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		for (id = n; id <= 7; id++) {
			pr_info(TAG "ipi: attempted %s to apic id %d (icr %#010x:%08x)\n", kinds[k].name, id,
				(u32)id << 24, kinds[k].low);
			icr_send((u32)id << 24, kinds[k].low);
			outside++;
		}
	}
	/* A logical (flat) destination naming APICs 1-7 only. */
	if (n == 1) {
		pr_info(TAG "ipi: attempted nmi to logical destination 0xfe (icr %#010x:%08x)\n",
			0xfeu << 24, MODE_NMI | ICR_LOGICAL);
		icr_send(0xfeu << 24, MODE_NMI | ICR_LOGICAL);
		outside++;
	}
	/* SMI: never delivered to a guest (refused). */
	pr_info(TAG "ipi: attempted smi to apic id %d\n", n);
	icr_send((u32)n << 24, MODE_SMI);
	refused++;
	/* All-excluding-self: the guest's "everybody" is its own vCPUs; on a one-vCPU guest it
	 * reaches nobody. Only sent when no sibling vCPU would take an NMI/INIT. */
	if (num_online_cpus() == 1) {
		for (k = 0; k < ARRAY_SIZE(kinds); k++) {
			pr_info(TAG "ipi: attempted %s to all excluding self\n", kinds[k].name);
			icr_send(0, kinds[k].low | SH_ALL_BUT_SELF);
			shorthand++;
		}
	} else {
		pr_info(TAG "ipi: all-excluding-self skipped: %u vCPUs online would get it\n", num_online_cpus());
	}
	iounmap(lapic);
	pr_info(TAG "ipi: done: outside=%u refused=%u shorthand=%u\n", outside, refused, shorthand);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ioapic: the redirection entries of the pins the VM does not own. */

#define IOAPIC_BASE 0xfec00000UL
#define IOREGSEL 0x00
#define IOWIN 0x10

static void __iomem *ioapic;

static u32 ioapic_read(u8 reg)
{
	writel(reg, ioapic + IOREGSEL);
	return readl(ioapic + IOWIN);
}

static void ioapic_write(u8 reg, u32 value)
{
	writel(reg, ioapic + IOREGSEL);
	writel(value, ioapic + IOWIN);
}

static int attack_ioapic(void)
{
	unsigned int pins, pin, written = 0, changed = 0;
	unsigned long flags;

	ioapic = ioremap(IOAPIC_BASE, PAGE_SIZE);
	if (!ioapic) {
		pr_info(TAG "ioapic: ioremap of %#lx failed\n", IOAPIC_BASE);
		return -ENOMEM;
	}
	pins = ((ioapic_read(1) >> 16) & 0xff) + 1;
	pr_info(TAG "ioapic: %u pins, leaving pin %d (the VM's) alone\n", pins, own_pin);
	for (pin = 0; pin < pins; pin++) {
		u32 lo0, hi0, lo1, hi1, lo, hi;

		if ((int)pin == own_pin)
			continue;
		/* Unmasked, fixed, edge, physical, vector 0x30+pin, to APIC ID 1 (an RT or other CPU). */
		lo = 0x30 + pin;
		hi = 1u << 24;
		local_irq_save(flags);
		lo0 = ioapic_read(0x10 + 2 * pin);
		hi0 = ioapic_read(0x11 + 2 * pin);
		ioapic_write(0x11 + 2 * pin, hi);
		ioapic_write(0x10 + 2 * pin, lo);
		lo1 = ioapic_read(0x10 + 2 * pin);
		hi1 = ioapic_read(0x11 + 2 * pin);
		local_irq_restore(flags);
		written += 2;
		if (lo1 != lo0 || hi1 != hi0)
			changed++;
		pr_info(TAG "ioapic: attempted pin %u: %08x:%08x -> %08x:%08x, reads back %08x:%08x (%s)\n",
			pin, hi0, lo0, hi, lo, hi1, lo1, (lo1 == lo0 && hi1 == hi0) ? "unchanged" : "CHANGED");
	}
	iounmap(ioapic);
	pr_info(TAG "ioapic: done: writes=%u changed=%u\n", written, changed);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ports: reset, power-off and the RT console. */

static const char com1_text[] = "VLIBOS-HOSTILE-COM1-WRITE\r\n";

static int attack_ports(void)
{
	unsigned int writes = 0, i;
	u8 v;

	pr_info(TAG "ports: attempted outb 0x02, 0x06, 0x0e to 0xcf9 (reset control: soft, hard, full reset)\n");
	outb(0x02, 0xcf9);
	outb(0x06, 0xcf9);
	outb(0x0e, 0xcf9);
	writes += 3;
	pr_info(TAG "ports: attempted outb 0xfe to 0x64 (keyboard controller: pulse reset)\n");
	outb(0xfe, 0x64);
	writes++;
	v = inb(0x92);
	pr_info(TAG "ports: attempted outb %#x to 0x92 (fast reset bit; read %#x)\n", v | 1, v);
	outb(v | 1, 0x92);
	writes++;
	/* PM1a control: SLP_EN (bit 13) with SLP_TYP 0 (QEMU's and Bochs' PIIX4 S5: soft off) and 5. */
	pr_info(TAG "ports: attempted outw 0x2000, 0x3400 to 0x604 (QEMU PIIX4 ACPI PM1a_CNT: SLP_EN|SLP_TYP)\n");
	outw(0x2000, 0x604);
	outw(0x3400, 0x604);
	writes += 2;
	pr_info(TAG "ports: attempted outw 0x2000, 0x3400 to 0xb004 (Bochs PIIX4 ACPI PM1a_CNT: SLP_EN|SLP_TYP)\n");
	outw(0x2000, 0xb004);
	outw(0x3400, 0xb004);
	writes += 2;
	pr_info(TAG "ports: attempted %zu bytes to 0x3f8 (COM1, the RT console): VLIBOS-HOSTILE-COM1-WRITE\n",
		strlen(com1_text));
	outb(0x00, 0x3f9); /* IER */
	outb(0x03, 0x3fb); /* LCR 8n1 */
	writes += 2;
	for (i = 0; i < strlen(com1_text); i++) {
		outb(com1_text[i], 0x3f8);
		writes++;
	}
	/* The CMOS is read through for the clock; data writes must be ignored (not counted). */
	pr_info(TAG "ports: attempted CMOS shutdown byte 0x0f := 0x0a and NMI-disable index (0x70/0x71)\n");
	outb(0x8f, 0x70);
	outb(0x0a, 0x71);
	pr_info(TAG "ports: done: writes=%u (CMOS not counted)\n", writes);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* readrt: a physical address outside the VM's memory (e.g. the RT partition). Does not return. */

static int attack_readrt(void)
{
	void __iomem *p;
	u64 value;

	p = ioremap(readrt & PAGE_MASK, PAGE_SIZE);
	if (!p) {
		pr_info(TAG "readrt: ioremap of %#lx failed\n", readrt);
		return -ENOMEM;
	}
	pr_info(TAG "readrt: attempted read of physical %#lx (mapped at %px); the VM must stop\n", readrt, p);
	msleep(200); /* let the console drain before the VM stops */
	value = readq(p + (readrt & ~PAGE_MASK & ~7UL));
	pr_info(TAG "readrt: BREACH: read %#llx from %#lx\n", value, readrt);
	writeq(~value, p + (readrt & ~PAGE_MASK & ~7UL));
	pr_info(TAG "readrt: BREACH: wrote %#llx to %#lx\n", ~value, readrt);
	iounmap(p);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* triplefault: an empty IDT, then an exception. Does not return. */

static int attack_triplefault(void)
{
	struct {
		u16 limit;
		u64 base;
	} __packed empty = { 0, 0 };

	pr_info(TAG "triplefault: attempted lidt of an empty IDT then int $3; the VM must stop\n");
	msleep(200);
	local_irq_disable();
	/* int $3 through a zero-limit IDT: #GP, then #DF, then shutdown. */
	asm volatile("lidt %0\n\tint $3" : : "m"(empty) : "memory");
	pr_info(TAG "triplefault: BREACH: still running\n");
	return 0;
}

static int __init hostile_init(void)
{
	const char *what = attack;
	int err;

	if (!what[0] && readrt)
		what = "readrt";
	if (!strcmp(what, "ipi"))
		err = attack_ipi();
	else if (!strcmp(what, "ioapic"))
		err = attack_ioapic();
	else if (!strcmp(what, "ports"))
		err = attack_ports();
	else if (!strcmp(what, "readrt") && readrt)
		err = attack_readrt();
	else if (!strcmp(what, "triplefault"))
		err = attack_triplefault();
	else {
		pr_info(TAG "unknown attack '%s' (ipi, ioapic, ports, readrt=0xPHYS, triplefault)\n", what);
		return -EINVAL;
	}
	/* Loaded, idle: `rmmod hostile` makes room for the next attack. */
	return err;
}

static void __exit hostile_exit(void)
{
}

module_init(hostile_init);
module_exit(hostile_exit);
