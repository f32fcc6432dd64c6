/// Byte offsets and values of the x86 zero page (`struct boot_params`, 4 KiB) and the setup header
/// embedded in it (`struct setup_header`), in one place.
///
/// Sources: `arch/x86/include/uapi/asm/bootparam.h` (the structs, with their offsets in comments),
/// `Documentation/arch/x86/boot.rst` ("The Real-Mode Kernel Header", "Details of Header Fields",
/// "64-bit Boot Protocol") and `Documentation/arch/x86/zero-page.rst`.
///
/// The setup header sits at 0x1f1 both in a bzImage file and in `boot_params`, so every `hdr`
/// offset below is also the file offset in a bzImage.
public enum BootParams {
    /// Size of `struct boot_params` (one page).
    public static let size = 4096

    // MARK: struct boot_params (bootparam.h; zero-page.rst)

    /// `acpi_rsdp_addr`, u64 at 0x070: physical address of the ACPI RSDP, 0 to let the kernel scan.
    public static let acpiRSDPAddr = 0x070
    /// `ext_ramdisk_image`, u32 at 0x0c0: bits 63:32 of the initrd address.
    public static let extRamdiskImage = 0x0c0
    /// `ext_ramdisk_size`, u32 at 0x0c4: bits 63:32 of the initrd size.
    public static let extRamdiskSize = 0x0c4
    /// `ext_cmd_line_ptr`, u32 at 0x0c8: bits 63:32 of the command-line address.
    public static let extCmdLinePtr = 0x0c8
    /// `e820_entries`, u8 at 0x1e8: number of entries in `e820_table`.
    public static let e820Entries = 0x1e8
    /// `sentinel`, u8 at 0x1ef: must stay 0; the kernel wipes fields it cannot trust when a loader
    /// copied more than the setup header (boot.rst "Details of Header Fields", `sentinel`).
    public static let sentinel = 0x1ef
    /// `hdr`: start of `struct setup_header` (0x1f1).
    public static let setupHeader = 0x1f1
    /// End of the space reserved for `hdr` (`_pad7` runs to 0x290).
    public static let setupHeaderLimit = 0x290
    /// `e820_table[E820_MAX_ENTRIES_ZEROPAGE]` at 0x2d0: 20-byte `struct boot_e820_entry`
    /// `{u64 addr; u64 size; u32 type}`, packed.
    public static let e820Table = 0x2d0
    /// `E820_MAX_ENTRIES_ZEROPAGE`.
    public static let e820MaxEntries = 128
    /// `sizeof(struct boot_e820_entry)`.
    public static let e820EntrySize = 20

    // MARK: struct setup_header (boot.rst "The Real-Mode Kernel Header")

    /// `setup_sects`, u8 at 0x1f1: size of the real-mode setup in 512-byte sectors, not counting the
    /// boot sector; 0 means 4.
    public static let setupSects = 0x1f1
    /// `vid_mode`, u16 at 0x1fa.
    public static let vidMode = 0x1fa
    /// `boot_flag`, u16 at 0x1fe: 0xAA55.
    public static let bootFlag = 0x1fe
    /// `jump`, u16 at 0x200; its second byte (0x201) plus 0x202 is the end of the setup header
    /// (boot.rst: "the end of the setup header can be calculated as follows: 0x0202 + byte value at
    /// offset 0x0201").
    public static let jump = 0x200
    /// `header`, u32 at 0x202: "HdrS" (0x53726448).
    public static let header = 0x202
    /// `version`, u16 at 0x206: boot protocol version, e.g. 0x020f for 2.15.
    public static let version = 0x206
    /// `type_of_loader`, u8 at 0x210 (write): 0xff = undefined loader.
    public static let typeOfLoader = 0x210
    /// `loadflags`, u8 at 0x211 (modify).
    public static let loadflags = 0x211
    /// `code32_start`, u32 at 0x214: address of the protected-mode kernel (the load address).
    public static let code32Start = 0x214
    /// `ramdisk_image`, u32 at 0x218 (write): initrd address, bits 31:0.
    public static let ramdiskImage = 0x218
    /// `ramdisk_size`, u32 at 0x21c (write): initrd size in bytes, bits 31:0.
    public static let ramdiskSize = 0x21c
    /// `heap_end_ptr`, u16 at 0x224 (write): end of the setup heap, relative to the real-mode start
    /// minus 0x200; only the 16-bit entry uses it.
    public static let heapEndPtr = 0x224
    /// `cmd_line_ptr`, u32 at 0x228 (write, protocol 2.02+): command-line address, bits 31:0.
    public static let cmdLinePtr = 0x228
    /// `initrd_addr_max`, u32 at 0x22c (read, 2.03+): highest address the initrd may occupy.
    public static let initrdAddrMax = 0x22c
    /// `kernel_alignment`, u32 at 0x230 (read/modify, 2.05+): alignment a relocatable kernel needs.
    public static let kernelAlignment = 0x230
    /// `relocatable_kernel`, u8 at 0x234 (read, 2.05+).
    public static let relocatableKernel = 0x234
    /// `min_alignment`, u8 at 0x235 (read, 2.10+): log2 of the smallest usable alignment.
    public static let minAlignment = 0x235
    /// `xloadflags`, u16 at 0x236 (read, 2.12+).
    public static let xloadflags = 0x236
    /// `cmdline_size`, u32 at 0x238 (read, 2.06+): longest command line, without the NUL.
    public static let cmdlineSize = 0x238
    /// `pref_address`, u64 at 0x258 (read, 2.10+): preferred load address (`LOAD_PHYSICAL_ADDR`).
    public static let prefAddress = 0x258
    /// `init_size`, u32 at 0x260 (read, 2.10+): bytes the kernel needs from its aligned load
    /// address (or `pref_address`, if higher) until it has finished decompressing and set up.
    public static let initSize = 0x260

