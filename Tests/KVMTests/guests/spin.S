/*
 * spin: counts ITERATIONS loop iterations at CPL 3 (native speed under kvm_pvm), prints
 * "count=<decimal>\n" on COM1, then asks the i8042 for a reset.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    xorq %rbx, %rbx
    movq $ITERATIONS, %rcx
3:  incq %rbx
    decq %rcx
    jnz 3b

    leaq prefix(%rip), %rsi
    movl $prefix_end - prefix, %ecx
4:  lodsb
    call putc
    loop 4b

    /* Decimal digits of %rbx, least significant first, onto the stack. */
    movq %rbx, %rax
    movq $10, %r8
    xorl %ecx, %ecx
5:  xorl %edx, %edx
    divq %r8
    addb $'0', %dl
    pushq %rdx
    incl %ecx
    testq %rax, %rax
    jnz 5b
6:  popq %rax
    call putc
    loop 6b

    movb $'\n', %al
    call putc
    jmp reset

prefix:
    .ascii "count="
prefix_end:
