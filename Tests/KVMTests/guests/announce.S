/*
 * announce: prints "ready\n" on COM1, polling LSR (so the monitor may coalesce the THR writes),
 * then halts with interrupts off. Nothing makes the vCPU exit again and it burns no CPU, so the
 * line's last byte reaches the console only if the monitor drains coalesced writes on its own,
 * and a power-button press (i8042) goes unanswered. It stays at CPL 0 (a few dozen emulated
 * instructions under kvm_pvm) because only CPL 0 may halt.
 */
    .code64
    .text
    .globl _start
_start:
    leaq msg(%rip), %rsi
    movl $msg_end - msg, %ecx
1:  lodsb
    movb %al, %ah
    movw $0x3fd, %dx
2:  inb %dx, %al
    testb $0x20, %al
    jz 2b
    movb %ah, %al
    movw $0x3f8, %dx
    outb %al, %dx
    loop 1b
    cli
3:  hlt
    jmp 3b

msg:
    .ascii "ready\n"
msg_end:
