/*
 * kbdwait: at CPL 3, waits for a byte from the i8042 (status port 0x64 bit 0, OBF), then prints
 * "keys:" and every byte waiting at port 0x60 as " xx" (hex), a newline, and resets through the
 * i8042 (0xFE to port 0x64): a guest that shuts down when the host presses Ctrl+Alt+Del.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
1:  inb $0x64, %al
    testb $0x01, %al
    jz 1b

    leaq prefix(%rip), %rsi
    movl $prefix_end - prefix, %ecx
2:  lodsb
    call putc
    loop 2b

3:  inb $0x64, %al
    testb $0x01, %al
    jz 5f
    inb $0x60, %al
    movb %al, %bl
    movb $' ', %al
    call putc
    movb %bl, %al
    shrb $4, %al
    call hexdigit
    movb %bl, %al
    andb $0x0f, %al
    call hexdigit
    jmp 3b

5:  movb $'\n', %al
    call putc
    jmp reset

/* hexdigit: prints the low nibble of %al as a lower-case hex digit. */
hexdigit:
    cmpb $10, %al
    jb 6f
    addb $'a' - 10, %al
    call putc
    ret
6:  addb $'0', %al
    call putc
    ret

prefix:
    .ascii "keys:"
prefix_end:
