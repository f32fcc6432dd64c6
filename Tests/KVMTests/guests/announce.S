/*
 * announce: prints "ready\n" on COM1 from CPL 3 (polling LSR, so the monitor may coalesce the
 * THR writes), then spins at CPL 3 without another port access: nothing makes the vCPU exit,
 * so the line's last byte reaches the console only if the monitor drains coalesced writes on
 * its own.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    leaq msg(%rip), %rsi
    movl $msg_end - msg, %ecx
3:  lodsb
    call putc
    loop 3b
4:  pause
    jmp 4b

msg:
    .ascii "ready\n"
msg_end:
