import Glibc
import OCI

/// `memory` controller accessors (limits come later).
/// v2: `Documentation/admin-guide/cgroup-v2.rst` "Memory Interface Files";
/// v1: `Documentation/admin-guide/cgroup-v1/memory.rst` section 5.
extension Cgroup {
    /// Memory in use by the cgroup and its descendants, in bytes: v1 `memory.usage_in_bytes` where
    /// a v1 hierarchy carries `memory`, else v2 `memory.current` (present only when the parent
    /// enables `memory` in `cgroup.subtree_control`). Nil when neither exists.
    /// Throws `CgroupError.read` or `.unexpectedValue`.
    public func memoryCurrent() throws(CgroupError) -> UInt64? {
        if let dir = v1("memory") { return try readUInt64(dir.file("memory.usage_in_bytes")) }
        if let dir = unified, CgroupFiles.exists(dir.file("memory.current")) {
            return try readUInt64(dir.file("memory.current"))
        }
        return nil
    }

    func readUInt64(_ path: String) throws(CgroupError) -> UInt64 {
        let text = try CgroupFiles.readLine(path).trimmingWhitespace
        guard let value = UInt64(text) else { throw .unexpectedValue(path: path, value: text) }
        return value
    }
}

/// Writing `linux.resources.memory` (bytes; -1 = unlimited; 0 = unset, as in runc).
/// v2: cgroup-v2.rst "Memory Interface Files" (`memory.max`, `memory.low`, `memory.swap.max`);
/// v1: cgroup-v1/memory.rst section 2.5 and 5 (`memory.limit_in_bytes`,
/// `memory.soft_limit_in_bytes`, `memory.memsw.limit_in_bytes`, `memory.oom_control`).
enum MemoryLimits {
    static func apply(_ memory: Spec.Resources.Memory, to dir: Cgroup.Directory) throws(CgroupError) {
        switch dir.version {
        case .v2: try applyV2(memory, dir)
        case .v1: try applyV1(memory, dir)
        }
    }

    static func text(_ bytes: Int64) -> String { bytes < 0 ? "max" : String(bytes) }

    static func applyV2(_ memory: Spec.Resources.Memory, _ dir: Cgroup.Directory) throws(CgroupError) {
        if memory.disableOOMKiller == true {
            throw .invalidResource(
                setting: "disableOOMKiller (--oom-kill-disable)",
                reason: "cgroup v2 has no memory.oom_control (cgroup-v2.rst); drop the flag or use "
                    + "memory.high through linux.resources.unified to throttle instead of killing")
        }
        let limit = memory.limit.flatMap { $0 == 0 ? nil : $0 }
        let swapMax = try swapMaxV2(swap: memory.swap, limit: limit, dir: dir)
        if let limit { try dir.write("memory.max", text(limit)) }
        if let reservation = memory.reservation, reservation != 0 {
            try dir.write("memory.low", text(reservation))
        }
        if let swapMax {
            do { try dir.write("memory.swap.max", swapMax) } catch {
                // Without swap accounting (CONFIG_MEMCG_SWAP off, swapaccount=0) the file does not
                // exist; "no swap limit" and "no swap" are then already what the kernel does.
                guard error.errno == ENOENT, swapMax == "max" || swapMax == "0" else {
                    if error.errno == ENOENT {
                        throw .invalidResource(
                            setting: "memory swap limit",
                            reason: "\(dir.file("memory.swap.max")) does not exist: the kernel has no swap "
                                + "accounting; boot with swapaccount=1 or drop --memory-swap")
                    }
                    throw error
                }
            }
        }
    }

