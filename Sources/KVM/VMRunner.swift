import CKVM
import CSkiff
import Glibc
import LinuxSys
import Synchronization

/// Runs every vCPU of a VM on its own thread until the guest stops, a vCPU fails, or `stop()` is called.
///
/// - Port I/O from all vCPUs goes through one `PortIOBus`, one access at a time (a lock around the
///   bus and its devices' state); MMIO exits go to `mmio` under the same lock.
/// - The first stop wins: a device's `PortIOBus.requestStop` (the i8042 reset), a
///   `KVM_EXIT_SYSTEM_EVENT`, `stop()`, or an error on any vCPU stops all of them.
/// - Stopping is race-free (microvm.md §5 bug 15, Firecracker PR #304): under one lock the runner marks
///   itself stopping and sets every vCPU's `kvm_run.immediate_exit`, then sends `kickSignal` to each
///   vCPU thread. A thread kicked out of `KVM_RUN` (EINTR) re-checks the mark under the same lock
///   before clearing `immediate_exit`, so a kick that lands between the check and the next `KVM_RUN`
///   still makes that `KVM_RUN` return at once. The signal handler is empty and installed without
///   `SA_RESTART`; it takes no lock.
/// - A vCPU that halts (`hlt` with no in-kernel irqchip) ends its thread; when all have, `run` returns
///   `.halt`.
///
/// A runner runs once. Create the vCPUs and set their CPUID, MSRs and registers before `run()`.
public final class VMRunner: @unchecked Sendable {
    /// The vCPUs, one thread each.
    public let vcpus: [VCPU]
    /// The shared port-I/O bus.
    public let bus: PortIOBus
    let mmio: ((UInt64, Bool, [UInt8]) -> [UInt8])?

    /// The signal that kicks a vCPU thread out of `KVM_RUN`: SIGRTMIN, as Firecracker's `vcpu` module.
    public static let kickSignal: Int32 = __libc_current_sigrtmin()

    struct State {
        var stopping = false
        var result: GuestStop?
        var error: (any Error)?
        /// vCPU threads started (they are detached; see `ended`).
        var threads = 0
        /// Kernel thread IDs of the vCPU threads while they run (0 before and after): `finish`
        /// kicks these with tgkill under this lock, and a thread clears its own entry under it
        /// before it ends, so no kick ever reaches a thread that is gone. (pthread_kill on a
        /// pthread_t that `run` has already joined reads freed memory: it crashed the test suite.)
        var tids: [Int32] = []
        var halted = 0
        var started = false
        var joined = 0
    }
    let state = Mutex(State())
    /// Posted by each vCPU thread as the last thing it does with the runner. The threads are
    /// detached and `run` waits on this instead of joining them: a join also waits for glibc to
    /// release the thread's stack and for the kernel to end the thread, 0.3-0.4 ms on this host.
    private let ended = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    /// The VM's coalesced-write ring (`VirtualMachine.setCoalescedPIO`), drained under `busLock`
    /// before every exit is handled, every 10 to 100 ms while the vCPUs run (`drainInterval`),
    /// and once after they stop.
    let ring: UnsafeMutablePointer<kvm_coalesced_mmio_ring>?
    static let ringCapacity = ckvm_coalesced_ring_capacity()
    /// Coalesced writes applied so far (under `busLock`).
    private var appliedCoalesced = 0
    /// How many of the guest's writes reached the devices through the coalesced ring rather than
    /// an exit of their own (`VirtualMachine.setCoalescedPIO`).
    public var coalescedWritesApplied: Int { busLock.withLock { _ in appliedCoalesced } }
    /// How long `run` lets coalesced writes wait when no exit comes to drain them (a guest that
    /// prints its last line and then only computes), in nanoseconds: 10 ms after the ring last held
    /// writes, doubling while it stays empty up to `drainIntervalLimit`, so that a VM whose guest
    /// prints nothing wakes its VMM about 10 times a second instead of 100.
    static let drainInterval: Int = 10_000_000
    /// The longest wait between two looks at an empty ring, in nanoseconds: 100 ms.
    static let drainIntervalLimit: Int = 100_000_000
    let busLock = Mutex(())

