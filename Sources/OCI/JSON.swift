#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// JSON coding for OCI documents, with the encoder settings Skiff writes files with.
public enum OCIJSON {
    /// Decodes `T` from bytes; `what` names the document in the error.
    /// - Throws: `OCIError.invalidDocument` with the decoder's reason.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw OCIError.invalidDocument(
                what: what, reason: "missing field \(path(ctx.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw OCIError.invalidDocument(what: what, reason: "wrong type at \(path(ctx.codingPath))")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw OCIError.invalidDocument(what: what, reason: "null at \(path(ctx.codingPath))")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw OCIError.invalidDocument(
                what: what, reason: "\(ctx.debugDescription) at \(path(ctx.codingPath))")
        } catch let e as OCIError {
            throw OCIError.invalidDocument(what: what, reason: e.description)
        }
    }

    /// Encodes `value`; `pretty` adds indentation for files people read.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return Array(try enc.encode(value))
    }

    /// Encodes `value` as a String (UTF-8).
    public static func string<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        String(decoding: try encode(value, pretty: pretty), as: UTF8.self)
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
