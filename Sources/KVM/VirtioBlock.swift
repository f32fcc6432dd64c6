import Glibc
import LinuxSys

/// virtio-blk (`VIRTIO_ID_BLOCK` 2; virtio spec v1.2 §5.2) backed by a raw image file, one request queue.
///
/// A request is one descriptor chain: a device-readable header {type le32, reserved le32, sector le64},
/// then the data (device-readable for OUT, device-writable for IN and GET_ID), then one device-writable
/// status byte. Types: IN 0 (`pread` into the guest buffers), OUT 1 (`pwrite` from them), FLUSH 4
/// (`fdatasync`), GET_ID 8 (the 20-byte serial). Status: OK 0, IOERR 1 (I/O failed, sector range past
/// `capacity`, data not a whole number of sectors, a write to a read-only disk), UNSUPP 2 (any other type).
///
/// Offered features: `VIRTIO_BLK_F_SEG_MAX` (with `seg_max` = queue size − 2, so Linux never needs
/// indirect descriptors), `VIRTIO_BLK_F_FLUSH` (so the guest's fsync reaches the host disk), and
/// `VIRTIO_BLK_F_RO` for a read-only disk. Config space: capacity le64 at 0 (512-byte sectors; a trailing
/// partial sector of the image is not exposed), size_max le32 at 8 (0), seg_max le32 at 12.
///
/// Requests are served synchronously on the calling thread (the vCPU that wrote QueueNotify).
public final class VirtioBlock: VirtioDevice {
    /// Request types (`VIRTIO_BLK_T_*`).
    public static let typeIn: UInt32 = 0, typeOut: UInt32 = 1, typeFlush: UInt32 = 4, typeGetID: UInt32 = 8
    /// Request status (`VIRTIO_BLK_S_*`).
    public static let statusOK: UInt8 = 0, statusIOError: UInt8 = 1, statusUnsupported: UInt8 = 2
    /// Feature bits (`VIRTIO_BLK_F_*`).
    public static let featureSegMax: UInt64 = 1 << 2, featureReadOnly: UInt64 = 1 << 5, featureFlush: UInt64 = 1 << 9
    /// Sector size in bytes (fixed by the spec, whatever `blk_size` says).
    public static let sectorSize: UInt64 = 512
    /// Length of the GET_ID answer (`VIRTIO_BLK_ID_BYTES`).
    public static let idLength = 20
    /// Size of the request header.
    public static let headerLength: UInt64 = 16

    /// Path of the image (for messages).
    public let path: String
    /// Whether writes are refused (and `VIRTIO_BLK_F_RO` offered).
    public let readOnly: Bool
    /// Disk size in 512-byte sectors.
    public let capacity: UInt64
    /// The GET_ID answer: at most 20 bytes, zero-padded.
    public let serial: [UInt8]
    /// The queue size offered.
    public let queueSize: UInt16
    let fd: Int32

    /// Opens the image at `path` (`O_RDWR`, or `O_RDONLY` when `readOnly`).
    /// - Parameters:
    ///   - serial: the disk's id for GET_ID (`/sys/block/vda/serial`); the file name by default. Cut to 20 bytes.
    ///   - queueSize: `QueueNumMax` of the request queue, a power of two from 4 to 32768.
    /// - Throws: `KVMError.system` when the file cannot be opened or stat'ed; `KVMError.layout` for a bad queue size.
    public init(path: String, readOnly: Bool = false, serial: String? = nil, queueSize: UInt16 = 256) throws {
        guard queueSize >= 4, queueSize <= Virtqueue.largestSize, queueSize & (queueSize - 1) == 0 else {
            throw KVMError.layout("virtio-blk queue size \(queueSize): must be a power of two from 4 to 32768")
        }
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else {
            throw KVMError.system(
                SysError("open", path, hint: readOnly ? "" : "pass readOnly for an image this user cannot write"))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = SysError("fstat", path)
            close(fd)
            throw KVMError.system(e)
        }
        self.fd = fd
        self.path = path
        self.readOnly = readOnly
        self.capacity = UInt64(st.st_size) / Self.sectorSize
        self.queueSize = queueSize
        let name = serial ?? String(path.split(separator: "/").last ?? "")
        self.serial = Array(name.utf8.prefix(Self.idLength))
    }

    deinit { close(fd) }

    public var deviceID: UInt32 { Virtio.idBlock }

    public var deviceFeatures: UInt64 {
        Self.featureSegMax | Self.featureFlush | (readOnly ? Self.featureReadOnly : 0)
    }