    // MARK: Values

    /// `boot_flag` value.
    public static let bootFlagMagic: UInt16 = 0xaa55
    /// `header` value, "HdrS" read as a little-endian u32.
    public static let headerMagic: UInt32 = 0x5372_6448
    /// `type_of_loader` for a loader without an assigned id (boot.rst: 0xFF "undefined").
    public static let loaderUndefined: UInt8 = 0xff
    /// `loadflags` bit 0, LOADED_HIGH: the protected-mode code is loaded at 0x100000 or above.
    public static let loadedHigh: UInt8 = 1 << 0
    /// `loadflags` bit 5, QUIET_FLAG: suppress early messages.
    public static let quietFlag: UInt8 = 1 << 5
    /// `loadflags` bit 7, CAN_USE_HEAP: `heap_end_ptr` is valid.
    public static let canUseHeap: UInt8 = 1 << 7
    /// `heap_end_ptr` kvmtool and most boot loaders write (0xfe00: the heap ends 0x200 below 64 KiB).
    public static let heapEnd: UInt16 = 0xfe00
    /// `xloadflags` bit 0, XLF_KERNEL_64: the kernel has the 64-bit entry at load address + 0x200.
    public static let xlfKernel64: UInt16 = 1 << 0
    /// `xloadflags` bit 1, XLF_CAN_BE_LOADED_ABOVE_4G.
    public static let xlfCanBeLoadedAbove4G: UInt16 = 1 << 1
    /// Lowest protocol version with `xloadflags` and thus a declared 64-bit entry (2.12).
    public static let minimumVersion: UInt16 = 0x020c
    /// `setup_sects` meaning of 0 (boot.rst: "If this field is 0, the real value is 4").
    public static let defaultSetupSects = 4
    /// Sector size for `setup_sects`.
    public static let sectorSize = 512
    /// Offset of `startup_64` in the protected-mode kernel (boot.rst "64-bit Boot Protocol": "the
    /// 64-bit entry point is at the load address + 0x200").
    public static let startup64Offset: UInt64 = 0x200
    /// `initrd_addr_max` when the header is older than 2.03 or absent (boot.rst: 0x37FFFFFF).
    public static let legacyInitrdAddrMax: UInt32 = 0x37ff_ffff
    /// `initrd_addr_max` a 64-bit kernel declares (`arch/x86/boot/header.S`, CONFIG_X86_64); used for
    /// ELF kernels, which carry no setup header.
    public static let defaultInitrdAddrMax64: UInt32 = 0x7fff_ffff
    /// `COMMAND_LINE_SIZE` − 1 on x86 (`arch/x86/include/asm/setup.h`: 2048 with the NUL); the limit
    /// for ELF kernels, which carry no setup header.
    public static let defaultCmdlineSize: UInt32 = 2047
    /// `kernel_alignment` Firecracker writes for ELF kernels (16 MiB).
    public static let elfKernelAlignment: UInt32 = 0x100_0000
}
