// swift-tools-version:6.0
// An app that embeds SonoQuant's deploy path, as README's "Use SonoQuant in your app" describes: it
// depends on the package by path and imports only the SonoQuantDeploy library product.
// scripts/check-example-app.sh (part of the test command) builds it and checks its HC against `segment`'s.
import PackageDescription

let package = Package(
    name: "SegmentApp",
    dependencies: [.package(name: "sonoquant", path: "../..")],
    targets: [
        .executableTarget(name: "SegmentApp", dependencies: [.product(name: "SonoQuantDeploy", package: "sonoquant")]),
    ]
)
