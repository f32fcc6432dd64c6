/*
 * acpi: finds the ACPI tables the way Linux does and reports what it found, all at CPL 3.
 *
 * 1. Scans 0xe0000-0xfffff on 16-byte boundaries for "RSD PTR " (acpi_find_root_pointer) and
 *    checks the RSDP's 36-byte extended checksum.
 * 2. Follows XsdtAddress (offset 24), checks "XSDT" and its checksum, and looks through its 8-byte
 *    entries for the table whose signature is "APIC".
 * 3. Checks the MADT's checksum and walks its interrupt controller structures from offset 44 by
 *    their length bytes, counting enabled Processor Local APICs (type 0, flags bit 0) and I/O APICs
 *    (type 1).
 *
 * Prints "acpi cpus <n> ioapics <m>\n" on COM1 and resets through the i8042; on any failure
 * prints "acpi error <step>\n" and resets. With -DPOWEROFF it stops as Linux's poweroff does on a
 * hardware-reduced platform instead: WAK_STS (0x80) to the sleep status register, then SLP_TYP 5 |
 * SLP_EN (0x34) to the sleep control register, both at I/O port 0x600 (ACPIShutdown).
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    movq $0xe0000, %rsi
    movabsq $0x2052545020445352, %rax   /* "RSD PTR " */
1:  cmpq %rax, (%rsi)
    je 2f
    addq $16, %rsi
    cmpq $0x100000, %rsi
    jb 1b
    movb $'1', %bl
    jmp fail
2:  movl $36, %ecx
    call sum
    movb $'2', %bl
    jnz fail
    movq 24(%rsi), %r13                 /* XSDT */
    movb $'3', %bl
    cmpl $0x54445358, (%r13)            /* "XSDT" */
    jne fail
    movq %r13, %rsi
    movl 4(%r13), %ecx
    call sum
    movb $'4', %bl
    jnz fail
    leaq 36(%r13), %r8                  /* first entry */
    movl 4(%r13), %r9d
    addq %r13, %r9                      /* end of the XSDT */
3:  cmpq %r9, %r8
    movb $'5', %bl
    jae fail
    movq (%r8), %r14
    cmpl $0x43495041, (%r14)            /* "APIC" */
    je 4f
    addq $8, %r8
    jmp 3b
4:  movq %r14, %rsi
    movl 4(%r14), %ecx
    call sum
    movb $'6', %bl
    jnz fail
    leaq 44(%r14), %r10
    movl 4(%r14), %r11d
    addq %r14, %r11                     /* end of the MADT */
    xorl %r12d, %r12d                   /* enabled local APICs */
    xorl %r15d, %r15d                   /* I/O APICs */
5:  cmpq %r11, %r10
    jae 8f
    movzbl (%r10), %eax                 /* type */
    movzbl 1(%r10), %ecx                /* length */
    testl %ecx, %ecx
    movb $'7', %bl
    jz fail
    cmpl $0, %eax
    jne 6f
    testl $1, 4(%r10)
    jz 7f
    incq %r12
    jmp 7f
6:  cmpl $1, %eax
    jne 7f
    incq %r15
7:  addq %rcx, %r10
    jmp 5b

8:  leaq s_cpus(%rip), %rsi
    call puts
    movq %r12, %rax
    call putdec
    leaq s_ioapics(%rip), %rsi
    call puts
    movq %r15, %rax
    call putdec
    movb $'\n', %al
    call putc
#ifdef POWEROFF
    movw $0x600, %dx
    movb $0x80, %al
    outb %al, %dx
    movb $0x34, %al
    outb %al, %dx
13: jmp 13b
#endif
    jmp reset

/* fail: prints "acpi error <%bl>\n" and resets. */
fail:
    leaq s_error(%rip), %rsi
    call puts
    movb %bl, %al
    call putc
    movb $'\n', %al
    call putc
    jmp reset

/* sum: byte sum of %ecx bytes at %rsi into %al; ZF set when it is 0 mod 256. Keeps %rsi. */
sum:
    pushq %rsi
    xorl %eax, %eax
9:  addb (%rsi), %al
    incq %rsi
    loop 9b
    popq %rsi
    testb %al, %al
    ret

/* puts: NUL-terminated string at %rsi. */
puts:
    lodsb
    testb %al, %al
    jz 10f
    call putc
    jmp puts
10: ret

s_cpus:    .asciz "acpi cpus "
s_ioapics: .asciz " ioapics "
s_error:   .asciz "acpi error "
