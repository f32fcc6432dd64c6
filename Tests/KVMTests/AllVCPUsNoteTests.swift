import KVM
import Testing

/// Skiff's all-vCPU entry note (`ElfKernelLoader.allVCPUsNote`): found in a PT_NOTE segment of a
/// guest built with it, absent otherwise, and a malformed note is ignored rather than trusted.
@Suite(.enabled(if: TestGuest.toolchainAvailable, "needs gcc, ld and objcopy"))
struct AllVCPUsNoteTests {
    @Test func theNoteIsFoundOnlyWhereItIs() throws {
        let with = try TestGuest.build("spin", defines: ["ITERATIONS": "1", "ALL_VCPUS": "1"], elf: true)
        let without = try TestGuest.build("spin", defines: ["ITERATIONS": "1"], elf: true)
        let memory = try GuestMemory(size: 16 << 20)
        #expect(try ElfKernelLoader.load(with, path: "spin-all.elf", into: memory).startsAllVCPUs)
        #expect(try !ElfKernelLoader.load(without, path: "spin.elf", into: memory).startsAllVCPUs)
    }

    @Test func malformedNotesAreIgnored() {
        // namesz 6 "Skiff", descsz 0, type 1 — then the same with a name that runs past the segment.
        var good: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0] + Array("Skiff".utf8) + [0, 0, 0]
        #expect(ElfKernelLoader.hasAllVCPUsNote(good, offset: 0, size: UInt64(good.count)))
        #expect(!ElfKernelLoader.hasAllVCPUsNote(good, offset: 0, size: 12))
        good[8] = 2
        #expect(!ElfKernelLoader.hasAllVCPUsNote(good, offset: 0, size: UInt64(good.count)), "wrong type")
        let huge: [UInt8] = [0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0] + Array("Skiff".utf8) + [0, 0, 0]
        #expect(!ElfKernelLoader.hasAllVCPUsNote(huge, offset: 0, size: UInt64(huge.count)))
        #expect(!ElfKernelLoader.hasAllVCPUsNote(huge, offset: 10, size: .max))
    }
}