    public var queueMaxSizes: [UInt16] { [queueSize] }

    /// `struct virtio_blk_config` up to `blk_size`: capacity, size_max, seg_max, geometry, blk_size.
    public var configSpace: [UInt8] {
        var c = [UInt8](repeating: 0, count: 24)
        withUnsafeBytes(of: capacity.littleEndian) { c.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: UInt32(queueSize - 2).littleEndian) { c.replaceSubrange(12..<16, with: $0) }
        return c
    }

    public func process(queue: inout Virtqueue, memory: GuestMemory) throws(VirtioError) -> Bool {
        var used = false
        while let chain = try queue.pop(memory: memory) {
            let written = handle(chain, memory: memory)
            try queue.pushUsed(head: chain.head, length: written, memory: memory)
            used = true
        }
        return used
    }

    /// Serves one request; returns the bytes written into its writable buffers (the used element's `len`).
    func handle(_ chain: DescriptorChain, memory: GuestMemory) -> UInt32 {
        let writableLength = chain.writableLength
        // Without a status byte there is nothing to tell the driver; give the buffers back untouched.
        guard writableLength >= 1,
            let status = DescriptorChain.segments(
                of: chain.writable, from: writableLength - 1, length: 1
            ).first?.address
        else { return 0 }
        var dataWritten: UInt64 = 0
        let result: UInt8
        if chain.readableLength < Self.headerLength {
            result = Self.statusIOError
        } else {
            let header = gather(chain.readable, 0, Int(Self.headerLength), memory)
            let type = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
            let sector = header.withUnsafeBytes {
                UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            switch type {
            case Self.typeIn:
                let length = writableLength - 1
                let data = DescriptorChain.segments(of: chain.writable, from: 0, length: length)
                result = transfer(data, length: length, sector: sector, write: false, memory)
                if result == Self.statusOK { dataWritten = length }
            case Self.typeOut:
                let length = chain.readableLength - Self.headerLength
                let data = DescriptorChain.segments(of: chain.readable, from: Self.headerLength, length: length)
                result =
                    readOnly ? Self.statusIOError : transfer(data, length: length, sector: sector, write: true, memory)
            case Self.typeFlush:
                result = readOnly || fdatasync(fd) == 0 ? Self.statusOK : Self.statusIOError
            case Self.typeGetID:
                let n = min(UInt64(Self.idLength), writableLength - 1)
                let id = serial + [UInt8](repeating: 0, count: Self.idLength - serial.count)
                scatter(
                    Array(id.prefix(Int(n))), DescriptorChain.segments(of: chain.writable, from: 0, length: n), memory)
                dataWritten = n
                result = Self.statusOK
            default:
                result = Self.statusUnsupported
            }
        }
        try? memory.write(result, at: status)
        return UInt32(truncatingIfNeeded: dataWritten + 1)
    }

    /// Reads or writes `length` bytes (whole sectors) at `sector` between the image and guest `segments`.
    func transfer(
        _ segments: [(address: UInt64, length: Int)], length: UInt64, sector: UInt64, write: Bool, _ memory: GuestMemory
    ) -> UInt8 {
        guard length % Self.sectorSize == 0, sector <= capacity,
            length / Self.sectorSize <= capacity - sector
        else { return Self.statusIOError }
        var offset = sector * Self.sectorSize
        for segment in segments {
            guard let p = try? memory.pointer(at: segment.address, length: segment.length) else {
                return Self.statusIOError
            }
            var done = 0
            while done < segment.length {
                let n =
                    write
                    ? pwrite(fd, p + done, segment.length - done, off_t(offset))
                    : pread(fd, p + done, segment.length - done, off_t(offset))
                if n < 0 && errno == EINTR { continue }
                // A short read at EOF means the image shrank under us.
                guard n > 0 else { return Self.statusIOError }
                done += n
                offset += UInt64(n)
            }
        }
        return Self.statusOK
    }

    func gather(_ buffers: ArraySlice<VirtqDescriptor>, _ offset: UInt64, _ length: Int, _ memory: GuestMemory)
        -> [UInt8]
    {
        DescriptorChain.segments(of: buffers, from: offset, length: UInt64(length)).flatMap {
            (try? memory.read(at: $0.address, length: $0.length)) ?? []
        }
    }

    func scatter(_ bytes: [UInt8], _ segments: [(address: UInt64, length: Int)], _ memory: GuestMemory) {
        var i = 0
        for s in segments {
            try? memory.write(bytes[i..<(i + s.length)], at: s.address)
            i += s.length
        }
    }
}