    /// - Parameters:
    ///   - vcpus: at least one vCPU of the same VM.
    ///   - bus: devices on the I/O port space; wire stop requests with `I8042 { [weak bus] in bus?.requestStop(.reset) }`.
    ///   - mmio: handler for MMIO exits `(address, isWrite, data) -> bytes read`; without it reads return 0xff.
    public init(vcpus: [VCPU], bus: PortIOBus, mmio: ((UInt64, Bool, [UInt8]) -> [UInt8])? = nil) {
        self.vcpus = vcpus
        self.bus = bus
        self.mmio = mmio
        ring = vcpus.first?.coalescedRing
        sem_init(ended, 0, 0)
        Self.installKickHandler
    }

    deinit {
        sem_destroy(ended)
        ended.deallocate()
    }

    /// Installs an empty `kickSignal` handler once per process, without `SA_RESTART`, so a kicked
    /// `KVM_RUN` returns EINTR instead of being restarted.
    static let installKickHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(kickSignal, &action, nil)
    }()

    /// Runs all vCPUs and waits for them.
    /// - Returns: `.reset` (a device asked, e.g. i8042 0xFE), `.systemEvent`, `.halt` (every vCPU
    ///   halted) or `.interrupted` (`stop()` was called).
    /// - Throws: the first vCPU error (`KVMError.tripleFault` and the like, with that vCPU's registers),
    ///   `KVMError.layout` when called twice, `KVMError.system` when a thread cannot be created.
    public func run() throws -> GuestStop {
        let again = state.withLock { s in
            defer { s.started = true }
            return s.started
        }
        if again { throw KVMError.layout("VMRunner.run() called twice; create a new runner") }
        state.withLock { $0.tids = Array(repeating: 0, count: vcpus.count) }
        for index in vcpus.indices {
            let context = Unmanaged.passRetained(ThreadContext(runner: self, index: index)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let context = Unmanaged<ThreadContext>.fromOpaque(raw).takeRetainedValue()
                    context.runner.vcpuThread(context.index)
                    sem_post(context.runner.ended)
                    return nil
                }, context)
            if rc != 0 {
                Unmanaged<ThreadContext>.fromOpaque(context).release()
                finish(error: KVMError.system(SysError("pthread_create", "vCPU \(index) thread", errno: rc)))
                break
            }
            // A thread registers its own ID (vcpuThread); one that starts after a stop finds
            // immediate_exit already set, so KVM_RUN returns at once without a kick.
            pthread_detach(thread)
            state.withLock { $0.threads += 1 }
        }
        let threads = state.withLock { $0.threads }
        var interval = Self.drainInterval
        for _ in 0..<threads {
            while !waitForThreadEnd(nanoseconds: interval) {
                if hasCoalescedWrites {
                    _ = try? busAccess { drainCoalesced() }
                    interval = Self.drainInterval
                } else {
                    interval = min(interval * 2, Self.drainIntervalLimit)
                }
            }
            state.withLock { $0.joined += 1 }
        }
        _ = try? busAccess { drainCoalesced() }
        for v in vcpus { v.immediateExit = false }
        let (result, error) = state.withLock { ($0.result, $0.error) }
        if let error { throw error }
        return result ?? .interrupted
    }

    /// Stops all vCPUs; `run` returns `.interrupted` unless the guest stopped first. Safe from any
    /// thread (not from a signal handler), before or during `run`, and more than once.
    public func stop() { finish(result: .interrupted) }

    /// Runs `body` under the lock every vCPU's port-I/O and MMIO exit takes, so host-side events can
    /// change device state between guest accesses: console input for the UART, a key press on the
    /// i8042. Safe from any thread (not from a signal handler), before, during or after `run`. A stop
    /// that `body` requests through `bus.requestStop` stops the vCPUs as one from a guest access would.
    public func withDevices(_ body: () -> Void) {
        let request = busLock.withLock { _ in
            body()
            defer { bus.stopRequest = nil }
            return bus.stopRequest
        }
        if let request { finish(result: request) }
    }

    /// vCPU threads that `run` has started and seen end (all of them once `run` returns).
    public var joinedThreadCount: Int { state.withLock { $0.joined } }

    /// Whether a stop has been requested or reached.
    public var isStopping: Bool { state.withLock { $0.stopping } }

    final class ThreadContext {
        let runner: VMRunner
        let index: Int
        init(runner: VMRunner, index: Int) {
            self.runner = runner
            self.index = index
        }
    }

    /// Records the outcome (first one wins), sets every vCPU's `immediate_exit` and kicks every thread.
    func finish(result: GuestStop? = nil, error: (any Error)? = nil) {
        let me = sk_gettid()
        let pid = getpid()
        state.withLock { s in
            if s.result == nil && s.error == nil {
                s.result = result
                s.error = error
            }
            s.stopping = true
            for v in vcpus { v.immediateExit = true }
            for tid in s.tids where tid != 0 && tid != me { _ = sk_tgkill(pid, tid, Self.kickSignal) }
        }
    }

    func vcpuThread(_ index: Int) {
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, Self.kickSignal)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        let vcpu = vcpus[index]
        state.withLock { $0.tids[index] = sk_gettid() }
        defer { state.withLock { $0.tids[index] = 0 } }
        do {
            while true {
                let exit = try vcpu.run()
                // Writes KVM coalesced since the last exit come before this one.
                if hasCoalescedWrites { try busAccess { drainCoalesced() } }
                switch exit {
                case .io(let port, .out, let size, _, let data):
                    try busAccess { bus.write(port: port, size: size, data: data) }
                case .io(let port, .in, let size, let count, _):
                    let bytes = try busAccess { bus.read(port: port, size: size, count: count) }
                    vcpu.completeIn(bytes)
                case .mmio(let address, let isWrite, let length, let data):
                    let reply = try busAccess {
                        mmio?(address, isWrite, data) ?? [UInt8](repeating: 0xff, count: length)
                    }
                    if !isWrite { vcpu.completeMMIORead(reply) }
                case .interrupted:
                    let stopping = state.withLock { s in
                        if !s.stopping { vcpu.immediateExit = false }
                        return s.stopping
                    }
                    if stopping { return }
                case .hlt:
                    let all = state.withLock { s in
                        s.halted += 1
                        return s.halted == vcpus.count
                    }
                    if all { finish(result: .halt) }
                    return
                case .systemEvent(let type, let flags):
                    finish(result: .systemEvent(type: type, flags: flags))
                    return
                case .shutdown:
                    throw KVMError.tripleFault(vcpu.state())
                case .failEntry(let reason, _):
                    throw KVMError.failEntry(reason: reason, state: vcpu.state())
                case .internalError(let suberror, let data):
                    throw KVMError.internalError(suberror: suberror, data: data, state: vcpu.state())
                case .other(let reason):
                    throw KVMError.unhandledExit("exit_reason \(reason)", state: vcpu.state())
                }
            }
        } catch StopRequested.stop {
            return
        } catch {
            finish(error: error)
        }
    }

    enum StopRequested: Error { case stop }

    /// Waits up to `nanoseconds` for a vCPU thread to post `ended`; false on timeout.
    private func waitForThreadEnd(nanoseconds: Int) -> Bool {
        guard ring != nil else {
            while sem_wait(ended) != 0 {}  // EINTR: again
            return true
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanos = now.tv_nsec + nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
        while true {
            if sem_timedwait(ended, &deadline) == 0 { return true }
            if errno != EINTR { return false }
        }
    }

    /// Whether the ring holds writes not applied yet (a hint: read without the lock).
    var hasCoalescedWrites: Bool {
        guard let ring else { return false }
        return ckvm_coalesced_ring_first(ring) != ckvm_coalesced_ring_last(ring)
    }

    /// Applies the guest's coalesced writes in the order it made them: port writes to `bus`, MMIO
    /// writes to `mmio`. Call under `busLock`.
    func drainCoalesced() {
        guard let ring else { return }
        var first = ckvm_coalesced_ring_first(ring)
        let last = ckvm_coalesced_ring_last(ring)
        guard first != last else { return }
        while first != last {
            let entry = ckvm_coalesced_ring_entry(ring, first).pointee
            let data = withUnsafeBytes(of: entry.data) { Array($0.prefix(min(Int(entry.len), $0.count))) }
            if entry.pio != 0 {
                bus.write(port: UInt16(truncatingIfNeeded: entry.phys_addr), size: data.count, data: data)
            } else {
                _ = mmio?(entry.phys_addr, true, data)
            }
            first = (first + 1) % Self.ringCapacity
            appliedCoalesced += 1
        }
        ckvm_coalesced_ring_set_first(ring, first)
    }

    /// Runs `body` under the bus lock, then turns a device's stop request into a stop of all vCPUs.
    /// - Throws: `StopRequested.stop` when this access asked for the stop.
    func busAccess<T>(_ body: () -> T) throws -> T {
        let (value, request) = busLock.withLock { _ in
            let value = body()
            defer { bus.stopRequest = nil }
            return (value, bus.stopRequest)
        }
        if let request {
            finish(result: request)
            throw StopRequested.stop
        }
        return value
    }
}
