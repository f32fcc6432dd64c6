import Cgroups
import LinuxSys
import OCI
import Testing

@testable import Containers

/// Docker's resource flags become the runtime-spec values runc and crun would write.
struct ResourceFlagsTests {
    func resources(_ build: (inout ResourceFlags) -> Void, base: Spec.Resources? = nil) throws -> Spec.Resources {
        var f = ResourceFlags()
        build(&f)
        return try f.resources(merging: base, cpuSharesForWeight: { $0 * 10 })
    }

    @Test func sizesUseDockersBinaryUnits() throws {
        #expect(try ResourceFlags.bytes("64m", flag: "--memory") == 64 * 1024 * 1024)
        #expect(try ResourceFlags.bytes("1g", flag: "--memory") == 1 << 30)
        #expect(try ResourceFlags.bytes("512k", flag: "--memory") == 512 * 1024)
        #expect(try ResourceFlags.bytes("100", flag: "--memory") == 100)
        #expect(try ResourceFlags.bytes("1.5g", flag: "--memory") == 1_610_612_736)
        #expect(try ResourceFlags.bytes("64MB", flag: "--memory") == 64 * 1024 * 1024)
        #expect(try ResourceFlags.bytes("-1", flag: "--memory-swap") == -1)
        #expect(throws: SkiffError.self) { try ResourceFlags.bytes("lots", flag: "--memory") }
        #expect(throws: SkiffError.self) { try ResourceFlags.bytes("64x", flag: "--memory") }
    }

    @Test func cpusBecomeQuotaOverAHundredMillisecondPeriod() throws {
        let r = try resources { $0.cpus = "0.5" }
        #expect(r.cpu?.quota == 50_000 && r.cpu?.period == 100_000)
        let two = try resources { $0.cpus = "2" }
        #expect(two.cpu?.quota == 200_000)
        let none = try resources { $0.cpus = "0" }
        #expect(none.cpu?.quota == -1, "--cpus 0 removes the limit")
    }

    @Test func memoryAndSwapFollowDockersRules() throws {
        let r = try resources {
            $0.memory = "64m"
            $0.memorySwap = "128m"
            $0.memoryReservation = "32m"
        }
        #expect(r.memory?.limit == 64 << 20 && r.memory?.swap == 128 << 20 && r.memory?.reservation == 32 << 20)
        // update --memory-swap alone keeps the current limit.
        let updated = try resources({ $0.memorySwap = "256m" }, base: r)
        #expect(updated.memory?.limit == 64 << 20 && updated.memory?.swap == 256 << 20)
        #expect(throws: SkiffError.self) { _ = try self.resources { $0.memorySwap = "1g" } }
        #expect(throws: SkiffError.self) {
            _ = try self.resources {
                $0.memory = "128m"
                $0.memorySwap = "64m"
            }
        }
    }

    @Test func pidsZeroOrMinusOneMeanUnlimited() throws {
        #expect(try resources { $0.pidsLimit = "20" }.pids?.limit == 20)
        #expect(try resources { $0.pidsLimit = "0" }.pids?.limit == -1)
        #expect(try resources { $0.pidsLimit = "-1" }.pids?.limit == -1)
    }

    @Test func cpuWeightIsConvertedToShares() throws {
        let r = try resources { $0.cpuWeight = "100" }
        #expect(r.cpu?.shares == 1000)
        #expect(throws: SkiffError.self) { _ = try self.resources { $0.cpuWeight = "0" } }
        #expect(throws: SkiffError.self) { _ = try self.resources { $0.cpuShares = "1" } }
    }

    @Test func sharesForWeightInvertsTheKernelMapping() {
        // cpuShares(forWeight:) searches runc's current conversion; 1024 shares ↔ weight 100.
        #expect(cpuShares(forWeight: 100) == 1024 || cpuWeight(fromShares: cpuShares(forWeight: 100)) == 100)
        for w: UInt64 in [1, 10, 100, 1000, 10_000] {
            let back = cpuWeight(fromShares: cpuShares(forWeight: w))
            #expect(back >= w * 9 / 10 && back <= w * 11 / 10 + 1, "weight \(w) → shares → \(back)")
        }
    }

    @Test func cpusetListsAreChecked() throws {
        #expect(try resources { $0.cpusetCPUs = "0" }.cpu?.cpus == "0")
        #expect(ResourceFlags.members("0-1,3") == [0, 1, 3])
        #expect(throws: SkiffError.self) { _ = try self.resources { $0.cpusetCPUs = "4096" } }
        #expect(throws: SkiffError.self) { _ = try self.resources { $0.cpusetCPUs = "a-b" } }
    }
}