    /// `memory.swap.max` from the OCI mem+swap value (runc `ConvertMemorySwapToCgroupV2Value`,
    /// oci-runtimes.md §5 bug 5): -1 → "max"; swap − limit otherwise (swap == limit → "0");
    /// absent swap with limit -1 → "max"; 0 → unset. Without a limit in this call the current
    /// `memory.max` is read (an update of `--memory-swap` alone, crun#315).
    static func swapMaxV2(swap: Int64?, limit: Int64?, dir: Cgroup.Directory) throws(CgroupError) -> String? {
        guard let swap, swap != 0 else { return limit == -1 ? "max" : nil }
        if swap < 0 { return "max" }
        var effective = limit
        if effective == nil {
            let current = try dir.read("memory.max")
            effective = current == "max" ? -1 : Int64(current)
        }
        guard let memoryLimit = effective, memoryLimit > 0 else {
            throw .invalidResource(
                setting: "memory swap limit \(swap)",
                reason: "memory+swap needs a memory limit (cgroup v2 limits swap separately as swap − memory); "
                    + "set --memory too")
        }
        guard swap >= memoryLimit else {
            throw .invalidResource(
                setting: "memory swap limit \(swap)",
                reason: "memory+swap (\(swap) bytes) is below the memory limit (\(memoryLimit) bytes); "
                    + "--memory-swap must be at least --memory")
        }
        return String(swap - memoryLimit)
    }

    static func applyV1(_ memory: Spec.Resources.Memory, _ dir: Cgroup.Directory) throws(CgroupError) {
        let current = (try? dir.read("memory.limit_in_bytes")).flatMap { UInt64($0) }
        for (file, value) in try v1Writes(
            memory, currentLimit: current, hasMemsw: dir.has("memory.memsw.limit_in_bytes"))
        {
            try dir.write(file, value)
        }
    }

    /// The v1 writes in kernel-acceptable order. The kernel keeps `memory.limit_in_bytes ≤
    /// memory.memsw.limit_in_bytes` at every write (memory.rst 2.5), so when the new mem+swap value
    /// is unlimited or above the current memory limit it is written first (raising both), else
    /// the memory limit goes first (lowering both). runc `fs/memory.go` `setMemoryAndSwap`.
    static func v1Writes(_ memory: Spec.Resources.Memory, currentLimit: UInt64?, hasMemsw: Bool)
        throws(CgroupError) -> [(file: String, value: String)]
    {
        var writes: [(file: String, value: String)] = []
        let limit = memory.limit.flatMap { $0 == 0 ? nil : $0 }
        var swap = memory.swap.flatMap { $0 == 0 ? nil : $0 }
        if limit == -1 && swap == nil && hasMemsw { swap = -1 }
        if let s = swap, !hasMemsw {
            if s >= 0 {
                throw .invalidResource(
                    setting: "memory swap limit \(s)",
                    reason: "memory.memsw.limit_in_bytes does not exist: the kernel has no swap accounting; "
                        + "boot with swapaccount=1 or drop --memory-swap")
            }
            swap = nil
        }
        if let l = limit, let s = swap, s >= 0, l >= 0, s < l {
            throw .invalidResource(
                setting: "memory swap limit \(s)",
                reason: "memory+swap (\(s) bytes) is below the memory limit (\(l) bytes); "
                    + "--memory-swap must be at least --memory")
        }
        let limitWrite = limit.map { ("memory.limit_in_bytes", String($0 < 0 ? -1 : $0)) }
        let swapWrite = swap.map { ("memory.memsw.limit_in_bytes", String($0 < 0 ? -1 : $0)) }
        if let s = swap, s < 0 || currentLimit.map({ $0 < UInt64(s) }) ?? true {
            if let swapWrite { writes.append(swapWrite) }
            if let limitWrite { writes.append(limitWrite) }
        } else {
            if let limitWrite { writes.append(limitWrite) }
            if let swapWrite { writes.append(swapWrite) }
        }
        if let reservation = memory.reservation, reservation != 0 {
            writes.append(("memory.soft_limit_in_bytes", String(reservation < 0 ? -1 : reservation)))
        }
        if let disable = memory.disableOOMKiller {
            writes.append(("memory.oom_control", disable ? "1" : "0"))
        }
        return writes
    }
}
