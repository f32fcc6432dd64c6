/*
 * vm-pvh.S: a Xen PVH entry for the hello test guest, so QEMU's `-kernel` accepts it (QEMU loads
 * an ELF kernel only through a PVH note, XEN_ELFNOTE_PHYS32_ENTRY). PVH enters here in 32-bit
 * protected mode with paging off; this stub builds what Skiff's monitor sets up before the first
 * instruction (LongMode.setUp: a GDT with 64-bit kernel code 0x10 and user code/data 0x23/0x2b,
 * an identity map with U/S set, EFER.LME/NXE, CR0.PG) and jumps to the unchanged guest's _start
 * (0x100000) in 64-bit mode at CPL 0. Linked at 0x180000, beside the guest's own PT_LOAD.
 * Every instruction here runs at CPL 0: under kvm_pvm that is emulated, i.e. extra work QEMU's
 * run does that Skiff's does not (Skiff sets the same state through KVM ioctls).
 */
    .section .note.Xen, "a", @note
    .align 4
    .long 4                     /* namesz */
    .long 4                     /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start32

    .section .pvh, "awx", @progbits
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    lgdt gdt_desc
    /* Page tables: PML4[0] -> PDPT[0] -> PD of 512 x 2 MiB pages (first 1 GiB), P|RW|US. */
    movl $pdpt + 7, pml4
    movl $pd + 7, pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x87, %eax             /* P|RW|US|PS */
    movl %eax, pd(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 1b
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax             /* PAE */
    movl %eax, %cr4
    movl $0xc0000080, %ecx      /* EFER: LME | NXE */
    rdmsr
    orl $0x900, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax       /* PG | PE */
    movl %eax, %cr0
    ljmp $0x10, $pvh_start64

    .code64
pvh_start64:
    movl $0x18, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl $0x200000, %esp
    movl $0x100000, %eax        /* the guest's _start */
    jmp *%rax

    .align 8
gdt:
    .quad 0                     /* 0x00 null */
    .quad 0x00cf9a000000ffff    /* 0x08 32-bit code (unused) */
    .quad 0x00af9a000000ffff    /* 0x10 64-bit kernel code */
    .quad 0x00cf92000000ffff    /* 0x18 kernel data */
    .quad 0x00affa000000ffff    /* 0x20 64-bit user code (selector 0x23) */
    .quad 0x00cff2000000ffff    /* 0x28 user data (selector 0x2b) */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .align 4096
pml4: .fill 512, 8, 0
pdpt: .fill 512, 8, 0
pd:   .fill 512, 8, 0
