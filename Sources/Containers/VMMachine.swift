import CSkiff
import KVM
import LinuxSys
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One VM: memory with the kernel loaded, vCPUs with CPUID/MSRs/boot state, COM1 (IRQ 4), the i8042
/// (IRQ 1) and one virtio-blk device per `--disk` on the virtio-mmio bus (GSI 5, 6, …).
final class VMMachine {
    let vm: VirtualMachine
    let vcpus: [VCPU]
    let bus = PortIOBus()
    let runner: VMRunner
    let serial: Serial8250
    let keyboard: I8042
    /// ACPI sleep control at port 0x600: the guest's `poweroff` (S5) stops the VM.
    let powerOff: ACPIShutdown
    let devices: VirtioMMIODevices
    /// The command line the guest got: the user's plus one `virtio_mmio.device=` per device.
    let commandLine: String

    /// The virtio-mmio devices for `settings.disks`, in order, on a fresh bus.
    /// - Throws: `KVMError` when an image cannot be opened.
    static func devices(
        _ settings: VMSettings, memory: GuestMemory, interrupt: @escaping (UInt32, Bool) -> Void
    ) throws -> VirtioMMIODevices {
        let devices = VirtioMMIODevices(memory: memory, interrupt: interrupt)
        for disk in settings.disks {
            try devices.add(try VirtioBlock(path: disk.path, readOnly: disk.readOnly))
        }
        return devices
    }

    init(settings: VMSettings, output: @escaping (UInt8) -> Void) throws {
        let system: KVMSystem
        do { system = try KVMSystem() } catch { throw SkiffError("cannot use /dev/kvm: \(error)") }
        try system.requireExtensions()
        let vm = try VirtualMachine(system: system, memorySize: settings.memoryBytes)
        self.vm = vm
        try vm.createIRQChip()
        try vm.createPIT2()
        devices = try Self.devices(settings, memory: vm.memory) { gsi, level in try? vm.setIRQLine(gsi, level: level) }
        commandLine = devices.commandLine(appendingTo: settings.commandLine)
        // MP table and ACPI tables (vCPUs, IOAPIC, the virtio-mmio devices as LNRO0005, S5), the zero
        // page pointing at the RSDP, then vCPUs with CPUID, MSRs and LINT0/LINT1; the boot vCPU starts
        // at the kernel's entry with the identity map user-accessible and IOPL 3 (for CPL 3 test
        // guests; Linux replaces both), the others wait for INIT/SIPI.
        let rsdp = try LinuxPlatform.writeFirmwareTables(
            vcpuCount: settings.vcpus,
            mmioDevices: devices.slots.map { ACPIDSDT.MMIODevice(address: $0.address, gsi: $0.gsi) },
            to: vm.memory)
        let boot = try LinuxBoot.load(
            kernel: settings.kernel, initrd: settings.initrd, commandLine: commandLine, acpiRSDP: rsdp,
            into: vm.memory)
        vcpus = try LinuxPlatform.createVCPUs(in: vm, count: settings.vcpus, boot: boot)
        serial = Serial8250(output: output, onInterrupt: { level in try? vm.setIRQLine(4, level: level) })
        try bus.register(serial, base: 0x3f8, length: 8)
        // Writes to THR (0x3f8) are coalesced by KVM while the guest polls LSR instead of waiting
        // for the THR-empty interrupt (early consoles, printk, the test guests): each byte then
        // costs one exit (the LSR read) instead of two. The VMRunner applies them before the next
        // exit, in order; a guest that enables the interrupt gets every write at once again.
        if vm.canCoalescePIO, (try? vm.setCoalescedPIO(port: 0x3f8, true)) != nil {
            serial.onTransmitInterruptEnable = { enabled in try? vm.setCoalescedPIO(port: 0x3f8, !enabled) }
        }
        keyboard = I8042(
            onReset: { [weak bus] in bus?.requestStop(.reset) },
            onInterrupt: {
                try? vm.setIRQLine(1, level: true)
                try? vm.setIRQLine(1, level: false)
            })
        try bus.register(keyboard, base: 0x60, length: 5)
        powerOff = ACPIShutdown { [weak bus] in bus?.requestStop(.powerOff) }
        try bus.register(powerOff, base: ACPIShutdown.port, length: 1)
        runner = VMRunner(vcpus: vcpus, bus: bus, mmio: devices.bus.runLoopHandler)
    }

