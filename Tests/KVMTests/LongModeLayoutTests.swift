import KVM
import Testing

/// Page tables and descriptors as bytes, against the values in the Intel SDM and Firecracker.
@Suite struct LongModeLayoutTests {
    @Test func identityMapOfOneGiB() throws {
        let t = try IdentityMap.tables(gigabytes: 1)
        #expect(t.map(\.address) == [0x9000, 0xa000, 0xb000])
        #expect(t.allSatisfy { $0.entries.count == 512 })
        #expect(t[0].entries[0] == 0xa003)  // PML4[0] → PDPT, present | writable
        #expect(t[0].entries[1...].allSatisfy { $0 == 0 })
        #expect(t[1].entries[0] == 0xb003)  // PDPT[0] → PD
        #expect(t[1].entries[1...].allSatisfy { $0 == 0 })
        #expect(t[2].entries[0] == 0x83)  // 2 MiB page at 0: present | writable | PS
        #expect(t[2].entries[1] == 0x20_0083)
        #expect(t[2].entries[511] == 0x3fe0_0083)
    }

    @Test func userAccessibleMapSetsUSAtEveryLevel() throws {
        let t = try IdentityMap.tables(gigabytes: 2, userAccessible: true)
        #expect(t.map(\.address) == [0x9000, 0xa000, 0xb000, 0xc000])
        #expect(t[0].entries[0] == 0xa007)
        #expect(t[1].entries[0] == 0xb007)
        #expect(t[1].entries[1] == 0xc007)
        #expect(t[2].entries[0] == 0x87)
        #expect(t[3].entries[0] == 0x4000_0087)  // second GiB
        #expect(t[3].entries[511] == 0x7fe0_0087)
    }

    @Test func identityMapSizeLimits() {
        #expect(throws: KVMError.self) { try IdentityMap.tables(gigabytes: 0) }
        #expect(throws: KVMError.self) { try IdentityMap.tables(gigabytes: 17) }
    }

    @Test func identityMapLandsInGuestMemory() throws {
        let m = try GuestMemory(size: 2 << 20)
        try IdentityMap.write(to: m)
        #expect(try m.read(UInt64.self, at: 0x9000) == 0xa003)
        #expect(try m.read(UInt64.self, at: 0xa000) == 0xb003)
        #expect(try m.read(UInt64.self, at: 0xb008) == 0x20_0083)
    }

    @Test func descriptorEncodingsMatchKnownValues() {
        // Firecracker gdt.rs: gdt_entry(0xa09b, 0, 0xfffff) etc.
        #expect(SegmentDescriptor.kernelCode64.encoded == 0x00af_9b00_0000_ffff)
        #expect(SegmentDescriptor.kernelData.encoded == 0x00cf_9300_0000_ffff)
        #expect(SegmentDescriptor.userCode64.encoded == 0x00af_fb00_0000_ffff)
        #expect(SegmentDescriptor.userData.encoded == 0x00cf_f300_0000_ffff)
        #expect(SegmentDescriptor.tss.encoded == 0x008f_8b00_0000_ffff)
        // Base split over bits 16–39 and 56–63, limit over 0–15 and 48–51 (SDM Vol. 3A Figure 3-8).
        #expect(SegmentDescriptor(flags: 0x808b, base: 0x1234_5678, limit: 0x67).encoded == 0x1280_8b34_5678_0067)
        #expect(SegmentDescriptor(flags: 0x0093, base: 0, limit: 0xabcde).encoded == 0x000a_9300_0000_bcde)
    }

    @Test func gdtSlotsAndSelectors() {
        #expect(GDT.standard.count == 8)
        #expect(GDT.limit == 63)
        #expect(GDT.standard[Int(GDT.kernelCodeSelector) / 8] == 0x00af_9b00_0000_ffff)  // __BOOT_CS = 0x10
        #expect(GDT.standard[Int(GDT.kernelDataSelector) / 8] == 0x00cf_9300_0000_ffff)  // __BOOT_DS = 0x18
        #expect(GDT.standard[Int(GDT.userCodeSelector) / 8] == 0x00af_fb00_0000_ffff)
        #expect(GDT.standard[Int(GDT.userDataSelector) / 8] == 0x00cf_f300_0000_ffff)
        #expect(GDT.userCodeSelector & 3 == 3 && GDT.userDataSelector & 3 == 3)
    }

    @Test func kvmSegmentsFromDescriptors() {
        let cs = SegmentDescriptor.kernelCode64.segment(selector: 0x10)
        #expect(cs.selector == 0x10 && cs.base == 0 && cs.limit == 0xffff_ffff)
        #expect(cs.type == 0xb && cs.s == 1 && cs.dpl == 0 && cs.present == 1)
        #expect(cs.l == 1 && cs.db == 0 && cs.g == 1 && cs.unusable == 0)
        let ss = SegmentDescriptor.userData.segment(selector: 0x2b)
        #expect(ss.type == 0x3 && ss.dpl == 3 && ss.db == 1 && ss.l == 0)
        let tr = SegmentDescriptor.tss.segment(selector: 0x30)
        #expect(tr.type == 0xb && tr.s == 0 && tr.present == 1)
    }
}
