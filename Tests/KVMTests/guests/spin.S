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

    movq %rbx, %rax
    call putdec

    movb $'\n', %al
    call putc
    jmp reset

prefix:
    .ascii "count="
prefix_end:

#ifdef ALL_VCPUS
/* Skiff's all-vCPU entry note (ElfKernelLoader.allVCPUsNote): every vCPU runs this guest. */
    .section .note.skiff, "a", @note
    .balign 4
    .long 6, 0, 1
    .asciz "Skiff"
    .balign 4
#endif
