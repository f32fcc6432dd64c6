// OCI runtime-spec v1.2 security fields: `process.capabilities` (config.md#linux-process) and
// `linux.seccomp` (config-linux.md#seccomp).

extension Spec {
    /// `process.capabilities`: capability names (`CAP_CHOWN`, …) per set. An absent set is empty.
    /// The kernel's rules (capabilities(7)) decide what survives `execve`: for a non-root user only
    /// `ambient` does, and `ambient` needs each name in `permitted` and `inheritable` too.
    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]?
        public var effective: [String]?
        public var inheritable: [String]?
        public var permitted: [String]?
        public var ambient: [String]?
        public init(
            bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
            permitted: [String]? = nil,
            ambient: [String]? = nil
        ) {
            self.bounding = bounding
            self.effective = effective
            self.inheritable = inheritable
            self.permitted = permitted
            self.ambient = ambient
        }
    }

    /// `linux.seccomp`: a filter the runtime loads just before `execve`.
    public struct Seccomp: Codable, Sendable, Equatable {
        /// `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`, `SCMP_ACT_KILL`, `SCMP_ACT_KILL_PROCESS`,
        /// `SCMP_ACT_KILL_THREAD`, `SCMP_ACT_TRAP`, `SCMP_ACT_TRACE`, `SCMP_ACT_LOG`.
        public var defaultAction: String
        /// errno for `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` as the default action (EPERM when absent).
        public var defaultErrnoRet: UInt32?
        /// `SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`, `SCMP_ARCH_X32`, `SCMP_ARCH_AARCH64`, …
        public var architectures: [String]?
        /// `SECCOMP_FILTER_FLAG_LOG`, `SECCOMP_FILTER_FLAG_SPEC_ALLOW`, …
        public var flags: [String]?
        public var syscalls: [Syscall]?
        public init(
            defaultAction: String, defaultErrnoRet: UInt32? = nil, architectures: [String]? = nil,
            syscalls: [Syscall]? = nil
        ) {
            self.defaultAction = defaultAction
            self.defaultErrnoRet = defaultErrnoRet
            self.architectures = architectures
            self.syscalls = syscalls
        }

        /// `linux.seccomp.syscalls[]`: `action` for the calls in `names` whose arguments match all of `args`.
        public struct Syscall: Codable, Sendable, Equatable {
            public var names: [String]
            public var action: String
            public var errnoRet: UInt32?
            public var args: [Arg]?
            public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [Arg]? = nil) {
                self.names = names
                self.action = action
                self.errnoRet = errnoRet
                self.args = args
            }
        }

        /// `linux.seccomp.syscalls[].args[]`: argument `index` (0–5) compared with `value` by `op`
        /// (`SCMP_CMP_NE`, `_LT`, `_LE`, `_EQ`, `_GE`, `_GT`, `_MASKED_EQ`); for `SCMP_CMP_MASKED_EQ`,
        /// `value` is the mask and `valueTwo` what the masked argument must equal.
        public struct Arg: Codable, Sendable, Equatable {
            public var index: UInt32
            public var value: UInt64
            public var valueTwo: UInt64?
            public var op: String
            public init(index: UInt32, value: UInt64, valueTwo: UInt64? = nil, op: String) {
                self.index = index
                self.value = value
                self.valueTwo = valueTwo
                self.op = op
            }
        }
    }
}
