import Foundation
import Testing

/// `skiff run --vm` gives the guest ACPI tables for `--cpus N` and the ACPI sleep register: the
/// `acpi` test guest finds the RSDP by scanning like Linux, walks XSDT → MADT and prints how many
/// enabled local APICs it found; with `-DPOWEROFF` it then powers off through S5. `--cpu-ratio`
/// keeps the allocator from refusing more vCPUs than this host has (the guest needs no CPU time).
@Suite(.enabled(if: VMGuest.available, "needs root, /dev/kvm, gcc, ld and a skiff binary"))
struct VMACPITests {
    @Test(arguments: [1, 3])
    func guestSeesOneLocalAPICPerCPUInTheMADT(cpus: Int) async throws {
        let kernel = try await VMGuest.build("acpi")
        let r = await skiff("run", "--rm", "--vm", "--kernel", kernel, "--cpus", "\(cpus)", "--cpu-ratio", "0.1")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "acpi cpus \(cpus) ioapics 1\n", "\(r)")
    }

    @Test func guestPowerOffThroughS5ExitsZero() async throws {
        let kernel = try await VMGuest.build("acpi", output: "acpi-poweroff", defines: ["POWEROFF": "1"])
        let r = await skiff("run", "--rm", "--vm", "--kernel", kernel, "--cpus", "2", "--cpu-ratio", "0.1")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "acpi cpus 2 ioapics 1\n", "\(r)")
    }
}
