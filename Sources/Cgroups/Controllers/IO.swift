#if canImport(Glibc)
    import Glibc
#endif
import OCI

/// Writing `linux.resources.blockIO`.
/// v2: cgroup-v2.rst "IO Interface Files" (`io.weight` "default N", 1–10000; `io.max`
/// "MAJ:MIN rbps=… wbps=… riops=… wiops=…", bytes/s and IO/s);
/// v1: cgroup-v1/blkio-controller.rst (`blkio.weight` 10–1000, `blkio.throttle.*_device`
/// "MAJ:MIN RATE").
enum IOLimits {
    static func hasAny(_ io: Spec.Resources.BlockIO) -> Bool {
        io.weight != nil || !(io.throttleReadBpsDevice ?? []).isEmpty || !(io.throttleWriteBpsDevice ?? []).isEmpty
            || !(io.throttleReadIOPSDevice ?? []).isEmpty || !(io.throttleWriteIOPSDevice ?? []).isEmpty
    }

    /// blkio weight (10–1000) → io.weight (1–10000): `1 + (w − 10)·9999/990`, runc
    /// `ConvertBlkIOToIOWeightValue` (crun.1.md "CGROUP v2"). 0 = unset.
    static func ioWeight(fromBlkioWeight weight: UInt16) -> UInt64 {
        weight == 0 ? 0 : 1 + (UInt64(weight) - 10) * 9999 / 990
    }

    static func apply(_ io: Spec.Resources.BlockIO, to dir: Cgroup.Directory) throws(CgroupError) {
        if let weight = io.weight, weight != 0, !(10...1000).contains(weight) {
            throw .invalidResource(setting: "blkio weight \(weight)", reason: "the weight must be 10–1000")
        }
        switch dir.version {
        case .v2:
            if let weight = io.weight, weight != 0 {
                try dir.write("io.weight", "default \(ioWeight(fromBlkioWeight: weight))")
            }
            for line in ioMaxLines(io) { try dir.write("io.max", line) }
        case .v1:
            if let weight = io.weight, weight != 0 {
                // CFQ had blkio.weight; with blk-mq the BFQ scheduler offers blkio.bfq.weight.
                let file = dir.has("blkio.weight") ? "blkio.weight" : "blkio.bfq.weight"
                // blkio.bfq.weight exists as soon as the bfq module is loaded, but only devices
                // whose active scheduler is bfq honour it (block/bfq-cgroup.c).
                guard dir.has(file), file == "blkio.weight" || Self.someDeviceUsesBFQ() else {
                    throw .invalidResource(
                        setting: "blkio weight \(weight)",
                        reason: "no block device of this host uses the CFQ or BFQ I/O scheduler, so a blkio weight "
                            + "would have no effect; select bfq (echo bfq > /sys/block/DEV/queue/scheduler) "
                            + "or drop --blkio-weight")
                }
                try dir.write(file, String(weight))
            }
            let files: [(String, [Spec.Resources.ThrottleDevice]?)] = [
                ("blkio.throttle.read_bps_device", io.throttleReadBpsDevice),
                ("blkio.throttle.write_bps_device", io.throttleWriteBpsDevice),
                ("blkio.throttle.read_iops_device", io.throttleReadIOPSDevice),
                ("blkio.throttle.write_iops_device", io.throttleWriteIOPSDevice),
            ]
            for (file, devices) in files {
                for device in devices ?? [] { try dir.write(file, "\(device.major):\(device.minor) \(device.rate)") }
            }
        }
    }

    /// One `io.max` line per device, keys in the kernel's order, devices in first-seen order.
    static func ioMaxLines(_ io: Spec.Resources.BlockIO) -> [String] {
        var order: [String] = []
        var keys: [String: [String]] = [:]
        let lists: [(String, [Spec.Resources.ThrottleDevice]?)] = [
            ("rbps", io.throttleReadBpsDevice), ("wbps", io.throttleWriteBpsDevice),
            ("riops", io.throttleReadIOPSDevice), ("wiops", io.throttleWriteIOPSDevice),
        ]
        for (key, devices) in lists {
            for device in devices ?? [] {
                let id = "\(device.major):\(device.minor)"
                if keys[id] == nil { order.append(id) }
                keys[id, default: []].append("\(key)=\(device.rate)")
            }
        }
        return order.map { "\($0) " + keys[$0]!.joined(separator: " ") }
    }

    /// True when the active I/O scheduler of some block device is bfq (`[bfq]` in
    /// /sys/block/DEV/queue/scheduler).
    static func someDeviceUsesBFQ() -> Bool {
        guard let dir = opendir("/sys/block") else { return false }
        defer { closedir(dir) }
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            if let text = try? CgroupFiles.read("/sys/block/\(name)/queue/scheduler"), text.contains("[bfq]") { return true }
        }
        return false
    }
}