    /// Blocks `SignalWaiter.signals` in this thread. Called before the VM is recorded running (so a
    /// `skiff stop` that comes at once waits, pending, for the waiter) and before any thread exists (so
    /// every thread inherits the mask and only the waiter takes these signals).
    static func blockStopSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in SignalWaiter.signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Asks the guest to shut down: Ctrl+Alt+Del on the i8042 (Firecracker's `SendCtrlAltDel`).
    func pressCtrlAltDel() {
        runner.withDevices { [keyboard] in _ = keyboard.pressCtrlAltDel() }
    }

    /// Runs the vCPUs until the guest stops, KVM fails, or a signal stops them.
    ///
    /// Signals: the first SIGTERM presses Ctrl+Alt+Del (the guest decides), and if the guest is still
    /// running after a grace period the vCPUs are stopped: the seconds `skiff stop -t` queued with the
    /// signal, or `SignalWaiter.defaultGrace` for a plain SIGTERM (kill, timeout, systemd). A second
    /// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, or SIGPIPE (the console's reader
    /// went away, `SerialSink`) stops the vCPUs at once; the result is 128+N. With `input`, bytes
    /// read from that fd go to the UART's receive buffer until EOF.
    func run(input: Int32? = nil) -> Engine.VMOutcome {
        Self.blockStopSignals()
        let waiter = SignalWaiter(runner: runner, powerButton: { [self] in pressCtrlAltDel() })
        waiter.start()
        let pump = input.map { ConsoleInputPump(fd: $0, runner: runner, serial: serial) }
        pump?.start()
        defer { pump?.finish() }
        do {
            let stop = try runner.run()
            switch stop {
            case .reset, .halt, .systemEvent: return Engine.VMOutcome(code: 0, error: nil)
            case .interrupted:
                let sig = waiter.received.load(ordering: .acquiring)
                return Engine.VMOutcome(code: sig > 0 ? 128 + sig : 130, error: nil)
            }
        } catch {
            return Engine.VMOutcome(code: 125, error: "the VM stopped: \(error)")
        }
    }
}

/// A thread that waits for the stop signals: the first SIGTERM calls `powerButton` and stops the
/// runner if the guest has not stopped after the grace period; anything else (or SIGTERM again)
/// stops the runner at once. Every signal that would otherwise end the VMM without its clean-up is
/// here: the VM's record, cgroup and reservation go as after any other stop.
final class SignalWaiter: @unchecked Sendable {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE]
    /// How long the guest has to shut down after a plain SIGTERM: Docker's default stop timeout.
    static let defaultGrace = 10
    let runner: VMRunner
    let powerButton: () -> Void
    let received = Atomic<Int32>(0)

    init(runner: VMRunner, powerButton: @escaping () -> Void) {
        self.runner = runner
        self.powerButton = powerButton
    }

    func start() {
        if let thread = startThread({ self.wait() }) { pthread_detach(thread) }
    }

    func wait() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.signals { sigaddset(&set, s) }
        var deadline: Double?  // monotonic seconds: the grace after the power button ends
        while true {
            var queued: Int32 = 0
            var value: Int32 = 0
            let left = deadline.map { max(0, Int(($0 - Clock.monotonic()) * 1000)) } ?? -1
            let sig = sk_sigwait_queued(&set, left, &queued, &value)
            if sig < 0 { continue }  // EINTR
            if sig == 0 {  // the grace period is over
                received.store(SIGTERM, ordering: .releasing)
                runner.stop()
                return
            }
            if sig == SIGTERM && deadline == nil {
                let grace = queued != 0 ? max(0, Int(value)) : Self.defaultGrace
                deadline = Clock.monotonic() + Double(grace)
                powerButton()
                continue
            }
            received.store(sig, ordering: .releasing)
            runner.stop()
            return
        }
    }
}
