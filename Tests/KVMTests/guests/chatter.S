/*
 * chatter: prints "tick\n" on COM1 from CPL 3 forever (polling LSR), for a console whose reader
 * goes away.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    leaq msg(%rip), %rsi
    movl $msg_end - msg, %ecx
    call putn
    jmp user_main

msg:
    .ascii "tick\n"
msg_end:
