import ArgumentParser
import Containers
import Images
import LinuxSys
import OCI

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load an image from an OCI image layout directory or an oci-archive tarball.",
        discussion: """
            PATH[:REF] picks the manifest whose org.opencontainers.image.ref.name is REF.
            Examples:
              skiff load images/busybox/out/busybox
              skiff load ./image.tar:latest --tag myapp:1.0
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Name the image NAME[:TAG] instead of the name in the layout.") var tag: String?
    @Argument(help: "PATH[:REF]") var source: String

    func run() throws {
        try execute {
            var path = source
            var ref: String? = nil
            if let colon = source.lastIndex(of: ":"), !source[colon...].contains("/"), !Files.exists(source) {
                path = String(source[..<colon])
                ref = String(source[source.index(after: colon)...])
            }
            let images = try global.engine().images()
            let loaded = try images.load(path: path, ref: ref, tag: tag) { msg in
                try? Files.write(fd: 2, Array((msg + "\n").utf8))
            }
            for r in loaded { print("Loaded image: \(r.names.first ?? r.id.description)") }
        }
    }
}

struct ImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "List images.",
        discussion: "Examples:\n  skiff images\n  skiff images --format json")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Only show image IDs.") var quiet = false
    @Option(name: .long, help: "Output format: table or json (one object per line).") var format = "table"

    struct Row: Codable {
        var Repository: String
        var Tag: String
        var ID: String
        var CreatedAt: String
        var CreatedSince: String
        var Size: String
        var SizeBytes: Int64
    }

    func run() throws {
        try execute {
            guard format == "table" || format == "json" else { throw SkiffError("unknown --format \"\(format)\": use table or json") }
            let now = Clock.now()
            let rows = try global.engine().images().list().map { r in
                let created = r.created.flatMap(Clock.parseRFC3339)
                return Row(
                    Repository: r.repository ?? "<none>", Tag: r.tag ?? "<none>", ID: r.id.short,
                    CreatedAt: r.created ?? "", CreatedSince: created.map { Clock.humanDuration(now - $0) + " ago" } ?? "N/A",
                    Size: humanSize(r.size), SizeBytes: r.size)
            }
            if quiet {
                for r in rows { print(r.ID) }
                return
            }
            if format == "json" {
                for row in rows { print(try OCIJSON.string(row)) }
                return
            }
            var t = Table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"])
            for r in rows { t.add([r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]) }
            print(t.render())
        }
    }
}

struct RemoveImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi", abstract: "Remove images (refused while a container uses them).",
        discussion: "Example:\n  skiff rmi busybox")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Remove the tag even if other tags point at the image.") var force = false
    @Argument(help: "Images.") var images: [String]

    func run() throws {
        try execute {
            let engine = global.engine()
            let store = try engine.store()
            for ref in images {
                let removed = try engine.images().remove(ref, force: force) { id in
                    (try? store.names(usingImage: id.description)) ?? []
                }
                for line in removed { print(line) }
            }
        }
    }
}
