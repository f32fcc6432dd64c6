/*
 * smp: one image for every vCPU. The monitor starts each vCPU in 64-bit mode at CPL 0 at _start
 * with its own stack in %rsp, its index in %rdi and the vCPU count in %rsi (VMRunner tests).
 * The only CPL 0 work is one iretq to user_main at CPL 3 on the same stack (kvm_pvm emulates CPL 0).
 *
 * Each vCPU runs CPUID leaf 1 (initial APIC id, EBX[31:24]) and leaf 0xB subleaf 0 (x2APIC id,
 * EDX) twice: at CPL 0 before the iretq (kvm_pvm emulates it from the vCPU's KVM_SET_CPUID2 table)
 * and at CPL 3 (under kvm_pvm on a host without CPUID faulting this runs natively and returns the
 * host CPU's ids; on VMX/SVM KVM intercepts it). At CPL 3 it takes a spinlock (xchg on LOCK), prints
 * "cpu <index> apic <leaf 1> x2apic <leaf 0xB> user-apic <CPL 3 leaf 1> user-x2apic <CPL 3 leaf 0xB>\n"
 * on COM1, releases the lock and increments DONE. vCPU 0 then waits for DONE == count and asks the i8042 for a reset; the others spin.
 * With -DSPIN_FOREVER every vCPU spins at CPL 3 and never prints (stop tests).
 */
#define LOCK 0x1ff000
#define DONE 0x1ff008

    .code64
    .text
    .globl _start
_start:
#ifndef SPIN_FOREVER
    movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %r12d            /* leaf 1 APIC id, CPL 0 */
    movl $0xb, %eax
    xorl %ecx, %ecx
    cpuid
    movl %edx, %r13d            /* leaf 0xB x2APIC id, CPL 0 */
#endif
    movq %rsp, %rax
    pushq $0x2b                 /* SS: user data, RPL 3 */
    pushq %rax                  /* RSP: this vCPU's stack */
    pushq $0x3002               /* RFLAGS: IOPL 3, reserved bit 1, IF clear */
    pushq $0x23                 /* CS: 64-bit user code, RPL 3 */
    leaq user_main(%rip), %rax
    pushq %rax
    iretq

user_main:
#ifdef SPIN_FOREVER
1:  pause
    jmp 1b
#else
    movq %rdi, %r14             /* index */
    movq %rsi, %r15             /* count */
    movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %r10d            /* leaf 1 APIC id, CPL 3 */
    movl $0xb, %eax
    xorl %ecx, %ecx
    cpuid
    movl %edx, %r11d            /* leaf 0xB x2APIC id, CPL 3 */

1:  movl $1, %eax
    xchgl %eax, LOCK            /* implicitly locked */
    testl %eax, %eax
    jz 2f
    pause
    jmp 1b
2:
    leaq s_cpu(%rip), %rsi
    call puts
    movq %r14, %rax
    call putdec
    leaq s_apic(%rip), %rsi
    call puts
    movq %r12, %rax
    call putdec
    leaq s_x2apic(%rip), %rsi
    call puts
    movq %r13, %rax
    call putdec
    leaq s_uapic(%rip), %rsi
    call puts
    movq %r10, %rax
    call putdec
    leaq s_ux2apic(%rip), %rsi
    call puts
    movq %r11, %rax
    call putdec
    movb $'\n', %al
    call putc
    movl $0, LOCK
    lock incl DONE

    testq %r14, %r14
    jnz 4f
3:  movl DONE, %eax
    cmpq %r15, %rax
    jae reset
    pause
    jmp 3b
4:  pause
    jmp 4b

/* puts: NUL-terminated string at %rsi. */
puts:
    lodsb
    testb %al, %al
    jz 5f
    call putc
    jmp puts
5:  ret

/* putdec: %rax in decimal. Clobbers %rax, %rcx, %rdx, %r8. */
putdec:
    movq $10, %r8
    xorl %ecx, %ecx
6:  xorl %edx, %edx
    divq %r8
    addb $'0', %dl
    pushq %rdx
    incl %ecx
    testq %rax, %rax
    jnz 6b
7:  popq %rax
    pushq %rcx
    call putc
    popq %rcx
    loop 7b
    ret

/* putc: wait for LSR.THRE (0x3fd bit 5), then write %al to THR (0x3f8). Clobbers %dx, %ah. */
putc:
    movb %al, %ah
    movw $0x3fd, %dx
8:  inb %dx, %al
    testb $0x20, %al
    jz 8b
    movb %ah, %al
    movw $0x3f8, %dx
    outb %al, %dx
    ret

reset:
    movb $0xfe, %al
    outb %al, $0x64
9:  jmp 9b

s_cpu:    .asciz "cpu "
s_apic:   .asciz " apic "
s_x2apic: .asciz " x2apic "
s_uapic:  .asciz " user-apic "
s_ux2apic: .asciz " user-x2apic "
#endif
