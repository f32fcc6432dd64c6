/* hello: prints a line on COM1 from CPL 3, then asks the i8042 for a reset. */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
    leaq msg(%rip), %rsi
    movl $msg_end - msg, %ecx
    call putn
    jmp reset

msg:
    .ascii "hello from the guest\n"
msg_end:
