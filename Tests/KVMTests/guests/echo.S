/*
 * echo: at CPL 3, waits for each byte on COM1 (LSR.DR, port 0x3fd bit 0), reads it from RBR (0x3f8)
 * and writes it back to THR, until it reads 0x04 (Ctrl-D); then asks the i8042 for a reset.
 */
#define USER_STACK 0x200000
#include "user_entry.inc"

user_main:
1:  movw $0x3fd, %dx
    inb %dx, %al
    testb $0x01, %al
    jz 1b
    movw $0x3f8, %dx
    inb %dx, %al
    cmpb $0x04, %al
    je reset
    call putc
    jmp 1b
