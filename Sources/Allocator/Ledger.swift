/// One admitted workload's reservation.
public struct Reservation: Codable, Sendable, Equatable {
    /// Workload ID (64 hex digits).
    public var id: String
    /// Workload name, for messages and `skiff top`.
    public var name: String
    /// `container` or `vm`.
    public var kind: String
    public var share: Share
    /// The process that holds the reservation (the workload's monitor) and its
    /// `/proc/PID/stat` start time; when it is gone the reservation is void.
    public var holderPID: Int32
    public var holderStartTime: UInt64?
    /// Seconds since the epoch when it was admitted.
    public var since: Double

    public init(
        id: String, name: String, kind: String, share: Share, holderPID: Int32, holderStartTime: UInt64?, since: Double
    ) {
        self.id = id
        self.name = name
        self.kind = kind
        self.share = share
        self.holderPID = holderPID
        self.holderStartTime = holderStartTime
        self.since = since
    }
}

/// The admission rule over a set of reservations, without storage: a workload is admitted only
/// if, for every resource, the reservations of the others plus its own fit in the allocatable
/// total (Σ ratios ≤ 1, exact in millionths). Value type, so it can be property-tested.
public struct Ledger: Sendable, Equatable {
    public private(set) var reservations: [Reservation]

    public init(_ reservations: [Reservation] = []) { self.reservations = reservations }

    /// Sum of every reservation, optionally leaving one workload out.
    public func reserved(excluding id: String? = nil) -> Share {
        reservations.reduce(into: Share.none) { sum, r in
            guard r.id != id else { return }
            sum.cpuPPM += r.share.cpuPPM
            sum.memoryPPM += r.share.memoryPPM
        }
    }

    /// What is still free, optionally as if `id` held nothing.
    public func free(excluding id: String? = nil) -> Share {
        let used = reserved(excluding: id)
        return Share(cpuPPM: max(0, Share.whole - used.cpuPPM), memoryPPM: max(0, Share.whole - used.memoryPPM))
    }

    /// The first resource (cpu, then memory) on which `share` does not fit beside the others
    /// (`id`'s own current reservation does not count against it); nil when it fits.
    public func binding(_ share: Share, for id: String) -> AllocatedResource? {
        let free = self.free(excluding: id)
        if share.cpuPPM > free.cpuPPM { return .cpu }
        if share.memoryPPM > free.memoryPPM { return .memory }
        return nil
    }

    /// Admits (or resizes) `reservation`: replaces any earlier one with the same ID.
    /// - Returns: nil when admitted, else the binding resource (nothing changes then).
    @discardableResult
    public mutating func admit(_ reservation: Reservation) -> AllocatedResource? {
        if let b = binding(reservation.share, for: reservation.id) { return b }
        reservations.removeAll { $0.id == reservation.id }
        if !reservation.share.isEmpty { reservations.append(reservation) }
        return nil
    }

    /// Drops `id`'s reservation. Returns whether there was one.
    @discardableResult
    public mutating func release(_ id: String) -> Bool {
        let before = reservations.count
        reservations.removeAll { $0.id == id }
        return reservations.count != before
    }
}
