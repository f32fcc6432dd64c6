/*
 * touch: writes one byte to every 4 KiB page of the usable RAM the zero page's e820 map lists
 * above 4 MiB (the image, its stack and the boot structures live below), at CPL 3, then prints
 * "touched=<MiB>\n" on COM1. Every page it writes is guest RAM the host must back, charged to
 * the VMM's memory cgroup: the allocator tests compare that cgroup's peak with the VM's share.
 * Then it asks the i8042 for a reset, or with -DSPIN_AFTER spins (so the cgroup can be read).
 * The monitor passes the zero page in %rsi (Linux 64-bit boot protocol); boot_params fields:
 * e820_entries u8 at 0x1e8, e820_table at 0x2d0 (20-byte entries: addr, size, type),
 * Documentation/arch/x86/zero-page.rst.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    movzbl 0x1e8(%rsi), %r9d        /* e820 entries */
    leaq 0x2d0(%rsi), %rbx
    xorq %r12, %r12                 /* bytes touched */
1:  testl %r9d, %r9d
    jz 4f
    cmpl $1, 16(%rbx)               /* E820_TYPE_RAM */
    jne 3f
    movq (%rbx), %rdi
    movq 8(%rbx), %r8
    addq %rdi, %r8                  /* end */
    cmpq $0x400000, %rdi
    jae 2f
    movq $0x400000, %rdi
2:  cmpq %r8, %rdi
    jae 3f
    movb $1, (%rdi)
    addq $4096, %rdi
    addq $4096, %r12
    jmp 2b
3:  addq $20, %rbx
    decl %r9d
    jmp 1b

4:  leaq prefix(%rip), %rsi
    movl $prefix_end - prefix, %ecx
5:  lodsb
    call putc
    loop 5b
    movq %r12, %rax
    shrq $20, %rax
    call putdec
    movb $'\n', %al
    call putc
#ifdef SPIN_AFTER
8:  jmp 8b
#else
    jmp reset
#endif

prefix:
    .ascii "touched="
prefix_end:
