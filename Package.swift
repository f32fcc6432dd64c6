// swift-tools-version:6.0
// Skiff: containers and VMs on one Linux host, one allocator.
import PackageDescription

let package = Package(
    name: "skiff",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "skiff", targets: ["skiff"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C: syscalls Swift cannot import (variadic, _GNU_SOURCE, function-like macros).
        .target(name: "CSkiff"),
        // libarchive, dlopen()ed on first use (headers from libarchive-dev; see Sources/CArchive).
        .target(name: "CArchive", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // libcrypto's SHA-256, dlopen()ed on first use (headers from libssl-dev; see Sources/CCrypto).
        .target(name: "CCrypto", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", providers: [.apt(["libcap-dev"])]),
        .target(name: "OCI", dependencies: ["CCrypto"]),
        // <linux/kvm.h> for the VM monitor.
        .target(name: "CKVM"),
        .target(name: "KVM", dependencies: ["CKVM", "CSkiff", "LinuxSys"]),
        .target(
            name: "LinuxSys",
            dependencies: ["CSkiff", .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "Store", dependencies: ["CSQLite", "LinuxSys"], linkerSettings: [.linkedLibrary("sqlite3", .when(configuration: .debug))]),
        .target(name: "Cgroups", dependencies: ["LinuxSys", "CSkiff", "OCI"]),
        // The ratio allocator: host capacity, the reservation ledger, share → cgroup knobs.
        .target(name: "Allocator", dependencies: ["LinuxSys", "Store", "Cgroups", "OCI"]),
        .target(
            name: "Images",
            dependencies: ["OCI", "LinuxSys", "Store", "CArchive", "CSkiff", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Containers",
            dependencies: [
                "OCI", "LinuxSys", "Store", "Cgroups", "Images", "CSkiff", "KVM", "Allocator", "CSeccomp", "CCap",
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: [.linkedLibrary("seccomp", .when(configuration: .debug)), .linkedLibrary("cap", .when(configuration: .debug))]),
        .executableTarget(
            name: "skiff",
            dependencies: [
                "Containers", "Images", "Store", "OCI", "LinuxSys", "Cgroups", "Allocator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Release builds (always with --static-swift-stdlib: scripts/bootstrap, scripts/bench*)
            // are position-dependent: the 43 000 relative relocations of the Swift metadata are
            // resolved at link time instead of by ld.so in every process, which wrote ~2.5 MiB of
            // pages per start, twice per `skiff run` (the CLI and the container's first process):
            // 345 -> 212 page faults, 1.8 -> 1.5 ms per process start (BENCHMARKS.md). Shared
            // libraries, stack and heap stay randomized; the binary's own addresses do not (as Go
            // builds runc by default). Debug builds link libswiftCore.so, whose protected symbols
            // a non-PIE executable must not reference (ld.so warns on every start), so they stay PIE.
            //
            // They also link SQLite, libseccomp and libcap statically (each shared library costs every
            // process an mmap set and its relocations: 0.6 ms for the three here), and libstdc++ when
            // scripts/build-release has linked GCC's libstdc++.a into .build/static-libstdc++, which
            // comes before GCC's directory on the library path (the Swift runtime's own -lstdc++ then
            // finds the archive). Debug builds link all four shared (see the targets above).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-Xlinker", "-no-pie", "-L\(Context.packageDirectory)/.build/static-libstdc++",
                        "-Xlinker", "-l:libsqlite3.a", "-Xlinker", "-l:libseccomp.a", "-Xlinker", "-l:libcap.a",
                    ], .when(configuration: .release))
            ]),
        .testTarget(name: "OCITests", dependencies: ["OCI", "LinuxSys"]),
        // guests/ holds assembly sources the tests build with gcc at run time.
        .testTarget(name: "KVMTests", dependencies: ["KVM", "CKVM", "LinuxSys"], exclude: ["guests"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "AllocatorTests", dependencies: ["Allocator", "Store", "LinuxSys"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "OCI", "Store", "LinuxSys"]),
        .testTarget(name: "CgroupsTests", dependencies: ["Cgroups", "LinuxSys", "OCI"]),
        .testTarget(name: "ContainersTests", dependencies: ["Containers", "LinuxSys", "Store", "Cgroups", "OCI"]),
    ]
)
