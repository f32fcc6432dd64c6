import Testing
@testable import OCI

@Test func sha256OfKnownInput() throws {
    // NIST FIPS 180-2 example "abc".
    #expect(SHA256Hasher.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

@Test func digestParsingRejectsBadShapes() throws {
    #expect(throws: OCIError.self) { try Digest(parsing: "sha256:abc") }
    #expect(throws: OCIError.self) { try Digest(parsing: "md5:" + String(repeating: "a", count: 64)) }
    #expect(throws: OCIError.self) { try Digest(parsing: "sha256:" + String(repeating: "A", count: 64)) }
    let d = try Digest(parsing: "sha256:" + String(repeating: "0", count: 64))
    #expect(d.short == "000000000000")
}
