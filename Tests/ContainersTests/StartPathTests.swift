import Foundation
import OCI
import Testing

@testable import Containers

/// Pieces of the container start path that need no root.
struct StartPathTests {
    /// The spawned init warms its JSON decoder with a sample plan while the parent prepares; the
    /// sample must stay a valid `LaunchPlan` with every key a real plan carries, or it warms less.
    @Test func warmUpSampleIsACompleteLaunchPlan() throws {
        #expect(SpawnedInit.warmUp(), "the sample no longer decodes as a LaunchPlan: update SpawnedInit.warmUpPlan")
        let plan = try OCIJSON.decode(LaunchPlan.self, from: Array(SpawnedInit.warmUpPlan.utf8), what: "sample")
        let reencoded = try JSONSerialization.jsonObject(with: Data(try OCIJSON.encode(plan))) as? [String: Any]
        let sample = try JSONSerialization.jsonObject(with: Data(SpawnedInit.warmUpPlan.utf8)) as? [String: Any]
        #expect(Set(reencoded?.keys ?? [:].keys) == Set(sample?.keys ?? [:].keys))
        #expect(plan.security?.seccomp?.count == 1)
        #expect(plan.mounts.count == 1 && plan.rlimits.count == 1 && plan.consoleSize?.rows == 1)
    }
}
